"""What every stage receives and returns, and the command line every stage entrypoint accepts."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lakehouse.settings import Settings


class ReconciliationError(RuntimeError):
    """A stage's counts do not add up; nothing downstream may trust its output."""


class StageInputError(RuntimeError):
    """A stage found nothing (or nothing usable) to work on; the message says where it looked."""


@dataclass(frozen=True)
class StageContext:
    settings: Settings
    start: date  # first day of the data interval
    end: date  # exclusive
    run_id: str
    spark: Any = None  # the shared SparkSession in embedded mode; built on demand otherwise

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days)]


@dataclass
class StageResult:
    stage: str
    day: date
    run_id: str
    counts: dict[str, int] = field(default_factory=dict)
    reconciled: bool = True
    seconds: float = 0.0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    note: str = ""


def new_run_id(prefix: str = "manual") -> str:
    return f"{prefix}__{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"


def reconcile(stage: str, day: date, equation: str, left: int, right: int) -> None:
    """Fail loudly, naming the equation and both sides, when ``left != right``."""
    if left != right:
        raise ReconciliationError(
            f"{stage} {day}: counts do not reconcile: {equation}: {left} != {right}"
        )


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def interval_parser(description: str, add_help: bool = True) -> argparse.ArgumentParser:
    """``--start`` (inclusive) and ``--end`` (exclusive) dates, as every stage entrypoint takes.

    Airflow passes its data interval as ISO timestamps; only the date part is used.
    """
    parser = argparse.ArgumentParser(description=description, add_help=add_help)
    parser.add_argument("--start", required=True, type=_iso_date, help="first day, YYYY-MM-DD")
    parser.add_argument(
        "--end", type=_iso_date, help="day after the last one (default: start + 1 day)"
    )
    parser.add_argument("--run-id", default=None, help="lineage id written with every row")
    return parser


def parse_interval(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.end is None:
        args.end = args.start + timedelta(days=1)
    if args.end <= args.start:
        parser.error(f"--end ({args.end}) must be after --start ({args.start})")
    if args.run_id is None:
        args.run_id = new_run_id()
    return args
