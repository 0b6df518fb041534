"""The backfill's --output from outside: private blocks and temporary files whatever the umask,
nothing left behind by a killed run once the next one ran, and one block per day however often
the same days are backfilled.

Each test runs `python -m exporter backfill` as a process, with umask 000 and its own TMPDIR,
against the simulated organization."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from conftest import TEST_KEY
from exporter.backfill import sample_time
from procs import SecretEnv

pytestmark = pytest.mark.e2e
PROG = "claude-code-analytics-exporter backfill"
PERMISSIVE = 0o000


@pytest.fixture
def yesterday(frozen_now) -> date:
    return frozen_now.date() - timedelta(days=1)


class Backfill:
    """`python -m exporter backfill` over one store and output, with a TMPDIR of its own."""

    def __init__(self, tmp_path: Path, simulated_api: dict):
        self.store = tmp_path / "store.db"
        self.output = tmp_path / "blocks"
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir()
        self.env = SecretEnv(simulated_api, TMPDIR=str(self.tmpdir))

    def start(self, first: date, last: date, *args: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "exporter", "backfill", f"--since={first}"]
        command += [f"--until={last}", f"--output={self.output}", f"--storage.path={self.store}"]
        return subprocess.Popen(
            [*command, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            umask=PERMISSIVE,
            start_new_session=True,  # its promtool in its process group, killed with it
        )

    def run(self, first: date, last: date, *args: str) -> str:
        process = self.start(first, last, *args)
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
        assert TEST_KEY not in out + err
        return err

    def blocks(self) -> list[Path]:
        return sorted(p for p in self.output.iterdir() if (p / "meta.json").is_file())

    def files(self) -> list[Path]:
        """Everything below --output and TMPDIR."""
        return sorted([*self.output.rglob("*"), *self.tmpdir.rglob("*")])


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def not_private(paths: list[Path]) -> dict[str, str]:
    """Folders not 0700 and files not 0600, with their modes."""
    loose = {}
    for path in paths:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            loose[str(path)] = oct(mode)
    return loose


def slow_promtool(tmp_path: Path) -> Path:
    """promtool, a second late: time to kill the backfill while it writes blocks."""
    script = tmp_path / "slow-promtool"
    script.write_text('#!/bin/sh\nsleep 1\nexec promtool "$@"\n')
    script.chmod(0o755)
    return script


def test_blocks_and_the_output_folder_are_private_whatever_the_umask(
    tmp_path, simulated_api, yesterday
):
    backfill = Backfill(tmp_path, simulated_api)
    backfill.run(yesterday - timedelta(days=2), yesterday)
    assert len(backfill.blocks()) == 3
    assert not_private([backfill.output, *backfill.output.rglob("*")]) == {}


def test_a_killed_backfill_leaves_private_temporary_files_that_the_next_run_removes(
    tmp_path, simulated_api, yesterday
):
    backfill = Backfill(tmp_path, simulated_api)
    first = yesterday - timedelta(days=5)
    process = backfill.start(first, yesterday, f"--promtool={slow_promtool(tmp_path)}")
    deadline = time.monotonic() + 120
    while not any(p.suffix == ".om" for p in backfill.files()):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the backfill never wrote a day"
        time.sleep(0.05)
    time.sleep(1.5)  # promtool has started on a day
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    left = backfill.files()
    assert left, "the kill came before the backfill wrote anything"
    assert not_private(left) == {}

    err = backfill.run(first, yesterday)
    assert backfill.files() == sorted(
        [*backfill.blocks(), *(p for b in backfill.blocks() for p in b.rglob("*"))]
        + [backfill.output / ".claude-code-analytics-backfill.json"]
    )
    assert len(backfill.blocks()) == len(days(first, yesterday))
    assert "removed the temporary files an interrupted run left" in err


def test_backfilling_the_same_days_again_replaces_their_blocks(tmp_path, simulated_api, yesterday):
    backfill = Backfill(tmp_path, simulated_api)
    first = yesterday - timedelta(days=4)
    backfill.run(first, yesterday - timedelta(days=2))
    earlier = backfill.blocks()
    err = backfill.run(first + timedelta(days=1), yesterday)
    assert err.strip().splitlines()[-1] == (
        f"{PROG}: wrote 4 daily blocks to {backfill.output}, replacing 2 of earlier runs."
    )
    spans = sorted(
        (meta["minTime"], meta["maxTime"])
        for meta in (json.loads((b / "meta.json").read_text()) for b in backfill.blocks())
    )
    assert [start for start, _ in spans] == [sample_time(d) * 1000 for d in days(first, yesterday)]
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans))
    assert earlier[0] in backfill.blocks()  # a day the second run did not write
    assert not set(earlier[1:]) & set(backfill.blocks())
