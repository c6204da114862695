"""Modules the tests load from a file outside any package (scripts/, another tier's helpers),
each once per process under its own name."""

from __future__ import annotations

import functools
import sys
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def load_module(relative: str) -> ModuleType:
    """The module of ``ROOT/relative`` ("scripts/gitops.py"), executed once."""
    path = ROOT / relative
    name = "_loaded_" + relative.removesuffix(".py").replace("/", "_").replace("-", "_")
    spec = spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
