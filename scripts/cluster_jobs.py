"""Manifests of one-off Jobs `make` runs in the laptop cluster (standard library only; JSON,
which kubectl applies like YAML).

    cluster_jobs.py ingest --name N --image I --start D --end D [--release R]

The ingest Job runs the same command and takes settings and credentials the same way as the
DAG's ingest pod (dags/templates/stage_pod.yaml): `python -m lakehouse.ingest --start --end
--run-id`, the settings ConfigMap by envFrom and, of the credentials Secret, the object-store
keys plus the catalog role (the stage's writer lock lives in the catalog database,
lakehouse/locks.py); it carries the client labels the chart's NetworkPolicies admit.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def secret_env(secret: str, *keys: str) -> list[dict[str, Any]]:
    return [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}} for key in keys
    ]


def ingest_job(
    *, name: str, image: str, start: str, end: str, release: str = "lakehouse"
) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": "lakehouse",
        "app.kubernetes.io/part-of": "lakehouse",
        "app.kubernetes.io/component": "stage-ingest",
        "app.kubernetes.io/managed-by": "make",
    }
    container = {
        "name": "base",
        "image": image,
        # Images are loaded into the node with `kind load`, never pulled.
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "lakehouse.ingest"],
        "args": ["--start", start, "--end", end, "--run-id", f"make-{name}"],
        "envFrom": [{"configMapRef": {"name": f"{release}-settings"}}],
        "env": [
            *secret_env(
                f"{release}-credentials",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "LAKEHOUSE_CATALOG_USER",
                "LAKEHOUSE_CATALOG_PASSWORD",
            ),
            {"name": "HOME", "value": "/tmp"},
        ],
        "resources": {
            "requests": {"cpu": "250m", "memory": "1Gi"},
            "limits": {"cpu": "1", "memory": "2Gi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 2,
            # Kept a day for `make logs`, then garbage-collected.
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {
                    "labels": {
                        **labels,
                        "lakehouse/object-store-client": "true",
                        "lakehouse/postgres-client": "true",
                    }
                },
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "runAsGroup": 1000,
                        "fsGroup": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}],
                },
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="job", required=True)
    ingest = sub.add_parser("ingest")
    ingest.add_argument("--name", required=True)
    ingest.add_argument("--image", required=True)
    ingest.add_argument("--start", required=True)
    ingest.add_argument("--end", required=True)
    ingest.add_argument("--release", default="lakehouse")
    args = parser.parse_args(argv)
    job = ingest_job(
        name=args.name, image=args.image, start=args.start, end=args.end, release=args.release
    )
    json.dump(job, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
