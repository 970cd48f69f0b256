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

from synthdistill.teachers.base import Completion

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    text TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    latency_s REAL,
    extra TEXT,
    created TEXT DEFAULT CURRENT_TIMESTAMP
)
"""


def cache_key(identity: dict[str, Any], request: dict[str, Any], iteration: int) -> str:
    payload = json.dumps({"teacher": identity, "request": request, "iteration": iteration}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """A SQLite table of responses; WAL mode lets parallel Snakemake jobs share one file."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None)
        self._set_up()

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
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(responses)")}
        if "extra" not in columns:  # caches written before label scores existed
            self.db.execute("ALTER TABLE responses ADD COLUMN extra TEXT")

    def get(self, key: str) -> tuple[Completion, float] | None:
        row = self.db.execute(
            "SELECT text, input_tokens, output_tokens, latency_s, extra FROM responses WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        extra = json.loads(row[4]) if row[4] else {}
        return Completion(text=row[0], input_tokens=row[1], output_tokens=row[2], extra=extra), row[3]

    def put(self, key: str, request: dict[str, Any], completion: Completion, latency_s: float) -> None:
        # Autocommit mode: the row is durable when this returns, so a SIGKILL loses nothing stored.
        self.db.execute(
            "INSERT OR REPLACE INTO responses (key, request, text, input_tokens, output_tokens, latency_s, extra) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                json.dumps(request, sort_keys=True),
                completion.text,
                completion.input_tokens,
                completion.output_tokens,
                latency_s,
                json.dumps(completion.extra) if completion.extra else None,
            ),
        )

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self.db.close()
