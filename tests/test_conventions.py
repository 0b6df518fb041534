"""What an SRE expects of an exporter that behaves like node_exporter: `--web.telemetry-path`,
`--log.format` (logfmt or JSON, a record a line) and `--version`, tried on the exporter as a
process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import requests

from conftest import TEST_KEY
from exporter import __version__
from exporter.simulator import SimulatedOrganization, serve
from procs import start_exporter

pytestmark = pytest.mark.e2e
P = "claude_code_analytics"
# A logfmt line: key=value pairs, a value bare or a quoted string with backslash escapes.
LOGFMT_PAIR = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"=]+)(?: |$)')
LEVELS = {"debug", "info", "warn", "error"}


def test_the_metrics_move_to_the_telemetry_path_and_the_page_links_there(tmp_path):
    args = ("--demo", "--demo.members=3", "--web.telemetry-path=/internal/metrics")
    with start_exporter(tmp_path, *args) as proc:
        moved = requests.get(f"{proc.url}/internal/metrics", timeout=10)
        old = requests.get(f"{proc.url}/metrics", timeout=10)
        page = requests.get(proc.url, timeout=10).text
    assert moved.status_code == 200 and f"{P}_exporter_up" in moved.text
    assert old.status_code == 404
    assert 'href="internal/metrics"' in page and 'href="metrics"' not in page


@pytest.mark.parametrize("path", ["metrics", "/", "/-/ready", "/metrics?x=1", "/a b"])
def test_a_telemetry_path_that_cannot_be_served_is_one_sentence(path):
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "--demo", f"--web.telemetry-path={path}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--web.telemetry-path must be a path" in done.stderr


def logfmt(line: str) -> dict[str, str]:
    pairs = LOGFMT_PAIR.findall(line)
    assert "".join(f"{k}={v} " for k, v in pairs).strip() == line, line
    return {k: json.loads(v) if v.startswith('"') else v for k, v in pairs}


@pytest.mark.parametrize(("log_format", "parse"), [("logfmt", logfmt), ("json", json.loads)])
def test_every_log_line_is_one_record_of_the_format_and_never_holds_the_key(
    tmp_path, log_format, parse
):
    """The key is refused, so errors are logged, with the upstream's answer in them."""
    org = SimulatedOrganization(seed=2, members=5, now=lambda: datetime.now(UTC))
    with serve(org, api_key="sk-ant-admin01-another-key") as server:
        env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_ADMIN_API_KEY": TEST_KEY}
        args = (f"--log.format={log_format}", "--log.level=debug", "--api.max-retries=0")
        with start_exporter(tmp_path, *args, env=env, ready_path="/-/healthy") as proc:
            deadline = time.monotonic() + 20
            while "authentication_error" not in proc.output():
                assert time.monotonic() < deadline, proc.output()
                time.sleep(0.1)
        output = proc.output()
    assert TEST_KEY not in output
    records = [parse(line) for line in output.splitlines()]
    for record in records:
        assert list(record)[:4] == ["ts", "level", "logger", "msg"], record
        assert record["level"] in LEVELS
        assert datetime.fromisoformat(record["ts"]).tzinfo is not None
    errors = [r for r in records if r["level"] == "error"]
    assert errors and all(r["logger"].startswith("exporter") for r in errors)
    assert any("authentication_error" in r["msg"] for r in errors)
    assert any(r["msg"].startswith("listening on http://") for r in records)


def test_the_default_log_format_is_logfmt(tmp_path):
    with start_exporter(tmp_path, "--demo", "--demo.members=3") as proc:
        output = proc.output()
    first = logfmt(output.splitlines()[0])
    assert first["level"] == "info" and first["logger"].startswith("exporter")


def test_version_prints_node_exporters_layout():
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == f"claude-code-analytics-exporter, version {__version__}"
    assert re.fullmatch(r"  python version: +CPython 3\.\d+\.\d+", lines[1])
    assert re.fullmatch(r"  platform: +[a-z]+/\w+", lines[2])
