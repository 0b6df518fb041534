"""Metric families computed from the store, rendered once per poll into a cached exposition.

Nothing here runs on a scrape: the poller calls `render()` and the HTTP handler serves the bytes
it returned. docs/metrics.md explains every series and why the data series are period gauges.

At 50,000 members the exposition has up to 1.7 million series, so memory is kept per family: the
store's rows are read as they come and summed into compact columns (Sums), a data family is a
DataGauge that holds those sums rather than prometheus_client samples, and render_chunks() writes
one family after the other, a piece at a time (docs/performance.md)."""

from __future__ import annotations

import hashlib
import hmac
import platform
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableSequence, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

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
            {(terminal,): count for terminal, count in sorted(terminals.items())}.items(),
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
    sums = Sums(len(CORE_FIELDS) + 1)  # the core counts, then the cost in microcents
    for actor_type, actor, *values in store.actor_rows(start, end):
        sums.add(members.values((actor_type, actor)), values)
    for n, f in enumerate(CORE_FIELDS):
        yield _gauge(
            f"{PREFIX}_{period}_{f}", f"{CORE_HELP[f]} in {where}.", labels, sums.column(n)
        )
    yield _gauge(
        f"{PREFIX}_{period}_cost_usd",
        f"Estimated cost in USD in {where} (sum of estimated_cost, in cents, / 100).",
        labels,
        sums.column(len(CORE_FIELDS), dollars),
    )
    del sums  # the families above are rendered by now: their sums go before the next are read
    decisions = Sums(2)  # accepted, rejected per member label values and tool
    for (actor_type, actor, tool), counts in store.tool_rows(start, end):
        decisions.add((*members.values((actor_type, actor)), tool), counts)
    yield _gauge(
        f"{PREFIX}_{period}_tool_decisions",
        f"Code-editing tool suggestions accepted or rejected in {where}.",
        [*labels, "tool", "decision"],
        decisions.spread(("accepted", "rejected")),
    )


def _model_families(
    store: Store, period: str, start: date, end: date, settings: Settings, members: MemberLabels
) -> Iterator[Metric]:
    where = PERIOD_HELP[period]
    per_actor = settings.member_models
    labels = [*members.names, "model"] if per_actor else ["model"]
    sums = Sums(len(TOKEN_TYPES) + 1)  # the tokens by type, then the cost in microcents
    for key, values in store.model_rows(start, end, per_actor):
        label_values = (*members.values((key[0], key[1])), key[2]) if per_actor else key
        sums.add(label_values, values)
    yield _gauge(
        f"{PREFIX}_{period}_model_cost_usd",
        f"Estimated cost in USD by model in {where}.",
        labels,
        sums.column(len(TOKEN_TYPES), dollars),
    )
    yield _gauge(
        f"{PREFIX}_{period}_model_tokens",
        f"Tokens by model and token type in {where}.",
        [*labels, "token_type"],
        sums.spread(TOKEN_TYPES),
    )


def _active_members(name: str, counts: dict[str, int], help_text: str) -> Metric:
    values = {(actor_type,): count for actor_type, count in sorted(counts.items())}
    return _gauge(name, help_text, ["actor_type"], values.items())


class Series(Protocol):
    """A family's series: (label values, value) pairs, as often as they are iterated."""

    def __iter__(self) -> Iterator[tuple[tuple[str, ...], float]]: ...

    def __len__(self) -> int: ...


def _gauge(name: str, help_text: str, labels: list[str], series: Series) -> Metric:
    """A data gauge computed from the store, its help saying so, with one sample per label set."""
    return DataGauge(name, f"{help_text} {CACHE_NOTE}", labels, series)


class DataGauge(GaugeMetricFamily):
    """A gauge that keeps its series as (label values, value) pairs, not as samples.

    A sample of prometheus_client (a named tuple and a dict of labels) takes about 400 bytes, and
    the largest family has several per member: render() writes the text from `series` instead.
    `samples` builds them when read, for the readers of Metric (the backfill)."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str], series: Series):
        if '"' in documentation:
            # The data's text is served as OpenMetrics too (exporter/exposition.py): a gauge's
            # lines are the same in both formats but for a quote in HELP, which only OpenMetrics
            # escapes.
            raise ValueError(f"the help of {name} has a double quote: {documentation!r}")
        super().__init__(name, documentation, labels=labels)
        self.label_names = tuple(labels)
        self.series = series
        self.samples = _Samples(self.name, self.label_names, series)  # type: ignore[assignment]


class _Samples:
    """The samples of a DataGauge, as add_metric() would have made them, built as they are read.
    It holds what it needs, not the family: a cycle would keep each family until the garbage
    collector's next full pass."""

    def __init__(self, name: str, labels: tuple[str, ...], series: Series):
        self._name, self._labels, self._series = name, labels, series

    def __iter__(self) -> Iterator[Sample]:
        for key, value in self._series:
            yield Sample(self._name, dict(zip(self._labels, key, strict=False)), value)

    def __len__(self) -> int:
        return len(self._series)

    def __bool__(self) -> bool:
        return any(True for _ in self._series)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Iterable) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(list(self))


class Sums:
    """Integer sums per label set, kept in the order the label sets first came: what a dict of
    label values to sums would hold, in a fraction of its memory (the label values once, the sums
    in arrays of 64-bit integers, which the store's sums fit; a sum past them turns its column
    into Python integers)."""

    def __init__(self, width: int):
        self.keys: list[tuple[str, ...]] = []
        self._index: dict[tuple[str, ...], int] = {}
        self._columns: list[MutableSequence[int]] = [array("q") for _ in range(width)]

    def add(self, key: tuple[str, ...], values: Iterable[int]) -> None:
        at = self._index.setdefault(key, len(self.keys))
        if at == len(self.keys):
            self.keys.append(key)
            for column, value in zip(self._columns, values, strict=True):
                column.append(value)
            return
        for n, value in enumerate(values):
            try:
                self._columns[n][at] += value
            except OverflowError:
                self._columns[n] = list(self._columns[n])
                self._columns[n][at] += value

    def __len__(self) -> int:
        return len(self.keys)

    def column(self, n: int, convert: Callable[[int], float] | None = None) -> Series:
        """The label sets with their nth sum, `convert`ed when given."""
        return _Column(self, n, convert)

    def spread(self, names: Sequence[str]) -> Series:
        """Each label set with each sum, one series per sum, the sum's name as the last label
        value (as a dict keyed by label values and that name would hold them)."""
        return _Spread(self, names)


class _Column:
    def __init__(self, sums: Sums, n: int, convert: Callable[[int], float] | None):
        self._sums, self._n, self._convert = sums, n, convert

    def __len__(self) -> int:
        return len(self._sums)

    def __iter__(self) -> Iterator[tuple[tuple[str, ...], float]]:
        values = self._sums._columns[self._n]
        if self._convert is None:
            return zip(self._sums.keys, values, strict=True)
        return zip(self._sums.keys, map(self._convert, values), strict=True)


class _Spread:
    def __init__(self, sums: Sums, names: Sequence[str]):
        self._sums, self._names = sums, names

    def __len__(self) -> int:
        return len(self._sums) * len(self._names)

    def __iter__(self) -> Iterator[tuple[tuple[str, ...], float]]:
        columns = self._sums._columns
        for at, key in enumerate(self._sums.keys):
            for name, column in zip(self._names, columns, strict=False):
                yield (*key, name), column[at]


def _member_info(store: Store, members: MemberLabels) -> Iterator[Metric]:
    spans = store.activity_span()
    active_emails = {name.lower() for kind, name in spans if kind == "user"}
    roles: dict[str, str] = {}
    inactive = set()
    for email, role in store.member_roles():
        lowered = email.lower()
        roles[lowered] = sys.intern(role)
        if lowered not in active_emails:
            inactive.add(("user", email))
    del active_emails
    actors = sorted(inactive.union(spans))
    del inactive
    yield DataGauge(
        f"{PREFIX}_member_info",
        "1 for every actor in the store and every organization user, with the user's Console role.",
        [*members.names, "role"],
        _MemberInfo(actors, roles, members),
    )
    if members.mode == "drop":
        return
    yield DataGauge(
        f"{PREFIX}_member_first_active_timestamp_seconds",
        "Start (00:00 UTC) of the first stored day with a record for the actor.",
        list(members.names),
        _ActivityDays(actors, spans, members, 0),
    )
    yield DataGauge(
        f"{PREFIX}_member_last_active_timestamp_seconds",
        "Start (00:00 UTC) of the latest day with a record for the actor (the API reports days).",
        list(members.names),
        _ActivityDays(actors, spans, members, 1),
    )


class _MemberInfo:
    """A 1 for each distinct (member label values, role) of the actors, in their order."""

    def __init__(self, actors: list[Actor], roles: dict[str, str], members: MemberLabels):
        self._actors, self._roles, self._members = actors, roles, members

    def _keys(self) -> Iterator[tuple[str, ...]]:
        seen: set[tuple[str, ...]] = set()
        for actor in self._actors:
            role = self._roles.get(actor[1].lower(), "") if actor[0] == "user" else ""
            key = (*self._members.values(actor), role)
            if key not in seen:
                seen.add(key)
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self._keys())

    def __iter__(self) -> Iterator[tuple[tuple[str, ...], float]]:
        return ((key, 1) for key in self._keys())


class _ActivityDays:
    """The start of each active actor's first (`which` 0) or last (1) day with a record."""

    def __init__(
        self,
        actors: list[Actor],
        spans: dict[Actor, tuple[date, date]],
        members: MemberLabels,
        which: int,
    ):
        self._actors, self._spans, self._members, self._which = actors, spans, members, which

    def __len__(self) -> int:
        return len(self._spans)

    def __iter__(self) -> Iterator[tuple[tuple[str, ...], float]]:
        for actor in self._actors:
            span = self._spans.get(actor)
            if span is not None:
                yield self._members.values(actor), day_start(span[self._which])


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


# Lines of a family encoded at once by render_chunks(): about 100 kB of text.
CHUNK_LINES = 1000
EOF_LINE = b"# EOF\n"  # ends an OpenMetrics exposition


def render(
    families: Iterable[Metric],
    labels: Mapping[str, str] | None = None,
    openmetrics: bool = False,
) -> bytes:
    """The text exposition of `families`, the bytes `generate_latest` gives for all of them, with
    `labels` added to every sample; with `openmetrics`, their OpenMetrics text without the final
    `# EOF`, which goes once after every part of an exposition."""
    return b"".join(render_chunks(families, labels, openmetrics))


def render_chunks(
    families: Iterable[Metric],
    labels: Mapping[str, str] | None = None,
    openmetrics: bool = False,
) -> Iterator[bytes]:
    """render() in pieces of at most CHUNK_LINES lines.

    A generator of families is consumed as it goes, and a DataGauge is written from its sums, so
    what is held at once is one family's sums and one piece of text, not the exposition (at
    50,000 members up to 370 MB of text, 1.7 million series; docs/performance.md). A DataGauge's
    text is the same in both formats (its help has no double quote)."""
    for family in families:
        if isinstance(family, DataGauge):
            yield from _gauge_chunks(family, labels or {})
        else:
            yield _render_family(family, labels, openmetrics)
        del family  # not held while the next family is computed


def _render_family(
    family: Metric, labels: Mapping[str, str] | None = None, openmetrics: bool = False
) -> bytes:
    if labels:
        labelled = Metric(family.name, family.documentation, family.type, family.unit)
        labelled.samples = [s._replace(labels={**labels, **s.labels}) for s in family.samples]
        family = labelled
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([family]))  # type: ignore[arg-type]
    if openmetrics:
        return generate_openmetrics(registry).removesuffix(EOF_LINE)
    return generate_latest(registry)


def _gauge_chunks(family: DataGauge, labels: Mapping[str, str]) -> Iterator[bytes]:
    """generate_latest's text for a DataGauge with `labels` added (its own label of the same
    name wins, as in _render_family): labels in name order, escaped as it escapes them, values as
    floatToGoString writes them."""
    name, names = family.name, family.label_names
    added = {label: value for label, value in labels.items() if label not in names}
    documentation = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
    lines = [f"# HELP {name} {documentation}\n# TYPE {name} gauge\n"]
    fields, order = [], []  # each label's text in name order; where the family's come from
    for label in sorted([*names, *added]):
        if label in added:
            fields.append(f'{label}="{_escape(added[label])}"'.replace("%", "%%"))
        else:
            fields.append(f'{label}="%s"')
            order.append(names.index(label))
    line = f"{name}{{{','.join(fields)}}} %s\n" if fields else f"{name} %s\n"
    numbers: dict[int, str] = {}  # counts repeat across series; floats rarely do
    for key, value in family.series:
        if type(value) is int:
            number = numbers.get(value)
            if number is None:
                number = numbers[value] = floatToGoString(value)
        else:
            number = floatToGoString(value)
        lines.append(line % (*[_escape(key[i]) for i in order], number))
        if len(lines) >= CHUNK_LINES:
            yield "".join(lines).encode()
            lines.clear()
    yield "".join(lines).encode()


def _escape(value: str) -> str:
    """A label value as generate_latest escapes it."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value
