"""Exposition size: series and bytes per member, plain and gzipped, for each cardinality setting."""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from exporter.collector import MemberLabels, Settings, data_families, render
from exporter.store import Store

VARIANTS = {
    "default": Settings(),
    "member-label=pseudonymize": Settings(member_label="pseudonymize"),
    "member-label=drop": Settings(member_label="drop"),
    "member-models": Settings(member_models=True),
}
GZIP_LEVEL = 6  # as the poller compresses


@dataclass(frozen=True)
class ExpositionSize:
    series: int
    plain_bytes: int
    gzip_bytes: int
    render_seconds: float


def count_series(body: bytes) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def measure(store: Store, settings: Settings) -> ExpositionSize:
    today = datetime.now(UTC).date()
    members = MemberLabels(settings.member_label, store.secret())
    started = time.perf_counter()
    body = render(data_families(store, today, settings, members))
    seconds = time.perf_counter() - started
    return ExpositionSize(
        count_series(body), len(body), len(gzip.compress(body, GZIP_LEVEL)), seconds
    )


def measure_variants(store_path: Path) -> dict[str, ExpositionSize]:
    store = Store(store_path)
    try:
        return {name: measure(store, settings) for name, settings in VARIANTS.items()}
    finally:
        store.close()
