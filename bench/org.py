"""A simulated organization and the real exporter, each in its own process, on loopback.

The simulator serves the documented Admin API for N members behind a random key that lives only
in a file in the work directory. The exporter is `python -m exporter` pointed at it, so the poll,
the store and the memory are the ones users run."""

from __future__ import annotations

import os
import re
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from procs import Proc, free_port

EXPORTER_METRIC = "claude_code_analytics_exporter_"
STARTUP_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Simulator:
    proc: Proc
    key_file: Path


def start_simulator(workdir: Path, members: int) -> Simulator:
    key_file = workdir / "admin-key.txt"
    key_file.write_text(secrets.token_urlsafe(24))
    key_file.chmod(0o600)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "exporter.simulator",
        f"--members={members}",
        f"--listen=127.0.0.1:{port}",
        f"--api-key-file={key_file}",
    ]
    proc = Proc("simulator", cmd, port, workdir / "simulator.log")
    return Simulator(proc.wait_ready("/-/healthy"), key_file)


def api_env(simulator: Simulator) -> dict[str, str]:
    """The environment of an exporter process that reads the simulator's Admin API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env["ANTHROPIC_BASE_URL"] = simulator.proc.url
    env["ANTHROPIC_ADMIN_API_KEY_FILE"] = str(simulator.key_file)
    return env


def start_exporter(
    workdir: Path, simulator: Simulator, store: Path, history_days: int, ready_path: str
) -> Proc:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "exporter",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.path={store}",
        f"--history.days={history_days}",
        "--poll.interval=1h",
        "--log.level=warning",
    ]
    proc = Proc("exporter", cmd, port, workdir / f"exporter-{port}.log", env=api_env(simulator))
    return proc.wait_ready(ready_path, timeout=STARTUP_TIMEOUT)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM")


def exporter_gauge(url: str, name: str, organization: str | None = None) -> float | None:
    """The value of one exporter gauge (its only labels are the organization's), or None while
    it has no sample; of the `organization` named, when the exporter reads several."""
    params = {"organization": organization} if organization else None
    text = requests.get(url + "/metrics", params=params, timeout=600).text
    found = re.search(rf"^{EXPORTER_METRIC}{name}(?:{{[^}}\n]*}})? (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def wait_for_poll(
    url: str, timeout: float = STARTUP_TIMEOUT, organization: str | None = None
) -> float:
    """Wait until the exporter finished a successful poll (of `organization`, when it reads
    several); returns that poll's wall time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exporter_gauge(url, "last_success_timestamp_seconds", organization) is not None:
            duration = exporter_gauge(url, "poll_duration_seconds", organization)
            if duration is not None:
                return duration
        time.sleep(0.5)
    raise RuntimeError(f"the exporter at {url} finished no poll within {timeout:.0f}s")
