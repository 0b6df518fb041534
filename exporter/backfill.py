"""`python -m exporter backfill`: load the history the Admin API holds into Prometheus.

Two stages. First the days the store lacks are fetched by a small pool of workers and each day is
committed to the store as it arrives, so an interrupted run resumes without fetching a stored day
again. Then, for each day D of the range, the exporter's view as of 23:59:00 UTC of D (`today` = D,
`yesterday` = D-1, `month_to_date` through D, see docs/metrics.md, "Per-day values") is written as
one OpenMetrics file with that timestamp and turned into a TSDB block by `promtool tsdb
create-blocks-from openmetrics`. One file per day keeps every metric family contiguous, as
OpenMetrics requires, and bounds memory and disk by one day of one organization. docs/backfill.md
explains how to use the blocks.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, TextIO, cast

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.samples import Sample
from tqdm import tqdm

from .blocks import PRIVATE_UMASK, BlockFolder, BlockFolderError, private_file
from .cli import PROG as EXPORTER
from .cli import Parser, UsageError, report
from .client import AdminClient, ApiError
from .clock import DATA_DELAY, Clock, day_start, utc_now
from .collector import PREFIX, MemberLabels, Settings, data_families, organization_labels
from .config import Config, ConfigError, Organization, add_arguments, load
from .poller import (
    ORGANIZATION_KEY,
    ORGANIZATION_NAME_KEY,
    DayFetch,
    WrongOrganization,
    fetch_day,
    identify,
)
from .sources import open_sources
from .store import Actor, Store, StoreError

PROG = f"{EXPORTER} backfill"
DEFAULT_JOB = "claude-code-analytics"
DEFAULT_INSTANCE = "exporter:9687"
SAMPLE_TIME = time(23, 59)
# Days before --since that the first written day's month-to-date and 30-day counts read.
LOOKBACK_DAYS = 29
MAX_WORKERS = 16
POLL_SECONDS = 0.2  # how often the fetch loop looks for a stop request
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# The mixin's recording rules that sum or count per-member series over members for the per-day
# panels (rules/rules.libsonnet, group claude-code-analytics.members). A rule records from the
# moment Prometheus loads it, so the backfill writes the same series for the days before.
MEMBER_AGGREGATES = (
    ("sessions", "sum"),
    ("sessions", "count"),
    ("lines_added", "sum"),
    ("lines_removed", "sum"),
    ("commits", "sum"),
    ("pull_requests", "sum"),
    ("cost_usd", "sum"),
    ("tool_decisions", "sum"),
)
AGGREGATED_PERIODS = ("today", "yesterday")


class BackfillError(Exception):
    """The backfill could not finish (API, store or promtool); exit status 1."""


class Interrupted(Exception):
    """SIGINT or SIGTERM: in-flight days were stored, the rest is left for the next run."""


@dataclass(frozen=True)
class Options:
    since: date | None
    until: date
    output: Path
    fill_gaps: bool
    workers: int
    job: str
    instance: str
    promtool: str
    config: Config
    organization: Organization  # the one of the configuration's organizations to backfill


# --- Command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Fetch the Claude Code usage history the Admin API holds into the store and "
        "write it as Prometheus TSDB blocks. Takes the exporter's flags too (serving flags are "
        "ignored), so one --config.file serves both; the metrics flags must match the exporter's.",
    )
    add = parser.add_argument
    add("--since", metavar="DAY", help="first day to write, YYYY-MM-DD (UTC)")
    add(
        "--until",
        metavar="DAY",
        help="last day to write, YYYY-MM-DD (default: the last day the API has finished, UTC)",
    )
    add("--output", metavar="DIR", required=True, help="directory the TSDB blocks are written to")
    add(
        "--fill-gaps",
        action="store_true",
        help="also report and fetch the days missing in the store between its oldest day and "
        "--until (without --since: write blocks from the store's oldest day)",
    )
    add("--workers", metavar="N", default="4", help="days fetched at once (default 4)")
    add(
        "--target.job",
        dest="job",
        default=DEFAULT_JOB,
        help=f"job label of the exporter's scrape target (default {DEFAULT_JOB})",
    )
    add(
        "--target.instance",
        dest="instance",
        default=DEFAULT_INSTANCE,
        help=f"instance label of the exporter's scrape target (default {DEFAULT_INSTANCE})",
    )
    add("--promtool", metavar="PATH", default="promtool", help="promtool to create blocks with")
    add(
        "--organization",
        metavar="NAME",
        help="which of the --config.file's organizations to backfill (needed when it lists "
        "several; each goes into its own Prometheus)",
    )
    add_arguments(parser)
    return parser


def parse_args(
    argv: list[str], environ: dict[str, str] | None = None, now: datetime | None = None
) -> Options:
    """Options from the command line and environment; UsageError for anything wrong."""
    args = _parser().parse_args(argv)
    now = now or utc_now()
    today = now.date()
    try:
        config = load(args, environ)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    since = _day("--since", args.since) if args.since else None
    until = _day("--until", args.until) if args.until else last_final_day(now)
    if since is None and not args.fill_gaps:
        raise UsageError("--since is required (or --fill-gaps to start at the store's oldest day)")
    if until >= today:
        raise UsageError(f"--until must be a past day (before {today}), not {until}")
    if since is not None and since > until:
        raise UsageError(f"--since {since} is after --until {until}")
    workers = _workers(args.workers)
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file, not a directory")
    promtool = shutil.which(args.promtool)
    if promtool is None:
        raise UsageError(f"promtool not found at {args.promtool!r}; install it or pass --promtool")
    return Options(
        since,
        until,
        output,
        args.fill_gaps,
        workers,
        args.job,
        args.instance,
        promtool,
        config,
        _organization(config, args.organization),
    )


def _organization(config: Config, name: str | None) -> Organization:
    names = ", ".join(org.name for org in config.organizations)
    if name is None:
        if len(config.organizations) > 1:
            raise UsageError(f"--organization is required: the configuration lists {names}")
        return config.organizations[0]
    for org in config.organizations:
        if org.name == name:
            return org
    raise UsageError(f"--organization {name!r} is not in the configuration, which lists {names}")


def _day(flag: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} must be a day like 2026-09-01, not {text!r}") from None


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise UsageError(f"--workers must be a whole number from 1 to {MAX_WORKERS}, not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        options = parse_args(argv)
    except UsageError as exc:
        report(PROG, exc)
        return EXIT_USAGE
    logging.basicConfig(
        level=options.config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        with StopOnSignal() as stop:
            blocks = run(options, stop)
    except (Interrupted, KeyboardInterrupt):
        report(PROG, "interrupted; run the same command again to resume")
        return EXIT_INTERRUPTED
    except (BackfillError, BlockFolderError, StoreError) as exc:
        report(PROG, exc)
        return EXIT_FAILED
    except OSError as exc:
        report(PROG, f"cannot write {exc.filename}: {exc.strerror}")
        return EXIT_FAILED
    replaced = f", replacing {blocks.replaced} of earlier runs" if blocks.replaced else ""
    report(PROG, f"wrote {len(blocks.written)} daily blocks to {options.output}{replaced}")
    return 0


class StopOnSignal:
    """The first SIGINT or SIGTERM asks the run to stop at a safe point (in-flight days are
    stored, blocks of an unfinished run removed); a second one aborts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> threading.Event:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self.event

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: object) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()


# --- The run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    written: list[Path]  # the blocks of this run, in --output
    replaced: int  # blocks of earlier runs removed, as this run wrote their days again


def run(
    options: Options, stop: threading.Event | None = None, clock: Clock | None = None
) -> Written:
    """Fetch what the store lacks, then write the blocks."""
    folder = BlockFolder(options.output, options.job, options.instance)
    with folder:  # first: it removes what a killed run left, whatever this run then does
        written = _run(options, folder, stop, clock)
    return Written(written, folder.replaced)


def _run(
    options: Options, folder: BlockFolder, stop: threading.Event | None, clock: Clock | None
) -> list[Path]:
    config = options.config
    store = Store(options.organization.storage_path)
    try:
        with open_sources(config) as sources:
            client = next(s.client for s in sources if s.organization == options.organization)
            stop = stop or threading.Event()
            first = options.since or oldest_day(store, options.until)
            labels = _identify(client, store, options.organization.name)
            fetch_days(store, client.clone, options, first, clock or utc_now, stop)
        settings = Settings(config.member_label, config.member_models)
        return folder.commit(_write_days(store, first, options, settings, labels, stop, folder))
    finally:
        store.close()


def _identify(client: AdminClient, store: Store, name: str) -> dict[str, str]:
    """The organization labels of the blocks, as the exporter gives them to its series."""
    try:
        org = identify(client, store, name)
    except WrongOrganization as exc:
        raise BackfillError(str(exc)) from None
    except ApiError as exc:
        raise BackfillError(f"cannot read the organization: {exc}") from None
    known_id = org.id if org else store.meta(ORGANIZATION_KEY)
    known_name = org.name if org else store.meta(ORGANIZATION_NAME_KEY)
    return organization_labels(known_id, known_name or name)


def last_final_day(now: datetime) -> date:
    """The latest day whose data the API has finished: it ended more than an hour ago."""
    return (now - DATA_DELAY).date() - timedelta(days=1)


def oldest_day(store: Store, until: date) -> date:
    fetched = [day for day in store.fetched_days() if day <= until]
    if not fetched:
        raise BackfillError("the store holds no day yet, so --fill-gaps needs --since")
    return min(fetched)


def context_start(first: date) -> date:
    """The earliest day the first written day depends on: its month and its 30-day window."""
    return min(first.replace(day=1), first - timedelta(days=LOOKBACK_DAYS))


def lacking_days(store: Store, start: date, end: date) -> list[date]:
    """Days of start..end that the store lacks: never fetched, or fetched before they were final."""
    fetched = store.fetched_days()
    out, day = [], start
    while day <= end:
        final_after = day_start(day + timedelta(days=1)) + DATA_DELAY.total_seconds()
        if fetched.get(day, -math.inf) < final_after:
            out.append(day)
        day += timedelta(days=1)
    return out


def gaps(store: Store, until: date) -> list[date]:
    """Days missing in the store between its oldest stored day and `until`."""
    fetched = [day for day in store.fetched_days() if day <= until]
    return lacking_days(store, min(fetched), until) if fetched else []


def describe_days(days: Iterable[date]) -> str:
    """Days as compact ranges: '2026-09-01..2026-09-03, 2026-09-07'."""
    spans: list[list[date]] = []
    for day in sorted(days):
        if spans and day - spans[-1][1] == timedelta(days=1):
            spans[-1][1] = day
        else:
            spans.append([day, day])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in spans)


def fetch_days(
    store: Store,
    make_client: Callable[[], AdminClient],
    options: Options,
    first: date,
    clock: Clock,
    stop: threading.Event,
) -> None:
    days = lacking_days(store, context_start(first), options.until)
    if options.fill_gaps:
        holes = gaps(store, options.until)
        if holes:
            report(PROG, f"the store lacks {len(holes)} days: {describe_days(holes)}")
        days = sorted(set(days) | set(holes))
    client = make_client()
    try:
        store.replace_members(client.list_users())
    except ApiError as exc:
        raise BackfillError(f"cannot read the member list: {exc}") from None
    if not days:
        return
    fetcher = _Fetcher(make_client)
    with progress(len(days), "fetching days") as bar:
        for day, fetched in fetcher.fetch(days, options.workers, stop):
            store.replace_day(day, fetched.records, clock().timestamp())
            bar.update(1)


def progress(total: int, what: str) -> tqdm:
    """A progress bar on stderr: days done, total and rate; in a log (not a terminal), a line
    every ten seconds rather than ten a second."""
    interval = 0.1 if sys.stderr.isatty() else 10.0
    return tqdm(total=total, desc=what, unit="day", file=sys.stderr, mininterval=interval)


class _Fetcher:
    """Fetches days on a bounded pool, one API client per worker thread.

    Once `stop` is set no further day is started; the days in flight finish and are handed back
    (so they are stored, not fetched again by the next run), then Interrupted is raised.
    """

    def __init__(self, make_client: Callable[[], AdminClient]):
        self._make_client = make_client
        self._local = threading.local()

    def _fetch_day(self, day: date) -> DayFetch:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._make_client()
        return fetch_day(client, day)

    def fetch(
        self, days: list[date], workers: int, stop: threading.Event
    ) -> Iterator[tuple[date, DayFetch]]:
        pending = iter(days)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
            running: dict[Future[DayFetch], date] = {}
            while True:
                while not stop.is_set() and len(running) < workers:
                    day = next(pending, None)
                    if day is None:
                        break
                    running[pool.submit(self._fetch_day, day)] = day
                if not running:
                    break
                done, _ = wait(running, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    day = running.pop(future)
                    try:
                        yield day, future.result()
                    except ApiError as exc:
                        raise BackfillError(f"cannot fetch {day}: {exc}") from None
        if stop.is_set():
            raise Interrupted


# --- Blocks ---------------------------------------------------------------------------------------


def sample_time(day: date) -> int:
    """23:59:00 UTC of `day`: the moment of the exporter's view that the backfill writes."""
    return int(datetime.combine(day, SAMPLE_TIME, tzinfo=UTC).timestamp())


def _write_days(
    store: Store,
    first: date,
    options: Options,
    settings: Settings,
    labels: dict[str, str],
    stop: threading.Event,
    folder: BlockFolder,
) -> dict[date, Path]:
    """One OpenMetrics file and one promtool run per day, in the staging folder; promtool works
    on a day while the next one is rendered. Returns each day's finished block."""
    members = MemberLabels(settings.member_label, store.secret())
    extra = (*labels.items(), ("job", options.job), ("instance", options.instance))
    view = StoreAsOf(store)
    stored = store.fetched_days()
    for day in _days(min(stored, default=first), first - timedelta(days=1)):
        view.advance_to(day)
    days = _days(first, options.until)
    work = folder.staging_folder("work")
    blocks: dict[date, Path] = {}
    with progress(len(days), "writing blocks") as bar:
        promtool: _Promtool | None = None
        try:
            for day in days:
                if stop.is_set():
                    raise Interrupted
                view.advance_to(day)
                path = work / f"{day}.om"
                with private_file(path) as out:
                    families = with_member_aggregates(
                        data_families(cast(Store, view), day, settings, members), day
                    )
                    write_openmetrics(out, families, extra, sample_time(day))
                if promtool is not None:
                    blocks[promtool.day] = promtool.wait()
                    bar.update(1)
                promtool = _Promtool(options.promtool, day, path, folder.staging_folder(str(day)))
            if promtool is not None:
                blocks[promtool.day] = promtool.wait()
                bar.update(1)
        finally:
            if promtool is not None:
                promtool.kill()
    return blocks


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


class _Promtool:
    """One `promtool tsdb create-blocks-from openmetrics` run over one day's file, into its own
    folder, with its temporary files beside it and private files whatever the umask."""

    def __init__(self, promtool: str, day: date, source: Path, output: Path):
        self.day = day
        self.source = source
        self.output = output
        command = ["tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(output)]
        self._process = subprocess.Popen(
            [promtool, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TMPDIR": str(output)},
            umask=PRIVATE_UMASK,
        )

    def kill(self) -> None:
        """Stop a run that is still going (after a failure or a stop request)."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.communicate()

    def wait(self) -> Path:
        """The finished block."""
        output, _ = self._process.communicate()
        self.source.unlink(missing_ok=True)
        if self._process.returncode != 0:
            lines = output.decode(errors="replace").strip().splitlines()
            detail = lines[-1] if lines else f"exit status {self._process.returncode}"
            raise BackfillError(f"promtool could not create the block of {self.day}: {detail}")
        blocks = [p for p in self.output.iterdir() if (p / "meta.json").is_file()]
        if len(blocks) != 1:
            raise BackfillError(f"promtool made {len(blocks)} blocks of {self.day}, not one")
        return blocks[0]


class StoreAsOf:
    """The store as the exporter saw it at the end of a day: first and last activity stop there.

    Everything else is delegated; the per-period queries already take their days."""

    def __init__(self, store: Store):
        self._store = store
        self._spans: dict[Actor, tuple[date, date]] = {}

    def advance_to(self, day: date) -> None:
        """Record the activity of `day`; call for consecutive days."""
        for actor in self._store.actor_totals(day, day):
            first = self._spans.get(actor, (day, day))[0]
            self._spans[actor] = (first, day)

    def activity_span(self) -> dict[Actor, tuple[date, date]]:
        return dict(self._spans)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def member_aggregate_name(period: str, quantity: str, agg: str) -> str:
    return f"{PREFIX}:{period}_{quantity}:{agg}_without_member"


def new_members_name(period: str) -> str:
    return f"{PREFIX}:{period}_new_members:count"


def with_member_aggregates(families: Iterable[Metric], today: date) -> Iterator[Metric]:
    """The families of the exporter's view on `today`, each followed by what the member recording
    rules record from it: its samples summed (or counted) by every label but `member`, as
    `sum without (member)` does, and the members whose first active day is today or yesterday."""
    wanted: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for period in AGGREGATED_PERIODS:
        for quantity, agg in MEMBER_AGGREGATES:
            name = f"{PREFIX}_{period}_{quantity}"
            wanted[name].append((member_aggregate_name(period, quantity, agg), agg))
    first_days = {"today": day_start(today), "yesterday": day_start(today - timedelta(days=1))}
    for family in families:
        yield family
        for name, agg in wanted.get(family.name, ()):
            yield _without_member(family, name, agg)
        if family.name == f"{PREFIX}_member_first_active_timestamp_seconds":
            for period, first_day in first_days.items():
                yield _without_member(family, new_members_name(period), "count", first_day)


def _without_member(family: Metric, name: str, agg: str, only: float | None = None) -> Metric:
    """`agg without (member)` of the family, over its samples equal to `only` when given."""
    groups: dict[tuple[tuple[str, str], ...], float] = defaultdict(int)
    for sample in family.samples:
        if only is not None and sample.value != only:
            continue
        key = tuple((k, v) for k, v in sample.labels.items() if k != "member")
        groups[key] += sample.value if agg == "sum" else 1
    aggregated = GaugeMetricFamily(
        name, f"{agg} without (member) of {family.name}, as the mixin's recording rule records it."
    )
    aggregated.samples = [Sample(name, dict(key), value) for key, value in groups.items()]
    return aggregated


# --- OpenMetrics ----------------------------------------------------------------------------------


def write_openmetrics(
    out: TextIO | IO[str],
    families: Iterable[Metric],
    extra_labels: tuple[tuple[str, str], ...],
    timestamp: int,
) -> int:
    """Write families as OpenMetrics text with one timestamp and `# EOF`; returns the samples."""
    suffix = "".join(f',{name}="{escape(value)}"' for name, value in extra_labels)
    stamp = f" {timestamp}\n"
    count = 0
    for family in families:
        if not family.samples:
            continue
        out.write(f"# HELP {family.name} {escape(family.documentation)}\n")
        out.write(f"# TYPE {family.name} {family.type}\n")
        lines = []
        for sample in family.samples:
            labels = ",".join(f'{k}="{escape(v)}"' for k, v in sample.labels.items())
            labels = (labels + suffix) if labels else suffix[1:]
            lines.append(f"{sample.name}{{{labels}}} {number(sample.value)}{stamp}")
        out.writelines(lines)
        count += len(lines)
    out.write("# EOF\n")
    return count


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
