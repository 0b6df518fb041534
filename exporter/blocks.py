"""The backfill's --output folder: private blocks, one block per day and scrape target, and no
temporary files left behind.

A run works in a staging folder inside --output (same file system, so a finished block moves into
place by a rename): the day's OpenMetrics file, promtool's temporary head and the block it builds.
Nothing there is visible to Prometheus, which loads only folders named by a ULID. Only when every
day of the run has its block does the run move them in, and a manifest remembers which block holds
which day of which target, so that the block an earlier run wrote for the same day is removed once
its replacement is in place. A run killed at any moment leaves at worst its staging folder, or two
blocks of a day that the manifest both lists; the next run removes the staging folder and the older
block before it does anything else.

docs/backfill.md explains what this means for blocks already copied into a Prometheus."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
from datetime import date
from pathlib import Path
from typing import IO

from .store import PRIVATE_DIR, PRIVATE_FILE

STAGING = ".claude-code-analytics-backfill-staging"
MANIFEST = ".claude-code-analytics-backfill.json"
# Prometheus removes a folder named <ULID>.tmp-for-deletion at start-up and never loads it.
DELETING = ".tmp-for-deletion"
BLOCK_NAME = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
# Blocks hold member emails and spend, as the store does: only their owner may read them, whatever
# the umask. promtool runs with this umask.
PRIVATE_UMASK = 0o077

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # job, instance, day


class BlockFolderError(Exception):
    """The folder is in use by another backfill, or its manifest cannot be read."""


class BlockFolder:
    """--output for one run, locked against a second backfill writing to it at the same time."""

    def __init__(self, folder: Path, job: str, instance: str):
        self.folder = folder
        self.staging = folder / STAGING
        self._manifest_path = folder / MANIFEST
        self._partial_manifest = folder / f"{MANIFEST}.tmp"
        self._target = (job, instance)
        self._manifest: dict[Key, list[str]] = {}
        self._lock: int | None = None
        self.replaced = 0

    def __enter__(self) -> BlockFolder:
        if not self.folder.exists():
            self.folder.mkdir(mode=PRIVATE_DIR, parents=True)
            self.folder.chmod(PRIVATE_DIR)  # mkdir's mode passes through the umask
        self._lock = os.open(self.folder, os.O_RDONLY)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise BlockFolderError(f"another backfill is writing to {self.folder}") from None
        if self.staging.exists():
            shutil.rmtree(self.staging)
            log.warning("removed the temporary files an interrupted run left in %s", self.staging)
        self._partial_manifest.unlink(missing_ok=True)
        self._manifest = self._read_manifest()
        self._settle()
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)  # releases the lock

    def staging_folder(self, name: str) -> Path:
        """A new private folder in the staging area."""
        self.staging.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        self.staging.chmod(PRIVATE_DIR)
        folder = self.staging / name
        folder.mkdir(mode=PRIVATE_DIR)
        folder.chmod(PRIVATE_DIR)
        return folder

    def commit(self, blocks: dict[date, Path]) -> list[Path]:
        """Move the finished blocks of a run in, then remove the blocks they replace."""
        for day, block in blocks.items():
            self._manifest.setdefault(self._key(day), []).append(block.name)
        self._write_manifest()  # first, so that a kill while moving leaves nothing untracked
        placed = []
        for block in blocks.values():
            placed.append(block.rename(self.folder / block.name))
        self._settle()
        return sorted(placed)

    def _key(self, day: date) -> Key:
        return (*self._target, day.isoformat())

    def _settle(self) -> None:
        """Keep the newest block of each day and target that is still there; Prometheus may have
        compacted the others into larger blocks of its own."""
        before = dict(self._manifest)
        for key, names in before.items():
            present = [n for n in names if (self.folder / n).is_dir()]
            for name in present[:-1]:
                self._remove(name)
                self.replaced += 1
            for name in names:
                shutil.rmtree(self.folder / f"{name}{DELETING}", ignore_errors=True)
            if present:
                self._manifest[key] = present[-1:]
            else:
                del self._manifest[key]
        if self._manifest != before:
            self._write_manifest()

    def _remove(self, name: str) -> None:
        """Rename first: a block half deleted by a kill would stop Prometheus from starting."""
        doomed = self.folder / f"{name}{DELETING}"
        with contextlib.suppress(FileNotFoundError):  # Prometheus compacted it meanwhile
            (self.folder / name).rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def _read_manifest(self) -> dict[Key, list[str]]:
        try:
            entries = json.loads(self._manifest_path.read_text(encoding="utf-8"))["blocks"]
            return {
                (e["job"], e["instance"], e["day"]): [
                    n for n in e["names"] if BLOCK_NAME.fullmatch(n)
                ]
                for e in entries
            }
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError) as exc:
            raise BlockFolderError(
                f"{self._manifest_path} is not a backfill manifest ({exc!r}); remove it, and the"
                " blocks it listed, to start afresh"
            ) from None

    def _write_manifest(self) -> None:
        entries = [
            {"job": job, "instance": instance, "day": day, "names": names}
            for (job, instance, day), names in sorted(self._manifest.items())
        ]
        text = json.dumps({"blocks": entries}, indent=1) + "\n"
        partial = self._partial_manifest
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        partial.chmod(PRIVATE_FILE)
        os.replace(partial, self._manifest_path)


def private_file(path: Path) -> IO[str]:
    """Open a new file for writing that only its owner can read, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    return os.fdopen(fd, "w", encoding="utf-8")
