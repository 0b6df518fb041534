"""The Console's figures at the instants where days, months and years turn, end to end on a real
Prometheus, whatever the real time is.

A story runs a simulated organization and the exporter's poller on one clock, from the story's
start to its last instant. At every instant (every half hour, and each checked instant) the
poller polls, and what the exporter serves then, with what the mixin's member recording rules
record from it, is kept with that instant as its timestamp: what a scrape and a rule evaluation
at that moment would store. For each checked instant, promtool turns the samples up to it into
blocks, a real Prometheus opens them, and the dashboard's queries are sent as Grafana sends them
for a range that ends at that instant. The expectations are the Console's definitions over the
records the organization serves (tests/console.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import product
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import console
from conftest import TEST_KEY, Clock, make_poller
from exporter.backfill import escape, number, parse_args, run, with_member_aggregates
from exporter.clock import frozen, midnight
from exporter.simulator import SimulatedOrganization, serve
from grafana_queries import TimeRange, as_opened, prometheus_call
from procs import start_prometheus

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = json.loads((ROOT / "dashboards" / "generated" / "analytics.json").read_text())
EVERY = timedelta(minutes=30)
DAY = timedelta(days=1)
CONSOLE_TOOLS = ("edit_tool", "write_tool", "notebook_edit_tool")
JOB = "claude-code-analytics"  # the scrape's job, the backfill's default
DATA_PREFIX = "claude_code_analytics_"
OWN_PREFIX = "claude_code_analytics_exporter_"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@dataclass(frozen=True)
class Story:
    start: datetime
    checks: tuple[datetime, ...]
    # A backfill of that many days with the default --until and labels: run at `start`, into the
    # exporter's store before it starts, or at the last check from a store of its own.
    backfill_days: int = 0
    backfill_last: bool = False
    # The `instance` labels the live samples arrive under: one per exporter replica scraped.
    instances: tuple[str, ...] = ("exporter:9687",)


STORIES = {
    # A long-running stack through a month's last minute, the 1st's first hours (nothing this
    # month yet at 00:30), 00:59 and 01:00 (the previous day's last hour arrives), and 02:30
    # (the new day's first data).
    "month-end": Story(
        utc(2027, 6, 29, 12),
        (utc(2027, 6, 30, 23, 59), utc(2027, 7, 1, 0, 30), utc(2027, 7, 1, 0, 59))
        + (utc(2027, 7, 1, 1), utc(2027, 7, 1, 2, 30)),
    ),
    "leap-day": Story(
        utc(2028, 2, 28, 6),
        (utc(2028, 2, 29, 12), utc(2028, 2, 29, 23, 59), utc(2028, 3, 1, 0, 30)),
    ),
    "new-year": Story(
        utc(2027, 12, 31, 6),
        (utc(2027, 12, 31, 23, 59), utc(2028, 1, 1, 0, 30), utc(2028, 1, 1, 2, 30)),
    ),
    # A stack started ten minutes ago, in the first hour of a month, over a backfill.
    "fresh-stack": Story(utc(2027, 7, 1, 0, 20), (utc(2027, 7, 1, 0, 30),), backfill_days=10),
    # Two replicas scraped for availability: every series arrives twice.
    "two-replicas": Story(
        utc(2027, 6, 29, 12),
        (utc(2027, 7, 1, 0, 30), utc(2027, 7, 1, 2, 30)),
        instances=("exporter-a:9687", "exporter-b:9687"),
    ),
    # The README's scrape target beside a backfill with its default labels, over the same days.
    "backfill-beside-live": Story(
        utc(2027, 6, 29, 12),
        (utc(2027, 7, 1, 2, 30),),
        backfill_days=10,
        backfill_last=True,
        instances=("exporter-host:9687",),
    ),
}
CASES = [(name, moment) for name, story in STORIES.items() for moment in story.checks]


@dataclass
class Timeline:
    """A story's samples, and what it needs to check them."""

    org: SimulatedOrganization
    story: Story
    backfilled: tuple[date, date] | None = None
    blocks: Path | None = None
    # name -> (type, help, {series: [(timestamp, sample line without it)]})
    families: dict[str, tuple[str, str, dict[str, list[tuple[int, str]]]]] = field(
        default_factory=dict
    )

    def keep(self, exposition: bytes, moment: datetime) -> None:
        parsed = [
            f
            for f in text_string_to_metric_families(exposition.decode())
            if f.name.startswith(DATA_PREFIX) and not f.name.startswith(OWN_PREFIX)
        ]
        stamp = int(moment.timestamp())
        for family in with_member_aggregates(parsed, moment.date()):
            _, _, series = self.families.setdefault(
                family.name, (family.type, family.documentation, defaultdict(list))
            )
            for sample, instance in product(family.samples, self.story.instances):
                labels = {**sample.labels, "job": JOB, "instance": instance}
                text = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
                text = f"{sample.name}{{{text}}}"
                series[text].append((stamp, f"{text} {number(sample.value)}"))

    def write(self, path: Path, until: datetime) -> None:
        """The samples up to `until` as one OpenMetrics file, each series' samples together."""
        last = int(until.timestamp())
        with path.open("w") as out:
            for name, (kind, help_text, series) in self.families.items():
                out.write(f"# HELP {name} {escape(help_text)}\n# TYPE {name} {kind}\n")
                for points in series.values():
                    out.writelines(f"{line} {t}\n" for t, line in points if t <= last)
            out.write("# EOF\n")


def instants(story: Story) -> list[datetime]:
    moments, moment = set(story.checks), story.start
    while moment <= max(story.checks):
        moments.add(moment)
        moment += EVERY
    return sorted(moments)


def backfill(timeline: Timeline, url: str, store: Path, moment: datetime) -> None:
    """`python -m exporter backfill --since=...` as a user runs it at `moment`, default labels."""
    timeline.blocks = store.parent / "blocks"
    since = moment.date() - timedelta(days=timeline.story.backfill_days)
    environ = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
    argv = [f"--since={since}", f"--output={timeline.blocks}", f"--storage.path={store}"]
    options = parse_args(argv, environ, now=moment)
    assert options.job == JOB
    run(options, clock=frozen(moment))
    timeline.backfilled = (since, options.until)


def play(story: Story, folder: Path) -> Timeline:
    clock = Clock(story.start)
    org = SimulatedOrganization(seed=11, members=12, now=clock)
    timeline = Timeline(org, story)
    store_path = folder / "store.db"
    with serve(org, api_key=TEST_KEY) as server:
        if story.backfill_days and not story.backfill_last:
            backfill(timeline, server.url, store_path, story.start)
        poller = make_poller(server, store_path, clock, history_days=None)
        for moment in instants(story):
            clock.now = moment
            assert poller.poll_once(), f"the poll at {moment} failed"
            timeline.keep(poller.exposition.plain, moment)
        poller.store.close()
        if story.backfill_last:
            (folder / "backfill").mkdir()
            backfill(timeline, server.url, folder / "backfill" / "store.db", clock.now)
    org.now = frozen(max(story.checks))
    return timeline


@pytest.fixture(scope="module")
def timelines(tmp_path_factory):
    played: dict[str, Timeline] = {}

    def get(name: str) -> Timeline:
        if name not in played:
            played[name] = play(STORIES[name], tmp_path_factory.mktemp(name))
        return played[name]

    return get


@dataclass(frozen=True)
class At:
    """A real Prometheus holding a story's samples up to the checked instant `now`."""

    url: str
    timeline: Timeline
    now: datetime


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}@{m:%Y-%m-%dT%H:%M}" for n, m in CASES])
def at(request, timelines, tmp_path_factory):
    name, now = request.param
    timeline = timelines(name)
    folder = tmp_path_factory.mktemp(f"{name}-{now:%d%H%M}")
    samples = folder / "samples.om"
    timeline.write(samples, now)
    tsdb = folder / "tsdb"
    tsdb.mkdir()
    if timeline.blocks is not None:
        for block in blocks_in(timeline.blocks):
            shutil.copytree(block, tsdb / block.name)
    command = ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet"]
    subprocess.run([*command, str(samples), str(tsdb)], check=True, capture_output=True)
    retention = ("--storage.tsdb.retention.time=100y",)
    with start_prometheus(folder, {}, storage=tsdb, extra_args=retention) as prometheus:
        yield At(prometheus.url, timeline, now)


def blocks_in(folder: Path) -> list[Path]:
    return [block for block in folder.iterdir() if (block / "meta.json").is_file()]


# --- What the dashboard shows ---------------------------------------------------------------------


def panel(title: str) -> dict:
    return next(p for p in DASHBOARD["panels"] if p["title"] == title)


def shown(at: At, title: str, ref_id: str, time_range: TimeRange) -> list[dict]:
    chosen = panel(title)
    target = next(t for t in chosen["targets"] if t["refId"] == ref_id)
    selected = as_opened(at.url, DASHBOARD, time_range)
    return prometheus_call(DASHBOARD, chosen, target, selected, time_range).run(at.url)


def last_week(at: At) -> TimeRange:
    return TimeRange((at.now - 7 * DAY).timestamp(), at.now.timestamp())


def per_day(result: list[dict]) -> dict[date, float]:
    assert len(result) <= 1
    values = result[0]["values"] if result else []
    return {datetime.fromtimestamp(int(t), UTC).date(): float(v) for t, v in values}


def by_member(result: list[dict]) -> dict[str, float]:
    return {s["metric"]["member"]: float(s["value"][1]) for s in result}


# --- What the Console shows -----------------------------------------------------------------------


def records(at: At, day: date) -> list[dict] | None:
    """Day's records as the API served them when the dashboard reads the day at `at.now`: during
    the next day (or now, if that is earlier); None when neither the stack nor the backfill
    covers the day, so the dashboard has nothing to show for it."""
    story, backfilled = at.timeline.story, at.timeline.backfilled
    read_at = min(at.now, midnight(day) + 2 * DAY - timedelta(minutes=1))
    if backfilled and backfilled[0] <= day <= backfilled[1]:
        return at.timeline.org.final_records(day)
    if read_at < story.start or day > at.now.date():
        return None
    return at.timeline.org.visible_records(day, read_at)


def days_of(time_range: TimeRange) -> list[date]:
    """The days whose points a per-day panel of the range shows (steps at UTC midnights)."""
    first = datetime.fromtimestamp(time_range.start, UTC).date()
    last = datetime.fromtimestamp(time_range.end, UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def served(at: At, first: date, last: date) -> list[dict]:
    """The records of first..last as the API serves them at `at.now`: what the exporter's store
    holds after its poll then, and so what a month's figures read."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [r for day in days for r in at.timeline.org.visible_records(day, at.now)]


def accept_rate(day_records: list[dict]) -> float | None:
    accepted, total = console.tool_decisions(day_records, CONSOLE_TOOLS)
    return accepted / total if total else None


PER_DAY = {
    ("Lines of code accepted per day", "A"): lambda r: sum(console.lines_accepted(r).values()),
    ("Activity", "A"): console.active_users,
    ("Activity", "B"): lambda r: sum(console.sessions(r).values()),
    ("Spend", "B"): lambda r: sum(console.spend_cents(r).values(), Decimal(0)) / 100,
    ("Suggestion accept rate per day", "A"): accept_rate,
}


def assert_close(actual: dict, expected: dict) -> None:
    wrong = {
        key: (actual.get(key), value)
        for key, value in expected.items()
        if (value is None) != (actual.get(key) is None)
        or (
            value is not None
            and abs(actual[key] - float(value)) > 1e-9 * max(1.0, abs(float(value)))
        )
    }
    assert not wrong, f"(dashboard, Console) differ: {wrong}"


# --- The checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("title", "ref_id"), list(PER_DAY))
def test_every_day_of_a_per_day_panel_is_the_console_figure(at, title, ref_id):
    """Every covered day has its point, yesterday's included in the new day's first hour, and
    today's as soon as the API has served anything for today; each is the Console's figure."""
    time_range = last_week(at)
    actual = per_day(shown(at, title, ref_id, time_range))
    expected = {}
    for day in days_of(time_range):
        day_records = records(at, day)
        # A day without records has no point (the Console's 0: the panel draws nothing).
        expected[day] = PER_DAY[title, ref_id](day_records) if day_records else None
    assert_close(actual, expected)


def test_the_lines_stat_is_the_sum_of_the_days_in_the_range(at):
    time_range = last_week(at)
    result = shown(at, "Lines of code accepted", "A", time_range)
    # The days whose midnight is within the range: the range's first day starts before it.
    days = days_of(time_range)[1:]
    expected = sum(sum(console.lines_accepted(records(at, d) or []).values()) for d in days)
    assert len(result) <= 1
    assert (float(result[0]["value"][1]) if result else 0.0) == expected


def team_insights(at: At, time_range: TimeRange) -> tuple[dict, dict]:
    spend = by_member(shown(at, "Team insights", "A", time_range))
    lines = by_member(shown(at, "Team insights", "B", time_range))
    return spend, lines


def assert_team(at: At, time_range: TimeRange, month: list[dict]) -> None:
    spend, lines = team_insights(at, time_range)
    assert spend.keys() == lines.keys()
    members = {console.member(r) for r in month}
    assert members <= spend.keys()
    expected_spend = {m: Decimal(0) for m in spend} | {
        m: c / 100 for m, c in console.spend_cents(month).items()
    }
    expected_lines = {m: 0 for m in lines} | console.lines_accepted(month)
    assert_close(spend, expected_spend)
    assert_close(lines, expected_lines)


def test_team_insights_of_this_month_is_the_console_figure(at):
    """The month so far as the API serves it now; 0 for every member on the 1st before data."""
    first = at.now.date().replace(day=1)
    assert_team(at, last_week(at), served(at, first, at.now.date()))


def test_team_insights_of_the_previous_month_is_the_whole_month(at):
    """On the 1st, Grafana's "Previous month" is the whole month as the API serves it now,
    including the month's last hour that it delivers after midnight."""
    if at.now.day != 1:
        pytest.skip("the previous month is checked during the next month's first day")
    last = at.now.date() - DAY
    first = last.replace(day=1)
    time_range = TimeRange(midnight(first).timestamp(), midnight(last + DAY).timestamp() - 0.001)
    assert_team(at, time_range, served(at, first, last))


def test_the_stories_cover_the_instants_the_issue_names():
    checked = [m for s in STORIES.values() for m in s.checks]
    assert any(m.day == 1 and (m.hour, m.minute) == (0, 30) for m in checked)
    assert {(0, 59), (1, 0)} <= {(m.hour, m.minute) for m in checked}
    assert any(
        (m + timedelta(minutes=1)).day == 1 and (m.hour, m.minute) == (23, 59) for m in checked
    )
    assert any((m.month, m.day) == (2, 29) for m in checked)
    assert any((m.month, m.day) == (12, 31) for m in checked)
    assert any((m.month, m.day) == (1, 1) for m in checked)
    assert any(
        s.backfill_days and s.checks[0] - s.start < timedelta(hours=1) for s in STORIES.values()
    )
