"""Persistent response cache: every paid answer is stored the moment it arrives.

It lives outside results/ by default so that deleting results/ never loses a paid call, and it
is keyed by everything that determines an answer, self-consistency iteration included, so
samples of the same prompt never collapse into one cached answer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from tenacity import retry, retry_if_exception, stop_after_delay, wait_random

from synthdistill import SynthDistillError
from synthdistill.annotation.teachers.base import Completion

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    text TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    latency_s REAL,
    extra TEXT,
    compute_s REAL,
    created TEXT DEFAULT CURRENT_TIMESTAMP
)
"""

# Provider batches (openai_batch, anthropic_batch), recorded the moment they are created so that a
# killed run resumes polling them instead of submitting their requests again. ``handled`` is set
# once every line of a batch has been stored or judged failed.
BATCH_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    status TEXT NOT NULL,
    input_file_id TEXT,
    requests INTEGER NOT NULL,
    handled INTEGER NOT NULL DEFAULT 0,
    created TEXT DEFAULT CURRENT_TIMESTAMP,
    updated TEXT DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS batch_requests (
    batch_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request TEXT NOT NULL,
    outcome TEXT,
    error TEXT,
    PRIMARY KEY (batch_id, key)
);
CREATE INDEX IF NOT EXISTS batch_requests_key ON batch_requests (key);
"""


class CacheError(SynthDistillError):
    """The cache file cannot be opened, read or written; the message names it and what to do."""


class CacheWriteError(CacheError):
    """An answer could not be stored (full disk, read-only file, ...): nothing more should be requested."""


def _unreadable(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc).lower()
    problem = f"the response cache {path} cannot be read ({type(exc).__name__}: {exc})"
    if not any(word in text for word in ("not a database", "malformed", "corrupt")):
        return f"{problem}. Check that the path is a file you can read and write, or set cache.path to another file."
    aside = path.with_name(path.name + ".broken")
    return (
        f"{problem}: the file is damaged. Move it aside (mv {path} {aside}, with its -wal and -shm files if "
        f"present) and rerun: a new, empty cache is created and every answer is requested (and paid for) "
        f"again. The answers in the old file are lost unless it can be recovered with "
        f"`sqlite3 {aside} .recover | sqlite3 {path}` before the rerun."
    )


def _unwritable(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc).lower()
    if "full" in text:
        remedy = f"free space on the disk that holds {path.parent} (df -h {path.parent})"
    elif "readonly" in text or "read-only" in text or "read only" in text:
        remedy = f"make {path} and its folder writable (its -wal and -shm files too)"
    elif "locked" in text or "busy" in text:
        remedy = "stop whatever else holds a write lock on it"
    else:
        remedy = "fix the file or its disk"
    return (
        f"cannot write to the response cache {path} ({type(exc).__name__}: {exc}). Answers stored before this "
        f"are safe; {remedy}, or set cache.path to a file on a disk with room, then rerun: stored answers are "
        f"not requested again."
    )


def cache_key(identity: dict[str, Any], request: dict[str, Any], iteration: int) -> str:
    payload = json.dumps({"teacher": identity, "request": request, "iteration": iteration}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """A SQLite table of responses; WAL mode lets parallel Snakemake jobs share one file."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.db = sqlite3.connect(path, timeout=60, isolation_level=None)
            self._set_up()
        except sqlite3.Error as exc:  # "file is not a database", "unable to open database file", ...
            raise CacheError(_unreadable(path, exc)) from None

    # Switching a new file to WAL takes an exclusive lock that SQLite's busy timeout does not
    # wait for, so sharded jobs opening one fresh cache at the same moment must retry.
    @retry(
        retry=retry_if_exception(lambda e: isinstance(e, sqlite3.OperationalError) and "locked" in str(e)),
        wait=wait_random(0.05, 0.5),
        stop=stop_after_delay(120),
        reraise=True,
    )
    def _set_up(self) -> None:
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # WAL persists in the file
            self.db.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL skips the fsync per commit yet a committed row survives a killed
        # process (only a power cut can lose the last commits), which is what resuming needs.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(SCHEMA)
        self.db.executescript(BATCH_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(responses)")}
        if "extra" not in columns:  # caches written before label scores existed
            self.db.execute("ALTER TABLE responses ADD COLUMN extra TEXT")
        if "compute_s" not in columns:  # caches written before teacher time was costed
            self.db.execute("ALTER TABLE responses ADD COLUMN compute_s REAL")

    def get(self, key: str) -> tuple[Completion, float, float | None] | None:
        """The stored answer, its latency and its share of the teacher's busy time (runner.BusyClock),
        both measured when it was paid for; the share is None for answers stored without one."""
        try:
            row = self.db.execute(
                "SELECT text, input_tokens, output_tokens, latency_s, extra, compute_s FROM responses WHERE key = ?",
                (key,),
            ).fetchone()
        except sqlite3.Error as exc:  # e.g. "database disk image is malformed" further into the file
            raise CacheError(_unreadable(self.path, exc)) from None
        if row is None:
            return None
        extra = json.loads(row[4]) if row[4] else {}
        return Completion(text=row[0], input_tokens=row[1], output_tokens=row[2], extra=extra), row[3], row[5]

    def put(
        self,
        key: str,
        request: dict[str, Any],
        completion: Completion,
        latency_s: float,
        compute_s: float | None = None,
    ) -> None:
        """Store (or replace) one answer; raises :class:`CacheWriteError` when the file takes no more."""
        try:
            self._insert(key, request, completion, latency_s, compute_s)
        except sqlite3.Error as exc:  # "database or disk is full", "attempt to write a readonly database"
            raise CacheWriteError(_unwritable(self.path, exc)) from None

    def _insert(
        self, key: str, request: dict[str, Any], completion: Completion, latency_s: float, compute_s: float | None
    ) -> None:
        # Autocommit mode: the row is durable when this returns, so a SIGKILL loses nothing stored.
        self.db.execute(
            "INSERT OR REPLACE INTO responses "
            "(key, request, text, input_tokens, output_tokens, latency_s, extra, compute_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                json.dumps(request, sort_keys=True),
                completion.text,
                completion.input_tokens,
                completion.output_tokens,
                latency_s,
                json.dumps(completion.extra) if completion.extra else None,
                compute_s,
            ),
        )

    # The batch ledger. Every write is one transaction, durable when the call returns.
    def record_batch(
        self,
        batch_id: str,
        provider: str,
        status: str,
        entries: list[tuple[str, dict[str, Any]]],
        input_file_id: str | None = None,
    ) -> None:
        """Record a created batch and the (key, request) pairs it holds, in one transaction."""
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "INSERT OR REPLACE INTO batches (batch_id, provider, status, input_file_id, requests) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (batch_id, provider, status, input_file_id, len(entries)),
                )
                self.db.executemany(
                    "INSERT OR REPLACE INTO batch_requests (batch_id, key, request) VALUES (?, ?, ?)",
                    [(batch_id, key, json.dumps(request, sort_keys=True)) for key, request in entries],
                )
        except sqlite3.Error as exc:
            raise CacheWriteError(_unwritable(self.path, exc)) from None

    def update_batch(self, batch_id: str, status: str, handled: bool = False) -> None:
        try:
            self.db.execute(
                "UPDATE batches SET status = ?, handled = ?, updated = CURRENT_TIMESTAMP WHERE batch_id = ?",
                (status, int(handled), batch_id),
            )
        except sqlite3.Error as exc:
            raise CacheWriteError(_unwritable(self.path, exc)) from None

    def rename_batch(self, old_id: str, batch_id: str, status: str) -> None:
        """A pending batch got its provider id: one transaction, so it is never recorded twice."""
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "UPDATE batches SET batch_id = ?, status = ?, updated = CURRENT_TIMESTAMP WHERE batch_id = ?",
                    (batch_id, status, old_id),
                )
                self.db.execute("UPDATE batch_requests SET batch_id = ? WHERE batch_id = ?", (batch_id, old_id))
        except sqlite3.Error as exc:
            raise CacheWriteError(_unwritable(self.path, exc)) from None

    def record_outcomes(self, batch_id: str, outcomes: list[tuple[str, str, str | None]]) -> None:
        """(key, outcome, error) of lines that came back without an answer: ``errored``, ``expired``, ..."""
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.executemany(
                    "UPDATE batch_requests SET outcome = ?, error = ? WHERE batch_id = ? AND key = ?",
                    [(outcome, error, batch_id, key) for key, outcome, error in outcomes],
                )
        except sqlite3.Error as exc:
            raise CacheWriteError(_unwritable(self.path, exc)) from None

    def open_batches(self, provider: str, keys: list[str]) -> list[dict[str, Any]]:
        """Batches of ``provider`` not yet handled that hold any of ``keys``, oldest first; ``updated`` of a
        pending one is when its last create call started."""
        wanted = set(keys)
        rows = self.db.execute(
            "SELECT batch_id, status, input_file_id, created, updated FROM batches WHERE provider = ? AND handled = 0 "
            "ORDER BY created, rowid",
            (provider,),
        ).fetchall()
        names = ("batch_id", "status", "input_file_id", "created", "updated")
        return [dict(zip(names, row, strict=True)) for row in rows if wanted.intersection(self.batch_entries(row[0]))]

    def batch_entries(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """key -> request of every line of a recorded batch."""
        rows = self.db.execute("SELECT key, request FROM batch_requests WHERE batch_id = ?", (batch_id,))
        return {key: json.loads(request) for key, request in rows}

    def batches(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT batch_id, provider, status, requests, handled, created FROM batches ORDER BY created, rowid"
        )
        names = ("batch_id", "provider", "status", "requests", "handled", "created")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self.db.close()
