"""The backfill's parts: planning which days to fetch, fetching with a stop request, the day's view
of the store, the OpenMetrics it writes and what the real promtool makes of it."""

from __future__ import annotations

import fcntl
import io
import json
import os
import stat
import subprocess
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client.core import GaugeMetricFamily

from conftest import TEST_KEY
from exporter import backfill
from exporter.backfill import (
    BackfillError,
    Interrupted,
    StoreAsOf,
    context_start,
    describe_days,
    lacking_days,
    parse_args,
    sample_time,
    write_openmetrics,
)
from exporter.client import AdminClient
from exporter.collector import MemberLabels, Settings, data_families, day_start, render
from exporter.poller import Poller
from exporter.simulator import SimulatedOrganization, serve
from exporter.store import Store

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
TODAY = NOW.date()


def day(text: str) -> date:
    return date.fromisoformat(text)


def options(tmp_path: Path, *args: str, now: datetime = NOW, base_url: str = "http://127.0.0.1:9"):
    env = {"ANTHROPIC_ADMIN_API_KEY": TEST_KEY, "ANTHROPIC_BASE_URL": base_url}
    argv = [f"--output={tmp_path / 'blocks'}", f"--storage.path={tmp_path / 'store.db'}", *args]
    return parse_args(argv, env, now)


@pytest.fixture
def org():
    organization = SimulatedOrganization(seed=3, members=12, now=lambda: NOW)
    with serve(organization, api_key=TEST_KEY) as server:
        organization.url = server.url
        yield organization


def usage_requests(org) -> dict[str, int]:
    return {d: n for (endpoint, d), n in org.requests.items() if endpoint == "claude_code_usage"}


def days_between(first: date, last: date) -> list[str]:
    return [str(first + timedelta(days=n)) for n in range((last - first).days + 1)]


def fill(store: Store, org, days: list[date], fetched_at: float | None = None) -> None:
    poller = Poller(
        AdminClient(org.url, TEST_KEY), store, history_days=1, refetch_days=1, settings=Settings()
    )
    for d in days:
        stamp = fetched_at if fetched_at is not None else NOW.timestamp()
        store.replace_day(d, poller.fetch_day(d).records, stamp)


# --- Command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), ["--since is required"]),
        (("--since=2026-13-01",), ["--since", "2026-13-01"]),
        (("--since=2026-11-10", "--until=2999-01-01"), ["--until must be a past day"]),
        (("--since=2026-11-10", "--until=2026-11-05"), ["after --until"]),
        (("--since=2026-11-10", "--workers=0"), ["--workers", "1 to 16"]),
        (("--since=2026-11-10", "--promtool=/nonexistent/promtool"), ["promtool not found"]),
        (("--since=2026-11-10", "--metrics.member-label=nope"), ["member-label"]),
        (("--since=2026-11-10", "--bogus"), ["unrecognized arguments: --bogus"]),
    ],
)
def test_bad_input_is_one_sentence_with_exit_status_2(tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.setenv("ANTHROPIC_ADMIN_API_KEY", TEST_KEY)
    status = backfill.main([f"--output={tmp_path}", *args])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1
    assert all(word in err for word in words), err
    assert TEST_KEY not in err


def test_a_missing_key_is_one_sentence_with_exit_status_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_ADMIN_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_ADMIN_API_KEY_FILE", raising=False)
    status = backfill.main(["--since=2026-01-01", f"--output={tmp_path}"])
    assert status == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "claude-code-analytics-exporter backfill: no Admin API key: set ANTHROPIC_ADMIN_API_KEY"
        " or ANTHROPIC_ADMIN_API_KEY_FILE, or run with --demo."
    ]


def demo_backfill(tmp_path: Path, output: Path) -> int:
    """One day of a small simulated organization into `output`; the exit status."""
    store = tmp_path / "store.db"
    days = ("--since=2026-01-01", "--until=2026-01-01")
    return backfill.main(
        ["--demo", "--demo.members=3", *days, f"--storage.path={store}", f"--output={output}"]
    )


def test_an_output_folder_that_cannot_be_made_is_one_sentence_with_exit_status_1(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("ANTHROPIC_ADMIN_API_KEY", TEST_KEY)
    (tmp_path / "file").write_text("")
    output = tmp_path / "file" / "blocks"
    status = demo_backfill(tmp_path, output)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert (
        err[-1]
        == f"claude-code-analytics-exporter backfill: cannot write {output}: Not a directory."
    )


def test_a_second_backfill_into_the_same_output_is_refused_in_one_sentence(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("ANTHROPIC_ADMIN_API_KEY", TEST_KEY)
    output = tmp_path / "blocks"
    output.mkdir()
    first = os.open(output, os.O_RDONLY)  # what a running backfill holds
    try:
        fcntl.flock(first, fcntl.LOCK_EX)
        status = demo_backfill(tmp_path, output)
    finally:
        os.close(first)
    assert status == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"claude-code-analytics-exporter backfill: another backfill is writing to {output}."
    ]


def test_until_defaults_to_the_last_day_the_api_has_finished(tmp_path):
    assert options(tmp_path, "--since=2026-11-01").until == day("2026-11-19")
    just_after_midnight = datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    assert options(tmp_path, "--since=2026-11-01", now=just_after_midnight).until == day(
        "2026-11-18"
    )


def test_the_scrape_targets_job_and_instance_default_to_the_compose_stack(tmp_path):
    chosen = options(tmp_path, "--since=2026-11-01")
    assert (chosen.job, chosen.instance) == ("claude-code-analytics", "exporter:9687")


# --- Planning -------------------------------------------------------------------------------------


def test_the_first_day_needs_its_month_and_its_30_day_window():
    assert context_start(day("2026-09-15")) == day("2026-08-17")
    assert context_start(day("2026-09-30")) == day("2026-09-01")


def test_a_day_is_lacking_when_missing_or_fetched_before_its_data_was_final():
    store = Store(":memory:")
    store.replace_day(day("2026-11-01"), [], day_start(day("2026-11-02")) + 3600)
    store.replace_day(day("2026-11-02"), [], day_start(day("2026-11-03")) + 3599)
    assert lacking_days(store, day("2026-11-01"), day("2026-11-03")) == [
        day("2026-11-02"),
        day("2026-11-03"),
    ]


def test_days_are_described_as_compact_ranges():
    days = [day("2026-09-07"), day("2026-09-01"), day("2026-09-02"), day("2026-09-03")]
    assert describe_days(days) == "2026-09-01..2026-09-03, 2026-09-07"


# --- Fetching -------------------------------------------------------------------------------------


def test_each_needed_day_is_fetched_once_and_stored(tmp_path, org):
    chosen = options(tmp_path, "--since=2026-11-10", "--until=2026-11-12", base_url=org.url)
    backfill.run(chosen, clock=lambda: NOW)
    assert usage_requests(org) == dict.fromkeys(
        days_between(day("2026-10-12"), day("2026-11-12")), 1
    )
    store = Store(tmp_path / "store.db")
    assert len(store.fetched_days()) == 32
    assert store.members()


def test_a_second_run_fetches_nothing_it_stored(tmp_path, org):
    chosen = options(tmp_path, "--since=2026-11-10", "--until=2026-11-12", base_url=org.url)
    backfill.run(chosen, clock=lambda: NOW)
    before = usage_requests(org)
    backfill.run(chosen, clock=lambda: NOW)
    assert usage_requests(org) == before


def test_a_stop_request_stores_the_days_in_flight_and_starts_no_other(tmp_path, org):
    stop = threading.Event()
    started: list[str] = []

    def stop_at_the_fifth_day(request):
        if request.path.endswith("claude_code") and request.args.get("page") is None:
            started.append(request.args["starting_at"])
            if len(started) == 5:
                stop.set()

    org.before_request.append(stop_at_the_fifth_day)
    chosen = options(
        tmp_path, "--since=2026-11-10", "--until=2026-11-12", "--workers=2", base_url=org.url
    )
    with pytest.raises(Interrupted):
        backfill.run(chosen, stop, clock=lambda: NOW)
    stored = {str(d) for d in Store(tmp_path / "store.db").fetched_days()}
    assert stored == set(started)
    assert 5 <= len(stored) <= 6
    assert not any((tmp_path / "blocks").iterdir())


def test_fill_gaps_reports_and_fetches_the_days_missing_in_the_store(tmp_path, org, capsys):
    store = Store(tmp_path / "store.db")
    holes = {day("2026-11-05"), day("2026-11-08"), day("2026-11-09")}
    first, last = day("2026-11-01"), day("2026-11-12")
    fill(
        store,
        org,
        [first + timedelta(days=n) for n in range(12) if first + timedelta(days=n) not in holes],
    )
    store.close()
    org.requests.clear()
    chosen = options(tmp_path, "--fill-gaps", f"--until={last}", base_url=org.url)
    backfill.run(chosen, clock=lambda: NOW)
    assert "the store lacks 3 days: 2026-11-05, 2026-11-08..2026-11-09" in capsys.readouterr().err
    context = set(days_between(context_start(first), first - timedelta(days=1)))
    assert usage_requests(org) == dict.fromkeys(context | {str(d) for d in holes}, 1)


def test_fill_gaps_without_since_needs_a_store_that_holds_a_day(tmp_path, org):
    chosen = options(tmp_path, "--fill-gaps", base_url=org.url)
    with pytest.raises(BackfillError, match="holds no day yet"):
        backfill.run(chosen, clock=lambda: NOW)


# --- The view of each day -------------------------------------------------------------------------


def test_each_day_shows_the_view_the_exporter_had_at_its_end(tmp_path, org):
    """The whole store seen as of day D gives the series of a store that ends at D."""
    days = [day("2026-10-20") + timedelta(days=n) for n in range(25)]
    whole, until_d = Store(tmp_path / "whole.db"), Store(tmp_path / "until.db")
    fill(whole, org, days)
    fill(until_d, org, days[:15])
    view = StoreAsOf(whole)
    for d in days[:15]:
        view.advance_to(d)
    members = MemberLabels("keep")
    as_of = render(data_families(view, days[14], Settings(), members))  # type: ignore[arg-type]
    assert as_of == render(data_families(until_d, days[14], Settings(), members))
    assert as_of != render(data_families(whole, days[14], Settings(), members))


# --- OpenMetrics ----------------------------------------------------------------------------------


def gauge(name: str, labels: list[str], *samples: tuple[list[str], float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, f"{name} help", labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def om_text(*families: GaugeMetricFamily, timestamp: int = 1_790_000_000) -> str:
    out = io.StringIO()
    write_openmetrics(out, families, (("job", "j"), ("instance", "i:1")), timestamp)
    return out.getvalue()


def test_samples_are_written_at_2359_utc_of_their_day():
    assert sample_time(day("2026-09-01")) == int(
        datetime(2026, 9, 1, 23, 59, tzinfo=UTC).timestamp()
    )


def test_every_sample_carries_the_scrape_labels_and_the_timestamp_and_the_file_ends_with_eof():
    text = om_text(
        gauge("a_sessions", ["member"], (["x@example.com"], 3)),
        gauge("a_day_start", [], ([], 1.5)),
        timestamp=1234,
    )
    assert text.splitlines() == [
        "# HELP a_sessions a_sessions help",
        "# TYPE a_sessions gauge",
        'a_sessions{member="x@example.com",job="j",instance="i:1"} 3 1234',
        "# HELP a_day_start a_day_start help",
        "# TYPE a_day_start gauge",
        'a_day_start{job="j",instance="i:1"} 1.5 1234',
        "# EOF",
    ]


def test_a_family_without_samples_is_left_out():
    assert om_text(gauge("a_empty", ["member"])) == "# EOF\n"


def test_each_family_is_written_once_with_its_samples_together(tmp_path, org):
    store = Store(tmp_path / "store.db")
    fill(store, org, [day("2026-11-01"), day("2026-11-02")])
    out = io.StringIO()
    write_openmetrics(
        out, data_families(store, day("2026-11-02"), Settings(), MemberLabels("keep")), (), 1
    )
    names = [line.split()[2] for line in out.getvalue().splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names)) > 20
    current = None
    for line in out.getvalue().splitlines()[:-1]:
        if line.startswith("# TYPE"):
            current = line.split()[2]
        elif not line.startswith("#"):
            assert line.split("{")[0] == current


def promtool_blocks(source: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(output)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def dump(output: Path) -> list[str]:
    (output / "wal").mkdir(exist_ok=True)  # promtool opens the folder as a whole TSDB
    result = subprocess.run(
        ["promtool", "tsdb", "dump", str(output)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.splitlines()


def test_awkward_member_names_survive_promtool(tmp_path):
    name = 'Zoë "the key" \\ ci\nbot'
    source = tmp_path / "day.om"
    source.write_text(
        om_text(gauge("a_sessions", ["member"], ([name], 7)), timestamp=1_790_000_000)
    )
    assert promtool_blocks(source, tmp_path / "out").returncode == 0
    [line] = dump(tmp_path / "out")
    assert '"Zoë \\"the key\\" \\\\ ci\\nbot"' in line
    assert line.endswith(" 7 1790000000000")


def test_promtool_2_42_requires_eof_but_not_contiguous_families(tmp_path):
    """Why one file per day: OpenMetrics forbids a family split across the file; promtool 2.42
    does not check it, so the writer has to keep families together itself."""
    split = tmp_path / "split.om"
    split.write_text(
        "# TYPE a gauge\na 1 100\n# TYPE b gauge\nb 2 100\n# TYPE a gauge\na 3 200\n# EOF\n"
    )
    assert promtool_blocks(split, tmp_path / "split").returncode == 0
    no_eof = tmp_path / "no_eof.om"
    no_eof.write_text("# TYPE a gauge\na 1 100\n")
    result = promtool_blocks(no_eof, tmp_path / "no_eof")
    assert result.returncode != 0
    assert "# EOF" in result.stderr


# --- Blocks ---------------------------------------------------------------------------------------


def failing_promtool(tmp_path: Path, bad_day: str) -> Path:
    script = tmp_path / "promtool"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *{bad_day}.om*) echo "parse error: bad line" >&2; exit 1;; esac\n'
        'exec promtool "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_blocks_of_a_failed_run_are_removed_and_older_blocks_kept(tmp_path, org):
    blocks = tmp_path / "blocks"
    older = blocks / "01OLDERBLOCK0000000000000"
    older.mkdir(parents=True)
    (older / "meta.json").write_text("{}")
    chosen = options(
        tmp_path,
        "--since=2026-11-08",
        "--until=2026-11-12",
        f"--promtool={failing_promtool(tmp_path, '2026-11-11')}",
        base_url=org.url,
    )
    with pytest.raises(BackfillError, match="block of 2026-11-11: parse error: bad line"):
        backfill.run(chosen, clock=lambda: NOW)
    assert [p.name for p in blocks.iterdir()] == [older.name]


def test_a_run_writes_one_block_per_day_at_2359(tmp_path, org):
    chosen = options(tmp_path, "--since=2026-11-10", "--until=2026-11-12", base_url=org.url)
    written = backfill.run(chosen, clock=lambda: NOW).written
    starts = sorted(json.loads((b / "meta.json").read_text())["minTime"] for b in written)
    assert starts == [
        sample_time(day(d)) * 1000 for d in ("2026-11-10", "2026-11-11", "2026-11-12")
    ]


# --- Recording rules ------------------------------------------------------------------------------


def recording_rules() -> dict[str, list[dict]]:
    groups = yaml.safe_load((ROOT / "alerts" / "generated" / "rules.yaml").read_text())["groups"]
    return {group["name"]: group["rules"] for group in groups}


def written_aggregates() -> dict[str, str]:
    """The recorded series the backfill writes, with the rule expression each one stands for."""
    return {
        backfill.member_aggregate_name(period, quantity, agg): (
            f"{agg} without (member) (claude_code_analytics_{period}_{quantity}"
            '{job="claude-code-analytics"})'
        )
        for period in backfill.AGGREGATED_PERIODS
        for quantity, agg in backfill.MEMBER_AGGREGATES
    }


def test_the_backfill_writes_what_the_member_rules_record():
    rules = {r["record"]: r["expr"] for r in recording_rules()["claude-code-analytics.members"]}
    sums = written_aggregates()
    new = {backfill.new_members_name(period) for period in backfill.AGGREGATED_PERIODS}
    assert set(rules) == set(sums) | new
    assert {name: rules[name] for name in sums} == sums


def test_every_recorded_series_read_over_past_days_is_written_by_the_backfill():
    """A recording rule records from the moment it is loaded: a per-day or range query that read
    any other recorded series would show nothing for backfilled days."""
    recorded = {rule["record"] for rules in recording_rules().values() for rule in rules}
    past = set()
    for path in sorted((ROOT / "dashboards" / "generated").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                if not target.get("instant") or "[$__range:1d]" in expr:
                    past |= {name for name in recorded if name in expr}
    assert past
    assert past <= {r["record"] for r in recording_rules()["claude-code-analytics.members"]}


def test_the_written_aggregates_sum_and_count_over_members():
    decisions = GaugeMetricFamily(
        "claude_code_analytics_today_tool_decisions",
        "Decisions.",
        labels=["member", "actor_type", "tool", "decision"],
    )
    decisions.add_metric(["a@example.com", "user", "edit", "accepted"], 3)
    decisions.add_metric(["b@example.com", "user", "edit", "accepted"], 4)
    decisions.add_metric(["key-1", "api_key", "edit", "accepted"], 5)
    sessions = GaugeMetricFamily(
        "claude_code_analytics_yesterday_sessions", "Sessions.", labels=["member", "actor_type"]
    )
    sessions.add_metric(["a@example.com", "user"], 3)
    sessions.add_metric(["b@example.com", "user"], 0)
    first = GaugeMetricFamily(
        "claude_code_analytics_member_first_active_timestamp_seconds",
        "First day.",
        labels=["member", "actor_type"],
    )
    today = date(2026, 11, 20)
    first.add_metric(["a@example.com", "user"], day_start(today))
    first.add_metric(["b@example.com", "user"], day_start(date(2026, 11, 19)))
    first.add_metric(["c@example.com", "user"], day_start(date(2026, 11, 19)))
    first.add_metric(["key-1", "api_key"], day_start(date(2026, 11, 2)))
    families = backfill.with_member_aggregates([decisions, sessions, first], today)
    out = io.StringIO()
    write_openmetrics(out, families, (), 60)
    lines = set(out.getvalue().splitlines())
    prefix = "claude_code_analytics:"
    assert {line for line in lines if line.startswith(prefix)} == {
        prefix + 'today_tool_decisions:sum_without_member{actor_type="user",tool="edit",'
        'decision="accepted"} 7 60',
        prefix + 'today_tool_decisions:sum_without_member{actor_type="api_key",tool="edit",'
        'decision="accepted"} 5 60',
        prefix + 'yesterday_sessions:sum_without_member{actor_type="user"} 3 60',
        prefix + 'yesterday_sessions:count_without_member{actor_type="user"} 2 60',
        prefix + 'today_new_members:count{actor_type="user"} 1 60',
        prefix + 'yesterday_new_members:count{actor_type="user"} 2 60',
    }
