"""The embedded SQLite store: fetched records per UTC day and actor, the member list, and persisted
counters.

Each day is replaced in one transaction (WAL mode), so a reader or a crash sees either the old
day or the new one, never a mix. Records of one actor that share a day (one per terminal type)
are kept as rows and summed by queries."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from .parse import Member, UsageRecord

SCHEMA_VERSION = 2
# Tool decisions are columns of their record, one pair per tool the API documents, NULL when the
# record does not mention the tool; other tools go to `other_tools` as JSON. A table of one row per
# record and tool (version 1) made storing a day twice as slow.
TOOLS = ("edit", "write", "notebook_edit", "multi_edit")
SCHEMA = """
CREATE TABLE IF NOT EXISTS days (
    day TEXT PRIMARY KEY,
    fetched_at REAL NOT NULL,
    records INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    day TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor TEXT NOT NULL,
    terminal_type TEXT NOT NULL,
    customer_type TEXT,
    subscription_type TEXT,
    sessions INTEGER NOT NULL,
    lines_added INTEGER NOT NULL,
    lines_removed INTEGER NOT NULL,
    commits INTEGER NOT NULL,
    pull_requests INTEGER NOT NULL,
    edit_accepted INTEGER,
    edit_rejected INTEGER,
    write_accepted INTEGER,
    write_rejected INTEGER,
    notebook_edit_accepted INTEGER,
    notebook_edit_rejected INTEGER,
    multi_edit_accepted INTEGER,
    multi_edit_rejected INTEGER,
    other_tools TEXT
);
CREATE INDEX IF NOT EXISTS records_by_day ON records (day);
CREATE TABLE IF NOT EXISTS model_usage (
    day TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cost_microcents INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS model_usage_by_day ON model_usage (day);
CREATE TABLE IF NOT EXISTS members (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (name, labels)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

TABLES = frozenset(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))
# The store holds member emails, their spend and the pseudonyms' secret: only its owner may read it.
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# SQLite's result codes for a file that is damaged or is not a database at all.
DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)

log = logging.getLogger(__name__)

CORE_FIELDS = ("sessions", "lines_added", "lines_removed", "commits", "pull_requests")
Actor = tuple[str, str]


class StoreError(Exception):
    """The store cannot be opened, read or written (bad path, read-only, full disk, corrupt)."""


class StoreDamaged(StoreError):
    """The store fails its integrity check at start-up: it is refused, never served empty."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(
            f"the store at {path} is damaged ({problem}); move it aside with its -wal and -shm"
            " files and start again to reload the history from the Admin API"
        )


P = ParamSpec("P")
R = TypeVar("R")


def _reading(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    """Report a failed read (a corrupt or vanished file) as a StoreError, like a failed write."""

    @functools.wraps(method)
    def read(store: Store, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(store, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store at {store.path}: {exc}") from exc

    return read


def _reading_rows(
    method: Callable[Concatenate[Store, P], Iterator[R]],
) -> Callable[Concatenate[Store, P], Iterator[R]]:
    """_reading for a method that yields rows as it reads them: a read fails while iterating."""

    @functools.wraps(method)
    def read(store: Store, *args: P.args, **kwargs: P.kwargs) -> Iterator[R]:
        try:
            yield from method(store, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store at {store.path}: {exc}") from exc

    return read


@dataclass
class ActorTotals:
    sessions: int = 0
    lines_added: int = 0
    lines_removed: int = 0
    commits: int = 0
    pull_requests: int = 0
    cost_microcents: int = 0


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        in_memory = str(path) == ":memory:"
        try:
            if not in_memory:
                _create_private(self.path)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout=10000")
            self._check_integrity()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            if not in_memory:
                _tighten(self.path, Path(f"{path}-wal"), Path(f"{path}-shm"))
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store at {path} was written by a newer version of the exporter"
                    f" (schema {version}, this one knows {SCHEMA_VERSION})"
                )
            if version == 1:
                with self._transaction() as db:
                    _tools_into_records(db)
            self._db.executescript(SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store at {path}: {exc}") from exc

    def _check_integrity(self) -> None:
        """Refuse a store that SQLite finds damaged, or that lacks a table its version has: served,
        it would look like an organization without data, and the tables would be recreated
        empty."""
        try:
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check")]
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            names = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as exc:
            if exc.sqlite_errorcode & 0xFF in DAMAGED:
                raise StoreDamaged(self.path, str(exc)) from exc
            raise
        if problems != ["ok"]:
            more = f" and {len(problems) - 1} more problems" if len(problems) > 1 else ""
            raise StoreDamaged(self.path, " ".join(problems[0].split()) + more)
        missing = sorted(TABLES - names) if version == SCHEMA_VERSION else []
        if missing:
            raise StoreDamaged(self.path, f"missing tables: {', '.join(missing)}")

    def close(self) -> None:
        self._db.close()

    # Writing

    def replace_day(self, day: date, records: Iterable[UsageRecord], fetched_at: float) -> int:
        """Replace everything stored for `day` in one transaction. Returns the number of records."""
        key = day.isoformat()
        rows, models = [], []
        none = (None, None)
        # Spelled out field by field: this loop runs for every record of a day.
        for r in records:
            kind, actor, tools = r.actor_type, r.actor, r.tools
            edit, write = tools.get("edit", none), tools.get("write", none)
            notebook, multi = tools.get("notebook_edit", none), tools.get("multi_edit", none)
            documented = 4 - (edit is none) - (write is none) - (notebook is none) - (multi is none)
            # Only a record that mentions a tool the API did not document has others.
            others = _other_tools(tools) if len(tools) > documented else None
            rows.append(
                (key, kind, actor, r.terminal_type, r.customer_type, r.subscription_type,
                 r.sessions, r.lines_added, r.lines_removed, r.commits, r.pull_requests,
                 *edit, *write, *notebook, *multi, others)
            )  # fmt: skip
            for m in r.models:
                n = m.tokens
                models.append(
                    (key, kind, actor, m.model, n["input"], n["output"], n["cache_read"],
                     n["cache_creation"], m.cost_microcents)
                )  # fmt: skip
        with self._transaction() as db:
            for table in ("records", "model_usage"):
                db.execute(f"DELETE FROM {table} WHERE day = ?", (key,))
            db.executemany(f"INSERT INTO records VALUES ({','.join('?' * 20)})", rows)
            db.executemany("INSERT INTO model_usage VALUES (?,?,?,?,?,?,?,?,?)", models)
            db.execute("INSERT OR REPLACE INTO days VALUES (?, ?, ?)", (key, fetched_at, len(rows)))
        return len(rows)

    def replace_members(self, members: Iterable[Member]) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM members")
            db.executemany(
                "INSERT OR REPLACE INTO members VALUES (?,?,?,?,?)",
                [(m.id, m.email, m.name, m.role, m.added_at) for m in members],
            )

    def save_counters(self, counters: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO counters VALUES (?,?,?)",
                [(name, json.dumps(labels), value) for (name, labels), value in counters.items()],
            )

    def secret(self) -> bytes:
        """A random key kept in the store, for pseudonyms that stay stable across restarts."""
        stored = self.meta("pseudonym_key")
        if stored:
            return bytes.fromhex(stored)
        key = secrets.token_bytes(32)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('pseudonym_key', ?)", (key.hex(),))
        return self.secret()

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @_reading
    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock, self.path)

    # Reading

    @_reading
    def fetched_days(self) -> dict[date, float]:
        rows = self._db.execute("SELECT day, fetched_at FROM days").fetchall()
        return {date.fromisoformat(d): t for d, t in rows}

    @_reading
    def members(self) -> list[Member]:
        rows = self._db.execute("SELECT id, email, name, role, added_at FROM members").fetchall()
        return [Member(*row) for row in rows]

    @_reading_rows
    def member_roles(self) -> Iterator[tuple[str, str]]:
        """(email, role) of each member, in the order of members(), as they are read."""
        yield from self._db.execute("SELECT email, role FROM members")

    @_reading
    def counters(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        rows = self._db.execute("SELECT name, labels, value FROM counters").fetchall()
        return {(n, tuple(tuple(p) for p in json.loads(lab))): v for n, lab, v in rows}

    @_reading
    def actor_totals(self, start: date, end: date) -> dict[Actor, ActorTotals]:
        """Sums per actor over the days start..end inclusive; only actors with a record appear."""
        span = (start.isoformat(), end.isoformat())
        totals: dict[Actor, ActorTotals] = {}
        for actor_type, actor, *values in self._db.execute(
            "SELECT actor_type, actor, SUM(sessions), SUM(lines_added), SUM(lines_removed),"
            " SUM(commits), SUM(pull_requests) FROM records WHERE day BETWEEN ? AND ?"
            " GROUP BY actor_type, actor",
            span,
        ):
            totals[(actor_type, actor)] = ActorTotals(*values)
        for actor_type, actor, cost in self._db.execute(
            "SELECT actor_type, actor, SUM(cost_microcents) FROM model_usage"
            " WHERE day BETWEEN ? AND ? GROUP BY actor_type, actor",
            span,
        ):
            if (actor_type, actor) in totals:
                totals[(actor_type, actor)].cost_microcents = cost
        return totals

    @_reading_rows
    def actor_rows(self, start: date, end: date) -> Iterator[tuple[str | int, ...]]:
        """actor_totals() as rows, as they are read, in actor order: (actor_type, actor, the
        CORE_FIELDS sums, cost_microcents)."""
        span = (start.isoformat(), end.isoformat())
        cores = ", ".join(f"SUM({f}) AS {f}" for f in CORE_FIELDS)
        yield from self._db.execute(
            f"SELECT actor_type, actor, {', '.join(CORE_FIELDS)}, COALESCE(cost, 0) FROM"
            f" (SELECT actor_type, actor, {cores} FROM records WHERE day BETWEEN ? AND ?"
            "  GROUP BY actor_type, actor)"
            " LEFT JOIN (SELECT actor_type, actor, SUM(cost_microcents) AS cost FROM model_usage"
            "  WHERE day BETWEEN ? AND ? GROUP BY actor_type, actor) USING (actor_type, actor)"
            " ORDER BY actor_type, actor",
            span + span,
        )

    @_reading
    def tool_totals(self, start: date, end: date) -> dict[tuple[str, str, str], tuple[int, int]]:
        """(accepted, rejected) per actor and tool, for the tools the actor's records mention."""
        return dict(self.tool_rows(start, end))

    @_reading_rows
    def tool_rows(
        self, start: date, end: date
    ) -> Iterator[tuple[tuple[str, str, str], tuple[int, int]]]:
        """tool_totals() as items, as they are read, in (actor_type, actor, tool) order."""
        span = (start.isoformat(), end.isoformat())
        # Records that name a tool without columns are rare: their sums are held, the rest is not.
        others: dict[Actor, dict[str, tuple[int, int]]] = {}
        for actor_type, actor, named in self._db.execute(
            "SELECT actor_type, actor, other_tools FROM records"
            " WHERE day BETWEEN ? AND ? AND other_tools IS NOT NULL",
            span,
        ):
            tools = others.setdefault((actor_type, actor), {})
            for tool, (accepted, rejected) in json.loads(named).items():
                before = tools.get(tool, (0, 0))
                tools[tool] = (before[0] + accepted, before[1] + rejected)
        sums = ", ".join(f"SUM({t}_accepted), SUM({t}_rejected)" for t in TOOLS)
        for actor_type, actor, *values in self._db.execute(
            f"SELECT actor_type, actor, {sums} FROM records WHERE day BETWEEN ? AND ?"
            " GROUP BY actor_type, actor ORDER BY actor_type, actor",
            span,
        ):
            tools = {
                tool: (accepted, rejected)
                for tool, accepted, rejected in zip(TOOLS, values[::2], values[1::2], strict=True)
                if accepted is not None  # SUM of only NULLs: no record mentions the tool
            }
            for tool, (accepted, rejected) in others.pop((actor_type, actor), {}).items():
                before = tools.get(tool, (0, 0))
                tools[tool] = (before[0] + accepted, before[1] + rejected)
            for tool in sorted(tools):
                yield (actor_type, actor, tool), tools[tool]

    @_reading
    def model_totals(
        self, start: date, end: date, per_actor: bool
    ) -> dict[tuple[str, ...], tuple[int, ...]]:
        """Token sums (TOKEN_TYPES order) and cost per model, or per (actor_type, actor, model)."""
        return dict(self.model_rows(start, end, per_actor))

    @_reading_rows
    def model_rows(
        self, start: date, end: date, per_actor: bool
    ) -> Iterator[tuple[tuple[str, ...], tuple[int, ...]]]:
        """model_totals() as items, as they are read."""
        keys = "actor_type, actor, model" if per_actor else "model"
        rows = self._db.execute(
            f"SELECT {keys}, SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),"
            f" SUM(cache_creation_tokens), SUM(cost_microcents) FROM model_usage"
            f" WHERE day BETWEEN ? AND ? GROUP BY {keys}",
            (start.isoformat(), end.isoformat()),
        )
        width = 3 if per_actor else 1
        for row in rows:
            yield tuple(row[:width]), tuple(row[width:])

    @_reading
    def active_members(self, start: date, end: date) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT actor_type, COUNT(DISTINCT actor) FROM records"
            " WHERE day BETWEEN ? AND ? GROUP BY actor_type",
            (start.isoformat(), end.isoformat()),
        )
        return dict(rows.fetchall())

    @_reading
    def terminal_active_members(self, start: date, end: date) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT terminal_type, COUNT(DISTINCT actor_type || ':' || actor) FROM records"
            " WHERE day BETWEEN ? AND ? GROUP BY terminal_type",
            (start.isoformat(), end.isoformat()),
        )
        return dict(rows.fetchall())

    @_reading
    def activity_span(self) -> dict[Actor, tuple[date, date]]:
        """First and last day with a record, per actor."""
        rows = self._db.execute(
            "SELECT actor_type, actor, MIN(day), MAX(day) FROM records GROUP BY actor_type, actor"
        )
        days: dict[str, date] = {}  # one date object per day, not two per actor

        def day(text: str) -> date:
            found = days.get(text)
            if found is None:
                found = days[text] = date.fromisoformat(text)
            return found

        return {(t, a): (day(first), day(last)) for t, a, first, last in rows}


def _create_private(path: Path) -> None:
    """Create the store's folder (0700) and file (0600) before SQLite does, whatever the umask;
    SQLite gives the -wal and -shm files the mode of the database file. A folder that exists is
    left as it is: it may be shared (/tmp, a volume)."""
    if not path.parent.is_dir():
        path.parent.parent.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(mode=PRIVATE_DIR)
        path.parent.chmod(PRIVATE_DIR)  # mkdir's mode passes through the umask
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, PRIVATE_FILE))


def _tighten(*paths: Path) -> None:
    """Take away the group's and others' access to the store's files, left by an older version or
    another tool."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            mode = path.stat().st_mode & 0o777
            if mode & ~PRIVATE_FILE:
                path.chmod(PRIVATE_FILE)
                log.warning("made %s private: mode %o, was %o", path, PRIVATE_FILE, mode)


def _other_tools(tools: dict[str, tuple[int, int]]) -> str | None:
    """The `other_tools` column: the decisions of tools that have no columns, as JSON, or NULL."""
    others = {t: pair for t, pair in tools.items() if t not in TOOLS}
    return json.dumps(others) if others else None


def _tools_into_records(db: sqlite3.Connection) -> None:
    """Schema 1 to 2: move the tool_actions table's rows into their records' tool columns.

    Version 1 did not say which of an actor's records of a day (one per terminal type) a tool row
    came from, so each actor-day's tool totals go to the first of its records; every figure sums
    records per actor and day or more, so every figure stays the same."""
    for tool in TOOLS:
        for decision in ("accepted", "rejected"):
            db.execute(f"ALTER TABLE records ADD COLUMN {tool}_{decision} INTEGER")
    db.execute("ALTER TABLE records ADD COLUMN other_tools TEXT")
    first = {
        (day, actor_type, actor): rowid
        for rowid, day, actor_type, actor in db.execute(
            "SELECT MIN(rowid), day, actor_type, actor FROM records GROUP BY day, actor_type, actor"
        )
    }
    moved: dict[int, dict[str, tuple[int, int]]] = {}
    for day, actor_type, actor, tool, accepted, rejected in db.execute(
        "SELECT day, actor_type, actor, tool, SUM(accepted), SUM(rejected) FROM tool_actions"
        " GROUP BY day, actor_type, actor, tool"
    ):
        rowid = first.get((day, actor_type, actor))
        if rowid is not None:
            moved.setdefault(rowid, {})[tool] = (accepted, rejected)
    columns = ", ".join(f"{t}_accepted = ?, {t}_rejected = ?" for t in TOOLS)
    rows = []
    for rowid, tools in moved.items():
        known = [value for t in TOOLS for value in tools.get(t, (None, None))]
        rows.append((*known, _other_tools(tools), rowid))
    db.executemany(f"UPDATE records SET {columns}, other_tools = ? WHERE rowid = ?", rows)
    db.execute("DROP TABLE tool_actions")


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; store errors become StoreError."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock, path: Path):
        self._db = db
        self._lock = lock
        self._failure = f"cannot write to the store at {path}"

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._lock.release()
            raise StoreError(f"{self._failure}: {exc}") from exc
        return self._db

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                try:
                    self._db.execute("COMMIT")
                    return False
                except sqlite3.Error as commit_error:
                    self._roll_back()
                    raise StoreError(f"{self._failure}: {commit_error}") from commit_error
            self._roll_back()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self._failure}: {exc}") from exc
            return False
        finally:
            self._lock.release()

    def _roll_back(self) -> None:
        """Roll back unless SQLite already did (it may, on a full disk or an I/O error)."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
