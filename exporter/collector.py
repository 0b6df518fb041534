"""Metric families computed from the store, rendered once per poll into a cached exposition.

Nothing here runs on a scrape: the poller calls `render()` and the HTTP handler serves the bytes
it returned. docs/metrics.md explains every series and why the data series are period gauges."""

from __future__ import annotations

import hashlib
import hmac
import platform
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from . import __version__
from .clock import day_start
from .parse import MICROCENTS_PER_CENT, TOKEN_TYPES
from .store import CORE_FIELDS, Actor, Store

PREFIX = "claude_code_analytics"
EXPORTER_PREFIX = f"{PREFIX}_exporter"
MEMBER_LABEL_MODES = ("keep", "pseudonymize", "drop")
CACHE_NOTE = "Computed from the exporter's store after each poll; the API is about an hour behind."

CORE_HELP = {
    "sessions": "Claude Code sessions (core_metrics.num_sessions)",
    "lines_added": "Lines of code added by Claude Code and accepted (lines_of_code.added)",
    "lines_removed": "Lines of code removed by Claude Code (lines_of_code.removed)",
    "commits": "Git commits made through Claude Code (commits_by_claude_code)",
    "pull_requests": "Pull requests made through Claude Code (pull_requests_by_claude_code)",
}
PERIOD_HELP = {
    "today": "the current UTC day so far",
    "yesterday": "the previous UTC day",
    "month_to_date": "the current UTC month through today",
    "last_month": "the previous UTC month (exposed on the 1st only)",
}


@dataclass
class Settings:
    member_label: str = "keep"
    member_models: bool = False


@dataclass
class ExporterStats:
    """The exporter's own state, rendered beside the data. Counters are persisted in the store."""

    up: bool = False
    polling: bool = False
    poll_started: float | None = None
    last_attempt: float | None = None
    last_success: float | None = None
    poll_duration: float | None = None
    oldest_day: float | None = None
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        self.counters[key] = self.counters.get(key, 0.0) + amount


COUNTERS = {
    "api_requests": ("Requests to the Admin API by endpoint and HTTP status", ("endpoint", "code")),
    "api_errors": ("Failed requests to the Admin API by endpoint and status", ("endpoint", "code")),
    "records_ingested": ("Usage report records stored", ()),
    "records_rejected": ("Usage report records skipped as malformed, by reason", ("reason",)),
}


# The rolling windows of active members, in UTC days ending today.
ACTIVE_WINDOWS = (("weekly", 7), ("monthly", 30))


def period_spans(today: date) -> dict[str, tuple[date, date]]:
    """The periods the data series cover. `last_month` is there on the 1st only: as `yesterday` is
    read during the next day, a month is read during the next month's first day, when its last
    hour has arrived (docs/metrics.md, "Per-month values"), so the rest of the month it would be
    series nobody reads."""
    yesterday = today - timedelta(days=1)
    spans = {
        "today": (today, today),
        "yesterday": (yesterday, yesterday),
        "month_to_date": (today.replace(day=1), today),
    }
    if today.day == 1:
        spans["last_month"] = (yesterday.replace(day=1), yesterday)
    return spans


def dollars(microcents: int) -> float:
    """Exact integer sum of cost, converted to dollars once (no float accumulation)."""
    return float(Decimal(microcents) / (MICROCENTS_PER_CENT * 100))


class MemberLabels:
    """The member label: the email or API key name, a stable pseudonym, or nothing."""

    def __init__(self, mode: str, secret: bytes = b""):
        if mode not in MEMBER_LABEL_MODES:
            raise ValueError(f"member label mode must be one of {', '.join(MEMBER_LABEL_MODES)}")
        self.mode = mode
        self._secret = secret
        self.names: tuple[str, ...] = (
            ("actor_type",) if mode == "drop" else ("member", "actor_type")
        )

    def values(self, actor: Actor) -> tuple[str, ...]:
        actor_type, name = actor
        if self.mode == "drop":
            return (actor_type,)
        if self.mode == "pseudonymize":
            digest = hmac.new(self._secret, f"{actor_type}:{name}".encode(), hashlib.sha256)
            name = "member-" + digest.hexdigest()[:16]
        return (name, actor_type)


def data_families(
    store: Store, today: date, settings: Settings, members: MemberLabels
) -> Iterator[Metric]:
    for period, (start, end) in period_spans(today).items():
        yield from _member_families(store, period, start, end, members)
        yield from _model_families(store, period, start, end, settings, members)
        yield _active_members(
            f"{PREFIX}_{period}_active_members",
            store.active_members(start, end),
            f"Distinct actors with a record in {PERIOD_HELP[period]}.",
        )
        terminals = store.terminal_active_members(start, end)
        yield _gauge(
            f"{PREFIX}_{period}_terminal_active_members",
            f"Distinct actors with a record of each terminal type in {PERIOD_HELP[period]}.",
            ["terminal_type"],
            {(terminal,): count for terminal, count in sorted(terminals.items())},
        )
    for name, days in ACTIVE_WINDOWS:
        counts = store.active_members(today - timedelta(days=days - 1), today)
        yield _active_members(
            f"{PREFIX}_{name}_active_members",
            counts,
            f"Distinct actors with a record in the {days} UTC days ending today.",
        )
    yield from _member_info(store, members)
    day = GaugeMetricFamily(
        f"{PREFIX}_day_start_timestamp_seconds",
        "Start (00:00 UTC) of the day the exporter calls today.",
    )
    day.add_metric([], day_start(today))
    yield day


def _member_families(
    store: Store, period: str, start: date, end: date, members: MemberLabels
) -> Iterator[Metric]:
    where = PERIOD_HELP[period]
    labels = list(members.names)
    core: dict[str, dict[tuple[str, ...], int]] = {f: defaultdict(int) for f in CORE_FIELDS}
    cost: dict[tuple[str, ...], int] = defaultdict(int)
    for actor, totals in store.actor_totals(start, end).items():
        key = members.values(actor)
        for f in CORE_FIELDS:
            core[f][key] += getattr(totals, f)
        cost[key] += totals.cost_microcents
    for f in CORE_FIELDS:
        yield _gauge(f"{PREFIX}_{period}_{f}", f"{CORE_HELP[f]} in {where}.", labels, core[f])
    yield _gauge(
        f"{PREFIX}_{period}_cost_usd",
        f"Estimated cost in USD in {where} (sum of estimated_cost, in cents, / 100).",
        labels,
        {key: dollars(value) for key, value in cost.items()},
    )
    decisions: dict[tuple[str, ...], int] = defaultdict(int)
    for (actor_type, actor, tool), (accepted, rejected) in store.tool_totals(start, end).items():
        key = members.values((actor_type, actor))
        decisions[(*key, tool, "accepted")] += accepted
        decisions[(*key, tool, "rejected")] += rejected
    yield _gauge(
        f"{PREFIX}_{period}_tool_decisions",
        f"Code-editing tool suggestions accepted or rejected in {where}.",
        [*labels, "tool", "decision"],
        decisions,
    )


def _model_families(
    store: Store, period: str, start: date, end: date, settings: Settings, members: MemberLabels
) -> Iterator[Metric]:
    where = PERIOD_HELP[period]
    per_actor = settings.member_models
    labels = [*members.names, "model"] if per_actor else ["model"]
    cost: dict[tuple[str, ...], int] = defaultdict(int)
    tokens: dict[tuple[str, ...], int] = defaultdict(int)
    for key, (*token_sums, microcents) in store.model_totals(start, end, per_actor).items():
        label_values = (*members.values((key[0], key[1])), key[2]) if per_actor else key
        cost[label_values] += microcents
        for token_type, value in zip(TOKEN_TYPES, token_sums, strict=True):
            tokens[(*label_values, token_type)] += value
    yield _gauge(
        f"{PREFIX}_{period}_model_cost_usd",
        f"Estimated cost in USD by model in {where}.",
        labels,
        {key: dollars(value) for key, value in cost.items()},
    )
    yield _gauge(
        f"{PREFIX}_{period}_model_tokens",
        f"Tokens by model and token type in {where}.",
        [*labels, "token_type"],
        tokens,
    )


def _active_members(name: str, counts: dict[str, int], help_text: str) -> Metric:
    values = {(actor_type,): count for actor_type, count in sorted(counts.items())}
    return _gauge(name, help_text, ["actor_type"], values)


def _gauge(
    name: str, help_text: str, labels: list[str], values: Mapping[tuple[str, ...], float]
) -> Metric:
    """A data gauge computed from the store, its help saying so, with one sample per label set."""
    family = GaugeMetricFamily(name, f"{help_text} {CACHE_NOTE}", labels=labels)
    for key, value in values.items():
        family.add_metric(key, value)
    return family


def _member_info(store: Store, members: MemberLabels) -> Iterator[Metric]:
    spans = store.activity_span()
    org_members = store.members()
    roles = {m.email.lower(): m.role for m in org_members}
    active_emails = {name.lower() for kind, name in spans if kind == "user"}
    actors = set(spans) | {
        ("user", m.email) for m in org_members if m.email.lower() not in active_emails
    }
    info = GaugeMetricFamily(
        f"{PREFIX}_member_info",
        "1 for every actor in the store and every organization user, with the user's Console role.",
        labels=[*members.names, "role"],
    )
    seen: set[tuple[str, ...]] = set()
    for actor in sorted(actors):
        role = roles.get(actor[1].lower(), "") if actor[0] == "user" else ""
        key = (*members.values(actor), role)
        if key not in seen:
            seen.add(key)
            info.add_metric(key, 1)
    yield info
    if members.mode == "drop":
        return
    first = GaugeMetricFamily(
        f"{PREFIX}_member_first_active_timestamp_seconds",
        "Start (00:00 UTC) of the first stored day with a record for the actor.",
        labels=list(members.names),
    )
    last = GaugeMetricFamily(
        f"{PREFIX}_member_last_active_timestamp_seconds",
        "Start (00:00 UTC) of the latest day with a record for the actor (the API reports days).",
        labels=list(members.names),
    )
    for actor, (first_day, last_day) in sorted(spans.items()):
        first.add_metric(members.values(actor), day_start(first_day))
        last.add_metric(members.values(actor), day_start(last_day))
    yield first
    yield last


def exporter_families(stats: ExporterStats) -> Iterator[Metric]:
    def gauge(name: str, help_text: str, value: float | None) -> Iterator[Metric]:
        family = GaugeMetricFamily(f"{EXPORTER_PREFIX}_{name}", help_text)
        if value is not None:
            family.add_metric([], value)
        yield family

    yield from gauge(
        "up",
        "1 if the last poll of the Admin API succeeded and the poll in progress has not failed"
        " yet, else 0.",
        float(stats.up),
    )
    yield from gauge(
        "poll_in_progress", "1 while a poll of the Admin API runs, else 0.", float(stats.polling)
    )
    yield from gauge(
        "poll_start_timestamp_seconds",
        "When the poll in progress, or else the last poll, started.",
        stats.poll_started,
    )
    yield from gauge(
        "last_attempt_timestamp_seconds",
        "When the last poll ended, whether it succeeded or not.",
        stats.last_attempt,
    )
    yield from gauge(
        "last_success_timestamp_seconds",
        "When the last fully successful poll ended.",
        stats.last_success,
    )
    yield from gauge("poll_duration_seconds", "Wall time of the last poll.", stats.poll_duration)
    yield from gauge(
        "store_oldest_day_timestamp_seconds",
        "Start (00:00 UTC) of the oldest day held in the store.",
        stats.oldest_day,
    )
    for name, (help_text, label_names) in COUNTERS.items():
        family = CounterMetricFamily(
            f"{EXPORTER_PREFIX}_{name}", help_text + " (kept across restarts).", labels=label_names
        )
        for (counter, labels), value in sorted(stats.counters.items()):
            if counter == name:
                family.add_metric([dict(labels)[n] for n in label_names], value)
        yield family
    info = GaugeMetricFamily(
        f"{EXPORTER_PREFIX}_build_info",
        "Build information; always 1.",
        labels=["version", "python_version"],
    )
    info.add_metric([__version__, platform.python_version()], 1)
    yield info


class _Snapshot:
    def __init__(self, families: Iterable[Metric]):
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def organization_labels(organization_id: str | None, name: str) -> dict[str, str]:
    """The labels every series of an organization carries, first in each sample's label set."""
    return {"organization_id": organization_id or "", "organization_name": name}


def render(families: Iterable[Metric], labels: Mapping[str, str] | None = None) -> bytes:
    """The text exposition of `families`, the bytes `generate_latest` gives for all of them, with
    `labels` added to every sample.

    Rendered one family at a time: at 10,000 members the text of all families at once, as one list
    of lines, one string and its encoding, would be held together (docs/performance.md). A
    generator of families is consumed as it goes."""
    return b"".join(_render_family(family, labels) for family in families)


def _render_family(family: Metric, labels: Mapping[str, str] | None = None) -> bytes:
    if labels:
        family.samples = [s._replace(labels={**labels, **s.labels}) for s in family.samples]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([family]))  # type: ignore[arg-type]
    return generate_latest(registry)
