"""One storage layer for local paths and ``s3://`` object storage, on fsspec.

Every Python-side reader and writer of the raw zone (the generator, reports, tests) goes through
these functions, so the same code runs on a laptop folder and on S3 (MinIO, SeaweedFS, AWS).
S3 options come from :class:`lakehouse.settings.Settings`: ``s3_endpoint`` (path-style
addressing when set), the AWS key pair and region. ``s3a://`` (Spark's spelling) is accepted and
treated as ``s3://``.

URIs are either ``s3://bucket/key``, ``file:///abs/path`` or a plain (absolute or relative)
local path. Listings return URIs in the same spelling as the prefix they were asked for.

Local writes are atomic: the bytes go to a hidden temporary file in the target folder, which is
then renamed over the target, so a killed writer never leaves a half-written object. Object
stores give that guarantee for a single PUT already. Names starting with ``.`` are hidden (the
Hadoop convention Spark follows too) and are never listed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import PurePosixPath
from typing import Any

import fsspec
from fsspec import AbstractFileSystem

from lakehouse.settings import Settings

S3_SCHEMES = ("s3://", "s3a://")
FILE_SCHEME = "file://"


def is_s3(uri: str) -> bool:
    return uri.startswith(S3_SCHEMES)


def s3_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``s3fs.S3FileSystem`` built from settings."""
    options: dict[str, Any] = {
        "key": settings.aws_access_key_id,
        "secret": settings.aws_secret_access_key,
        "client_kwargs": {"region_name": settings.aws_region},
    }
    if settings.s3_endpoint:
        options["endpoint_url"] = settings.s3_endpoint
        options["config_kwargs"] = {"s3": {"addressing_style": "path"}}
    return options


def _scheme(uri: str) -> str:
    for scheme in (*S3_SCHEMES, FILE_SCHEME):
        if uri.startswith(scheme):
            return scheme
    return ""


def filesystem(settings: Settings, uri: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem serving ``uri`` and the path of ``uri`` inside it.

    For S3 the path is ``bucket/key``; for local storage it is an absolute path.
    """
    if is_s3(uri):
        fs = fsspec.filesystem("s3", **s3_options(settings))
        return fs, uri[len(_scheme(uri)) :].rstrip("/")
    path = uri[len(FILE_SCHEME) :] if uri.startswith(FILE_SCHEME) else uri
    return fsspec.filesystem("file"), os.path.abspath(os.path.expanduser(path))


def _to_uri(prefix_uri: str, path: str) -> str:
    scheme = _scheme(prefix_uri)
    if scheme in S3_SCHEMES:
        return scheme + path
    return FILE_SCHEME + path if scheme == FILE_SCHEME else path


def write_bytes(settings: Settings, uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri``, replacing any previous object; local writes are atomic."""
    fs, path = filesystem(settings, uri)
    if is_s3(uri):
        fs.pipe_file(path, data)
        return
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_bytes(settings: Settings, uri: str) -> bytes:
    fs, path = filesystem(settings, uri)
    return fs.cat_file(path)


def exists(settings: Settings, uri: str) -> bool:
    fs, path = filesystem(settings, uri)
    return bool(fs.exists(path))


def list_files(settings: Settings, prefix_uri: str) -> list[str]:
    """Every (non-hidden) file under the folder ``prefix_uri``, recursively, as sorted URIs.

    A missing prefix lists as empty. A prefix naming a single file lists that file.
    """
    fs, path = filesystem(settings, prefix_uri)
    try:
        found = fs.find(path)
    except FileNotFoundError:
        return []
    root = PurePosixPath(path)
    visible = []
    for item in found:
        p = PurePosixPath(item)
        parts = p.relative_to(root).parts if p != root and p.is_relative_to(root) else (p.name,)
        if not any(part.startswith(".") for part in parts):
            visible.append(_to_uri(prefix_uri, item))
    return sorted(visible)


def remove_prefix(settings: Settings, prefix_uri: str) -> None:
    """Delete ``prefix_uri`` (a folder, recursively, or a single file); absent is fine."""
    fs, path = filesystem(settings, prefix_uri)
    try:
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass
    if is_s3(prefix_uri):
        fs.invalidate_cache(path)
