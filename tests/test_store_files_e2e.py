"""The exporter's store from outside: its files are private whatever the umask, and a damaged store
is refused with a sentence that says how to recover, never served as ready with no data.

Each test runs `python -m exporter` (or its backfill) as a process against the simulated
organization and looks at the files and the exit status."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from conftest import TEST_KEY
from exposition import samples, series
from procs import Proc, free_port, start_exporter

pytestmark = pytest.mark.e2e
HISTORY = "--history.days=3"
PERMISSIVE = 0o000


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def store_files(store: Path) -> list[Path]:
    return [store, Path(f"{store}-wal"), Path(f"{store}-shm")]


def loaded_store(tmp_path: Path, simulated_api: dict) -> Path:
    """A store that holds the history, checkpointed so that the main file holds every page."""
    store = tmp_path / "store.db"
    with start_exporter(tmp_path, HISTORY, env=simulated_api, storage=store):
        pass
    with sqlite3.connect(store) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return store


# --- Permissions ----------------------------------------------------------------------------------


def test_the_store_folder_and_its_files_are_private_whatever_the_umask(tmp_path, simulated_api):
    store = tmp_path / "state" / "store.db"
    with start_exporter(
        tmp_path, HISTORY, env=simulated_api, storage=store, umask=PERMISSIVE
    ) as proc:
        assert [f.name for f in store_files(store) if f.exists()] == [
            "store.db",
            "store.db-wal",
            "store.db-shm",
        ], proc.output()
        assert {f.name: oct(mode(f)) for f in store_files(store)} == {
            "store.db": "0o600",
            "store.db-wal": "0o600",
            "store.db-shm": "0o600",
        }
        assert oct(mode(store.parent)) == "0o700"


def test_a_store_left_readable_by_others_is_made_private_at_start(tmp_path, simulated_api):
    store = tmp_path / "store.db"
    proc = start_exporter(tmp_path, HISTORY, env=simulated_api, storage=store)
    proc.signal(signal.SIGKILL)  # leaves the -wal and -shm files behind
    proc.stop()
    for path in store_files(store):
        path.chmod(0o644)
    with start_exporter(
        tmp_path, HISTORY, env=simulated_api, storage=store, umask=PERMISSIVE
    ) as proc:
        assert {f.name: oct(mode(f)) for f in store_files(store)} == {
            "store.db": "0o600",
            "store.db-wal": "0o600",
            "store.db-shm": "0o600",
        }
        assert f"made {store} private: mode 600, was 644" in proc.output()
    assert TEST_KEY not in proc.output()


# --- A damaged store ------------------------------------------------------------------------------


def garbage_in_a_table(store: Path) -> None:
    with sqlite3.connect(store) as db:
        size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'records'").fetchone()[0]
    db.close()
    with store.open("r+b") as f:
        f.seek((root - 1) * size)
        f.write(b"\xa5" * size)


def truncated(store: Path) -> None:
    os.truncate(store, store.stat().st_size // 2)


def not_sqlite(store: Path) -> None:
    store.write_bytes(os.urandom(store.stat().st_size))


def a_table_missing(store: Path) -> None:
    with sqlite3.connect(store) as db:
        db.execute("DROP TABLE records")
    db.close()


DAMAGES = [garbage_in_a_table, truncated, not_sqlite, a_table_missing]


def exporter_command(store: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "exporter",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.path={store}",
        HISTORY,
    ]


def refusal(prog: str, store: Path) -> Callable[[str], bool]:
    def matches(line: str) -> bool:
        return line.startswith(f"{prog}: the store at {store} is damaged (") and line.endswith(
            "); move it aside with its -wal and -shm files and start again to reload the"
            " history from the Admin API."
        )

    return matches


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_store_is_refused_with_how_to_recover_and_never_ready(
    tmp_path, simulated_api, damage
):
    store = loaded_store(tmp_path, simulated_api)
    damage(store)
    damaged = store.read_bytes()
    port = free_port()
    proc = Proc(
        "exporter", exporter_command(store, port), port, tmp_path / "damaged.log", env=simulated_api
    )
    try:
        deadline = time.monotonic() + 30
        while proc.popen.poll() is None and time.monotonic() < deadline:
            try:
                ready = requests.get(f"{proc.url}/-/ready", timeout=2).status_code
            except requests.RequestException:
                ready = None
            assert ready != 200, "a damaged store was served as ready"
            time.sleep(0.1)
    finally:
        status = proc.stop()
    output = proc.output()
    assert status == 1, output
    assert refusal("claude-code-analytics-exporter", store)(output.strip().splitlines()[-1])
    assert store.read_bytes() == damaged  # refused, not touched
    assert TEST_KEY not in output
    # As the sentence says: move it aside and start again.
    for path in store_files(store):
        if path.exists():
            path.rename(tmp_path / f"{path.name}.damaged")
    with start_exporter(tmp_path, HISTORY, env=simulated_api, storage=store) as proc:
        exposition = samples(requests.get(f"{proc.url}/metrics", timeout=10).content)
    assert series(exposition, "claude_code_analytics_month_to_date_cost_usd") != {}


def test_the_backfill_refuses_a_damaged_store_in_one_sentence(tmp_path, simulated_api):
    store = loaded_store(tmp_path, simulated_api)
    garbage_in_a_table(store)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "backfill",
            "--since=2026-01-01",
            "--until=2026-01-02",
            f"--storage.path={store}",
            f"--output={tmp_path / 'blocks'}",
        ],
        env=simulated_api,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and refusal("claude-code-analytics-exporter backfill", store)(lines[0])
    assert TEST_KEY not in done.stdout + done.stderr
