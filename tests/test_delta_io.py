"""spark_apps.delta_io on real Spark and Delta, read back with deltalake (no Spark)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from deltalake import DeltaTable

from lakehouse.context import StageResult
from spark_apps.delta_io import append_audit


def test_audit_rows_keep_every_value_in_one_commit_and_one_file(spark, tmp_path) -> None:
    path = str(tmp_path / "audit")
    failed = StageResult(
        "silver",
        date(2026, 1, 6),
        "run-'quoted'",
        counts={"bronze_rows": 2**40, "inserted": 0, "quarantined": 7},
        reconciled=False,
        seconds=12.345678,
        started_at=datetime(2026, 1, 6, 23, 59, 58, 123456, tzinfo=UTC),
        note="silver 2026-01-06: counts do not reconcile: a = b: 3 != 4\nsecond line é",
    )
    empty = StageResult(
        "silver", date(2026, 1, 5), "run-2", started_at=datetime(2026, 1, 5, tzinfo=UTC)
    )

    append_audit(spark, path, [failed, empty])

    table = DeltaTable(path)
    (commit,) = [c for c in table.history() if c["operation"] == "WRITE"]
    metrics = commit["operationMetrics"]
    assert (int(metrics["numOutputRows"]), int(metrics["numFiles"])) == (2, 1)
    rows = sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["interval_date"])
    (finished,) = {r["finished_at"] for r in rows}
    assert finished >= failed.started_at
    assert [{k: v for k, v in r.items() if k != "finished_at"} for r in rows] == [
        {
            "run_id": "run-2",
            "stage": "silver",
            "interval_date": date(2026, 1, 5),
            "reconciled": True,
            "seconds": 0.0,
            "counts": [],
            "note": None,
            "started_at": datetime(2026, 1, 5, tzinfo=UTC),
        },
        {
            "run_id": "run-'quoted'",
            "stage": "silver",
            "interval_date": date(2026, 1, 6),
            "reconciled": False,
            "seconds": 12.345678,
            "counts": [("bronze_rows", 2**40), ("inserted", 0), ("quarantined", 7)],
            "note": failed.note,
            "started_at": failed.started_at,
        },
    ]
