"""Ingest: parsing and storing one UTC day of usage records, against `json.loads` of the same bytes.

The day's pages are serialized as the simulator serves them (1000 records a page, the exporter's
page size). The floor is `json.loads` of every page; the ingest is `parse_usage_page` of every
decoded page and `Store.replace_day` into a store file, as the poller does after a fetch."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.stats import median
from exporter.parse import UsageRecord, parse_usage_page
from exporter.simulator import SimulatedOrganization
from exporter.store import Store

PAGE_SIZE = 1000


@dataclass(frozen=True)
class IngestResult:
    records: int
    page_bytes: int
    json_seconds: float
    parse_seconds: float
    store_seconds: float

    @property
    def ingest_seconds(self) -> float:
        return self.parse_seconds + self.store_seconds

    @property
    def ratio(self) -> float:
        return self.ingest_seconds / self.json_seconds


def day_pages(members: int) -> tuple[list[bytes], date]:
    """Yesterday's complete records for the organization of `members`, as API page bodies."""
    org = SimulatedOrganization(members=members)
    day = (datetime.now(UTC) - timedelta(days=1)).date()
    records = org.final_records(day)
    pages = []
    for start in range(0, max(len(records), 1), PAGE_SIZE):
        more = start + PAGE_SIZE < len(records)
        body = {
            "data": records[start : start + PAGE_SIZE],
            "has_more": more,
            "next_page": f"page_{start + PAGE_SIZE}" if more else None,
        }
        pages.append(json.dumps(body).encode())
    return pages, day


def _timed(action: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure_ingest(members: int, workdir: Path, repetitions: int) -> IngestResult:
    pages, day = day_pages(members)
    payloads = [json.loads(page) for page in pages]
    store = Store(workdir / "ingest.db")

    def floor() -> None:
        for page in pages:
            json.loads(page)

    records: list[UsageRecord] = []

    def parse() -> None:
        records.clear()
        for payload in payloads:
            records.extend(parse_usage_page(payload, day).records)

    def replace() -> None:
        store.replace_day(day, records, time.time())

    json_times, parse_times, store_times = [], [], []
    try:
        for _ in range(repetitions):  # interleaved, so that drift in the machine hits each
            json_times.append(_timed(floor))
            parse_times.append(_timed(parse))
            store_times.append(_timed(replace))
    finally:
        store.close()
    return IngestResult(
        records=sum(len(p["data"]) for p in payloads),
        page_bytes=sum(len(page) for page in pages),
        json_seconds=median(json_times),
        parse_seconds=median(parse_times),
        store_seconds=median(store_times),
    )
