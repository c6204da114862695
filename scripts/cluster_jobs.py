"""Manifests of one-off Jobs `make` runs in the laptop cluster (JSON, which kubectl applies like
YAML).

    cluster_jobs.py ingest --deployment FILE --name N --start D --end D

The ingest Job's pod is the DAG's own stage pod: dags/templates/stage_pod.yaml rendered with the
pipeline's ingest stage and the release's pipeline contract (the chart's ConfigMap
<fullname>-pipeline, key deployment.json, that scripts/cluster.sh reads from the cluster). So
the Job runs the same command with the same image, settings, credentials and client labels as
the DAG's ingest task, and there is no second copy of any of them here.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "dags" / "templates"
sys.path[:0] = [str(ROOT), str(ROOT / "dags")]

from lakehouse_dags.deployment import Deployment, parse_contract  # noqa: E402

from lakehouse.pipeline import stage  # noqa: E402


def stage_pod(stage_name: str, contract: dict[str, Any], start: str, end: str, run_id: str) -> Any:
    """The stage pod template rendered outside Airflow, for one stage and one interval."""
    import jinja2
    import yaml

    found = stage(stage_name)
    if found.kind != "python":
        raise SystemExit(f"stage {stage_name!r} is a {found.kind} stage, not a pod")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined
    )
    text = env.get_template("stage_pod.yaml").render(
        task=SimpleNamespace(task_id=found.name, module=found.module, services=found.services),
        lakehouse=Deployment(contract),
        data_interval_start=datetime.fromisoformat(start).replace(tzinfo=UTC),
        data_interval_end=datetime.fromisoformat(end).replace(tzinfo=UTC),
        run_id=run_id,
        managed_by="make",
    )
    return yaml.safe_load(text)


def ingest_job(*, name: str, contract: dict[str, Any], start: str, end: str) -> dict[str, Any]:
    pod = stage_pod("ingest", contract, start, end, run_id=f"make-{name}")
    labels = pod["metadata"]["labels"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": {k: v for k, v in labels.items() if k.startswith("app.kubernetes.io/")},
        },
        "spec": {
            "backoffLimit": 2,
            # Kept a day for `make logs`, then garbage-collected.
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": pod["metadata"], "spec": pod["spec"]},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="job", required=True)
    ingest = sub.add_parser("ingest")
    ingest.add_argument(
        "--deployment", required=True, help="the pipeline contract (JSON file, - for stdin)"
    )
    ingest.add_argument("--name", required=True)
    ingest.add_argument("--start", required=True)
    ingest.add_argument("--end", required=True)
    args = parser.parse_args(argv)
    source = sys.stdin if args.deployment == "-" else open(args.deployment)  # noqa: SIM115
    with source:
        contract = parse_contract(source.read())
    job = ingest_job(name=args.name, contract=contract, start=args.start, end=args.end)
    json.dump(job, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
