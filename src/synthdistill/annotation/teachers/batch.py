"""Provider batch APIs: ``openai_batch`` (OpenAI's Batch API, or any server with its Files and Batches
endpoints) and ``anthropic_batch`` (Anthropic's Message Batches). Half the price of real-time calls,
answers within the completion window.

The engine hands a batch teacher every request missing from the response cache at once
(:meth:`BatchTeacher.complete_many`). The teacher

1. resumes the batches recorded in the cache's ``batches`` table that hold any of these requests (a run
   killed while waiting polls the same batches again and submits none of their requests twice);
2. submits the rest, split by ``batch_max_requests`` and ``batch_max_bytes``, recording each batch and
   its request keys in the same SQLite file the moment it is created;
3. polls every ``poll_interval_s`` (times ``poll_backoff`` per poll up to ``poll_max_interval_s``),
   logging each batch's status and counts;
4. stores each answer in the response cache under the same key a real-time call would use (the
   identity is the real-time backend's), and resubmits lines that errored or expired in a follow-up
   batch, up to ``batch_max_retries`` times, after which they are failures with their last error.

A create call is never retried blindly (a retried create is a second batch, paid in full): the client
library does not retry it, and after a create that failed in a way that may have made the batch anyway
(a dropped connection, a timeout, a 5xx) the teacher looks for that batch at the provider before it
creates again. A results line that cannot be read is logged (batch, file, line) and its request counts as
failed; an answer wins over an error line for the same request. A recorded batch the provider answers 404
for stops the job, or is resubmitted with ``annotate.batch_missing: resubmit``.

Settings besides the real-time backend's (``model``, ``base_url``, ``api_key_env``, ``timeout_s``,
``structured_output``, ``top_logprobs``, ``send_seed``):

``completion_window``    the provider's window (OpenAI: ``24h``, the only value it accepts)
``poll_interval_s``      first wait between polls (default 10)
``poll_backoff``         factor the wait grows by per poll while nothing finishes (default 1.5)
``poll_max_interval_s``  longest wait between polls (default 300)
``batch_max_requests``   requests per batch (default: the provider's limit, 50,000 / 100,000)
``batch_max_bytes``      bytes per batch input (default: the provider's limit, 200 MB / 256 MB)
``batch_max_retries``    follow-up batches for lines that errored or expired (default 2)
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from synthdistill import SynthDistillError
from synthdistill.annotation.teachers.base import Completion, Request
from synthdistill.annotation.teachers.chat_api import ChatApiSettings, label_scores_completion
from synthdistill.annotation.teachers.http_retry import redact, unquote

log = logging.getLogger(__name__)

DUMMY_KEY = "not-needed"
PENDING = "pending:"  # a batch being created: its input is recorded, the provider's id not yet
METADATA_KEY = "synthdistill_input"  # OpenAI batch metadata: the input file a batch was created from
# How far the provider's clock may be from ours when a batch is matched by its creation time.
CLOCK_SLACK_S = 300.0
BATCH_MISSING = ("fail", "resubmit")  # annotate.batch_missing
CUSTOM_ID = re.compile(r'"custom_id"\s*:\s*"([^"\\]+)"')


class BatchQueueFull(SynthDistillError):
    """The account's batch queue limit is reached (enqueued requests or tokens)."""


class BatchMissing(SynthDistillError):
    """The provider answers 404 for a batch (or its results) recorded in the ledger."""

    def __init__(self, batch_id: str, detail: str) -> None:
        super().__init__(f"batch {batch_id}: {detail}")
        self.batch_id, self.detail = batch_id, detail


@dataclass
class Pending:
    """A batch whose create call may have made it at the provider without its id reaching us."""

    ledger_id: str  # its ledger row, pending:<input file id or a uuid>
    input_file_id: str | None  # OpenAI: the uploaded input, which names the batch exactly
    requests: int
    began: float  # epoch seconds: the first create call started no earlier
    until: float  # ... and the last one no later
    known: set[str]  # batch ids already in the ledger: never this one


class Ledger:
    """Records one batch being created in the cache's ``batches`` table: first its input under a
    pending id (before the provider's create call), then under the provider's id (right after)."""

    def __init__(self, cache: Any, provider: str, entries: list[tuple[str, dict[str, Any]]]) -> None:
        self.cache, self.provider, self.entries = cache, provider, entries
        self.pending_id: str | None = None
        self.input_file_id: str | None = None
        self.began = 0.0

    def begin(self, input_file_id: str | None) -> None:
        self.pending_id = f"{PENDING}{input_file_id or uuid.uuid4().hex}"
        self.input_file_id, self.began = input_file_id, time.time()
        self.cache.record_batch(self.pending_id, self.provider, "creating", self.entries, input_file_id=input_file_id)

    def attempt(self) -> None:
        """A create call starts now: its time bounds where a rerun looks for the batch it may make."""
        self.cache.update_batch(self.pending_id, "creating")

    def pending(self) -> Pending:
        known = {row["batch_id"] for row in self.cache.batches()}
        return Pending(self.pending_id or "", self.input_file_id, len(self.entries), self.began, time.time(), known)

    def created(self, batch_id: str, status: str) -> None:
        self.cache.rename_batch(self.pending_id, batch_id, status)

    def not_created(self) -> None:
        self.cache.update_batch(self.pending_id, "not_created", handled=True)


@dataclass
class BatchState:
    status: str
    done: bool  # terminal: nothing more will change
    completed: int
    failed: int
    total: int
    error: str | None = None  # why the whole batch failed, if it did
    queue_full: bool = False


# One line of a finished batch: key, answer (or None), outcome (succeeded, errored, expired, ...), error.
# The key is None for a line too damaged to tell whose it is.
Line = tuple[str | None, Completion | None, str, str | None]


def _epoch(sqlite_time: str) -> float:
    """Epoch seconds of a SQLite CURRENT_TIMESTAMP (UTC)."""
    return datetime.strptime(sqlite_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def jsonl_objects(text: str) -> Iterator[tuple[int, str, dict[str, Any] | None, str | None]]:
    """(line number, line, object or None, why not) for every non-empty line of a results file: read
    line by line, so one damaged line costs its own request and no other."""
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError as exc:
            yield number, raw, None, f"{type(exc).__name__}: {exc}"
            continue
        if isinstance(item, dict):
            yield number, raw, item, None
        else:
            yield number, raw, None, f"a JSON {type(item).__name__}, not an object"


def unreadable_line(raw: str, number: int, batch_id: str, file: str, reason: str, requests: dict[str, Any]) -> Line:
    """A results line that cannot be read, logged with its batch, file and number; keyed by the custom_id
    still legible in it, if any (then that request counts as failed and is asked again)."""
    where = f"line {number} of {file}"
    match = CUSTOM_ID.search(raw)
    key = match.group(1) if match and match.group(1) in requests else None
    log.warning(
        "batch %s: %s cannot be read (%s); %s: %.200s",
        batch_id,
        where,
        reason,
        f"its request {key} counts as failed" if key else "its request, whichever it is, gets no answer from it",
        raw,
    )
    return key, None, "unreadable", f"{where} cannot be read ({reason})"


# An answer as complete_many hands it back: completion, seconds waited, error
Answer = tuple[Completion | None, float | None, str | None]


@dataclass
class _Job:
    """One complete_many call: its requests and where each of them stands."""

    todo: dict[str, Request]  # this job's requests by cache key
    cache: Any
    batch_missing: str
    tries: dict[str, int]  # batches each request has been submitted in
    results: dict[str, Answer] = field(default_factory=dict)
    last_error: dict[str, str] = field(default_factory=dict)
    active: dict[str, float] = field(default_factory=dict)  # batch id -> when this run started waiting for it
    pending: list[str] = field(default_factory=list)  # to submit
    deferred: list[str] = field(default_factory=list)  # refused for the queue limit: sent when a batch finishes


class BatchTeacher:
    """What both batch backends share: resuming, submitting, polling, storing, resubmitting."""

    provider: str
    identity: dict[str, Any]
    model: str
    max_concurrency = 1
    default_max_requests: int
    default_max_bytes: int

    def _parse_batch_settings(self, settings: dict[str, Any]) -> None:
        self.completion_window = str(settings.get("completion_window", "24h"))
        self.poll_interval_s = float(settings.get("poll_interval_s", 10.0))
        self.poll_backoff = float(settings.get("poll_backoff", 1.5))
        self.poll_max_interval_s = float(settings.get("poll_max_interval_s", 300.0))
        self.max_requests = int(settings.get("batch_max_requests", self.default_max_requests))
        self.max_bytes = int(settings.get("batch_max_bytes", self.default_max_bytes))
        self.max_batch_retries = int(settings.get("batch_max_retries", 2))
        self.base_url = settings.get("base_url")
        self.key_env = settings.get("api_key_env")
        self.timeout_s = float(settings.get("timeout_s", 60.0))
        # The client library's retries for polls and uploads; create calls are tried as often, but by
        # _create, which looks for the batch a failed call may have made before it calls again.
        self.client_retries = int(settings.get("max_retries", 5))
        if self.poll_interval_s <= 0 or self.poll_backoff < 1 or self.max_requests < 1 or self.max_bytes < 1:
            raise SynthDistillError(
                f"teacher backend {self.provider}: poll_interval_s must be > 0, poll_backoff >= 1, "
                "batch_max_requests and batch_max_bytes >= 1"
            )
        self._client: Any = None
        self._secret: str | None = None
        self.cache_path = "the response cache"

    # Hooks for each provider.
    def _new_client(self, api_key: str) -> Any:
        raise NotImplementedError

    def line(self, key: str, request: Request) -> dict[str, Any]:
        """One request as the provider's batch input wants it, ``custom_id`` = the cache key."""
        raise NotImplementedError

    def _upload(self, lines: list[dict[str, Any]]) -> str | None:
        """The id of the uploaded batch input, for providers that take one (OpenAI's Files API)."""
        return None

    def _create_call(self, lines: list[dict[str, Any]], input_file_id: str | None) -> tuple[str, str]:
        """One create call, which the client library must not retry: (batch id, status). Raises
        :class:`BatchQueueFull` for the queue limit."""
        raise NotImplementedError

    def _may_have_created(self, exc: Exception) -> bool:
        """Whether a failed create call may have made the batch all the same (no answer came back)."""
        raise NotImplementedError

    def _find_created(self, pending: Pending) -> str | None:
        """The provider's id of the batch a failed or interrupted create made, or None if none was made."""
        raise NotImplementedError

    def _not_found(self) -> type[Exception]:
        """The client library's error for a 404."""
        raise NotImplementedError

    def _state(self, batch_id: str) -> BatchState:
        raise NotImplementedError

    def _results(self, batch_id: str, requests: dict[str, Request]) -> Iterator[Line]:
        raise NotImplementedError

    # Shared.
    def render(self, messages: list[dict[str, str]]) -> str:
        return json.dumps(messages, ensure_ascii=False)

    def complete(self, request: Request) -> Completion:
        raise SynthDistillError(
            f"teacher backend {self.provider} answers through provider batches only (the annotation engine "
            "submits them); use the real-time backend for single requests"
        )

    def _where(self) -> str:
        return f"{self.provider} {self.model} at {self.base_url or 'the provider default URL'}"

    def _get_client(self) -> Any:
        if self._client is None:
            api_key = DUMMY_KEY
            if self.key_env:
                api_key = os.environ.get(self.key_env) or ""
                if not api_key:
                    raise SynthDistillError(
                        f"teacher backend {self.provider}: environment variable {self.key_env} (named by config "
                        "key api_key_env) is not set or empty; export it before running"
                    )
                self._secret = api_key
            self._client = self._new_client(api_key)
        return self._client

    def _redact(self, text: str) -> str:
        return redact(text, self._secret)

    @contextmanager
    def _missing_as(self, batch_id: str) -> Iterator[None]:
        """The provider's 404 for a batch or its results as :class:`BatchMissing`."""
        try:
            yield
        except self._not_found() as exc:
            raise BatchMissing(batch_id, self._redact(f"HTTP 404 from the provider: {exc}")) from None

    def _create(self, lines: list[dict[str, Any]], ledger: Ledger) -> str:
        """Create one batch of these lines, never two. The input is recorded (``ledger.begin``) before
        the first create call and the batch id right after it. A create call that fails without an
        answer may have made the batch all the same (the connection dropped, or the answer came after
        ``timeout_s``), so before calling again the provider's batches are searched for it; the client
        library, which would simply send the create again, never retries it."""
        ledger.begin(self._upload(lines))
        attempts = self.client_retries + 1
        error: Exception | None = None
        for attempt in range(attempts):
            ledger.attempt()
            try:
                batch_id, status = self._create_call(lines, ledger.input_file_id)
            except BatchQueueFull:
                ledger.not_created()
                raise
            except Exception as exc:
                if not self._may_have_created(exc):
                    ledger.not_created()  # refused: the provider made nothing
                    raise
                error = exc
            else:
                ledger.created(batch_id, status)
                return batch_id
            # Give a provider still working on the create a moment, then look for what it made.
            wait = min(self.poll_interval_s * self.poll_backoff**attempt, self.poll_max_interval_s)
            log.warning(
                "%s: creating batch %s failed (%s); looking for it at the provider in %.1f s before %s",
                self.provider,
                ledger.pending_id,
                self._redact(f"{type(error).__name__}: {error}"),
                wait,
                "creating it again" if attempt + 1 < attempts else "giving up",
            )
            time.sleep(wait)
            found = self._find_created(ledger.pending())
            if found is not None:
                log.info("%s: the failed create call made batch %s; using it", self.provider, found)
                ledger.created(found, "recovered")
                return found
        # The record stays pending: the next run looks for the batch again before creating one.
        raise SynthDistillError(
            self._redact(
                f"{self._where()}: creating a batch of {len(lines)} requests failed {attempts} times (last: "
                f"{type(error).__name__}: {error}) and the provider lists no batch made from it. It stays "
                f"recorded as {ledger.pending_id} in {self.cache_path}: a rerun looks for the batch again before "
                "creating one. Raise max_retries for more tries"
            )
        )

    def _pending_from_ledger(self, batch: dict[str, Any], held: dict[str, Any], cache: Any) -> Pending:
        """A pending ledger row left by an earlier run, as :class:`Pending`: its last create call started
        at ``updated`` and lasted at most ``timeout_s``."""
        known = {row["batch_id"] for row in cache.batches()}
        began = _epoch(batch["created"])
        until = _epoch(batch.get("updated") or batch["created"]) + self.timeout_s
        return Pending(batch["batch_id"], batch["input_file_id"], len(held), began, until, known)

    def check(self, request: Request) -> None:
        """Raise before anything is submitted when the provider cannot answer this kind of request."""

    def split(self, entries: list[tuple[str, Request]]) -> list[list[tuple[str, dict[str, Any]]]]:
        """Batches within the request and byte limits, as (key, line) lists."""
        batches: list[list[tuple[str, dict[str, Any]]]] = []
        current: list[tuple[str, dict[str, Any]]] = []
        size = 0
        for key, request in entries:
            line = self.line(key, request)
            line_bytes = len(json.dumps(line).encode()) + 1
            if line_bytes > self.max_bytes:
                raise SynthDistillError(
                    f"one request is {line_bytes} bytes, more than batch_max_bytes={self.max_bytes}; shorten the "
                    "prompt (dataset.max_chars) or raise the limit"
                )
            if current and (len(current) >= self.max_requests or size + line_bytes > self.max_bytes):
                batches.append(current)
                current, size = [], 0
            current.append((key, line))
            size += line_bytes
        if current:
            batches.append(current)
        return batches

    def complete_many(
        self, requests: list[Request], keys: list[str], cache: Any, batch_missing: str
    ) -> dict[str, Answer]:
        """Answers (or errors) for every key, each answer stored in ``cache`` as its batch's results come in.
        ``batch_missing`` (``annotate.batch_missing``) says what a recorded batch the provider answers 404
        for does: ``fail`` stops the job, naming it; ``resubmit`` submits its requests again."""
        if batch_missing not in BATCH_MISSING:
            raise SynthDistillError(f"annotate.batch_missing must be one of {BATCH_MISSING}, not {batch_missing!r}")
        for request in requests:
            self.check(request)
        self.cache_path = f"the response cache {getattr(cache, 'path', '')}".rstrip()
        job = _Job(dict(zip(keys, requests, strict=True)), cache, batch_missing, dict.fromkeys(keys, 0))
        in_flight = self._resume(job, keys)
        job.pending = [key for key in keys if key not in in_flight]
        self._poll_until_done(job)
        for key in keys:
            job.results.setdefault(key, (None, None, job.last_error.get(key, "no answer")))
        return {key: job.results[key] for key in keys}

    def _resume(self, job: _Job, keys: list[str]) -> set[str]:
        """Take up the batches earlier runs recorded for any of ``keys``; returns the keys they hold."""
        cache = job.cache
        in_flight: set[str] = set()
        for batch in cache.open_batches(self.provider, keys):
            batch_id = batch["batch_id"]
            held = cache.batch_entries(batch_id)
            if batch_id.startswith(PENDING):
                found = self._find_created(self._pending_from_ledger(batch, held, cache))
                if found is None:
                    log.warning(
                        "%s: batch input %s was recorded but the run stopped before the batch was created; "
                        "submitting its requests now",
                        self.provider,
                        batch_id,
                    )
                    cache.update_batch(batch_id, "never_created", handled=True)
                    continue
                cache.rename_batch(batch_id, found, "recovered")
                batch_id = found
            try:
                with self._missing_as(batch_id):  # known to the provider? Asked before anything is submitted
                    self._state(batch_id)
            except BatchMissing as exc:
                self._handle_missing(exc, held, cache, job.batch_missing)
                continue
            log.info(
                "%s: resuming batch %s (%d requests) recorded by an earlier run", self.provider, batch_id, len(held)
            )
            job.active[batch_id] = time.monotonic()
            for key in held:
                if key in job.tries:
                    job.tries[key] += 1
                    in_flight.add(key)
        return in_flight

    def _poll_until_done(self, job: _Job) -> None:
        """Submit the pending requests and poll the active batches, until no batch is active."""
        interval = self.poll_interval_s
        while True:
            if job.pending:
                job.pending = self._submit(job.pending, job.todo, job.cache, job.active, job.tries)
            if not job.active:
                break
            time.sleep(interval)
            finished = self._poll_active(job)
            interval = self.poll_interval_s if finished else min(interval * self.poll_backoff, self.poll_max_interval_s)

    def _poll_active(self, job: _Job) -> bool:
        """Poll every active batch once and take in those that finished; True when any did."""
        finished = freed = False
        for batch_id in list(job.active):
            state = self._poll(job, batch_id)
            if state is None or not state.done:
                continue
            finished = True
            freed = self._finish(job, batch_id, state) or freed
        if freed and job.deferred:
            job.pending.extend(job.deferred)
            job.deferred.clear()
        return finished

    def _poll(self, job: _Job, batch_id: str) -> BatchState | None:
        """One active batch's state, logged and recorded (None: the provider no longer knows it)."""
        try:
            with self._missing_as(batch_id):
                state = self._state(batch_id)
        except BatchMissing as exc:
            job.active.pop(batch_id)
            self._send_again(job, exc)
            return None
        log.info(
            "%s: batch %s %s: %d/%d completed, %d failed",
            self.provider,
            batch_id,
            state.status,
            state.completed,
            state.total,
            state.failed,
        )
        job.cache.update_batch(batch_id, state.status)
        return state

    def _finish(self, job: _Job, batch_id: str, state: BatchState) -> bool:
        """Store a finished batch's answers and queue its unanswered requests again (or fail them after
        ``batch_max_retries``); True when it freed room in the provider's queue."""
        waited = time.monotonic() - job.active.pop(batch_id)
        try:
            retry = self._collect_batch(batch_id, state, job.todo, job.cache, job.results, job.last_error, waited)
        except BatchMissing as exc:  # its results are gone
            self._send_again(job, exc)
            return False
        if state.queue_full:
            self._defer(job, retry, state.error)
            return False
        for key in retry:
            if key not in job.todo:
                continue  # another shard's request: that job resubmits it
            if job.tries[key] <= self.max_batch_retries:
                job.pending.append(key)
            else:
                job.results[key] = (None, None, job.last_error.get(key, "no answer"))
        return True

    def _defer(self, job: _Job, retry: list[str], error: str | None) -> None:
        """Requests refused for the queue limit, not for themselves: no retry used up. They go again once
        a running batch has finished; with none running the job stops and says why."""
        mine = [key for key in retry if key in job.todo]
        for key in mine:
            job.tries[key] -= 1
        job.deferred.extend(mine)
        if not job.active:
            raise BatchQueueFull(self._queue_message(error))
        log.warning("%s; %d requests wait until a running batch finishes", error, len(mine))

    def _send_again(self, job: _Job, exc: BatchMissing) -> None:
        """A batch that went missing while this run waited for it: stop, or submit its requests again."""
        for key in self._handle_missing(exc, job.cache.batch_entries(exc.batch_id), job.cache, job.batch_missing):
            if key in job.todo:  # this run's requests: sent again, no retry used up
                job.tries[key] -= 1
                job.pending.append(key)

    def _handle_missing(self, exc: BatchMissing, held: dict[str, Any], cache: Any, policy: str) -> list[str]:
        """A recorded batch the provider answers 404 for. ``fail``: raise, naming it and the ways on;
        ``resubmit``: mark it missing in the ledger and return its requests that have no stored answer."""
        again = [key for key in held if cache.get(key) is None]
        if policy != "resubmit":
            key = f" (api_key_env: {self.key_env})" if self.key_env else ""
            raise SynthDistillError(
                self._redact(
                    f"{self._where()}: {exc}. Batch {exc.batch_id}, recorded in {self.cache_path}, holds "
                    f"{len(held)} requests, {len(again)} of them without a stored answer. The provider "
                    "no longer knows it: most likely the API key or project changed since it was submitted (or the "
                    "batch was deleted), so its answers cannot be collected with this key. Either restore the key "
                    f"or project it was submitted under{key} and rerun to collect them, or set "
                    "annotate.batch_missing: resubmit to mark it missing and submit those requests again (paid "
                    "again if the original batch ran)"
                )
            ) from None
        log.warning(
            "%s: %s; annotate.batch_missing is resubmit: marking it missing in %s and submitting its %d requests "
            "without a stored answer again",
            self.provider,
            exc,
            self.cache_path,
            len(again),
        )
        cache.update_batch(exc.batch_id, "missing", handled=True)
        return again

    def _queue_message(self, error: str | None) -> str:
        return self._redact(
            f"{self._where()}: the account's batch queue limit is reached ({error or 'enqueued limit'}). Batches "
            "already submitted are recorded in the response cache and are resumed, not resubmitted, on the next "
            "run; wait for them to finish (or raise the limit with the provider), or split the work with "
            "sharded annotation, then rerun"
        )

    def _submit(
        self,
        pending: list[str],
        todo: dict[str, Request],
        cache: Any,
        active: dict[str, float],
        tries: dict[str, int],
    ) -> list[str]:
        """Submit ``pending`` in batches; returns the keys left for later (queue full while batches run)."""
        groups = self.split([(key, todo[key]) for key in pending])
        for index, group in enumerate(groups):
            ledger = Ledger(cache, self.provider, [(key, todo[key].as_dict()) for key, _ in group])
            try:
                batch_id = self._create([line for _, line in group], ledger)
            except BatchQueueFull as exc:
                if not active:
                    raise
                left = [key for rest in groups[index:] for key, _ in rest]
                log.warning("%s; %d requests wait until a running batch finishes", exc, len(left))
                return left
            for key, _ in group:
                tries[key] += 1
            active[batch_id] = time.monotonic()
            log.info("%s: submitted batch %s with %d requests", self.provider, batch_id, len(group))
        return []

    def _collect_batch(
        self,
        batch_id: str,
        state: BatchState,
        todo: dict[str, Request],
        cache: Any,
        results: dict[str, Answer],
        last_error: dict[str, str],
        waited: float,
    ) -> list[str]:
        """Store a finished batch's answers; return the keys that got none."""
        held = cache.batch_entries(batch_id)
        requests = {key: todo.get(key) or Request(**request) for key, request in held.items()}
        answered: set[str] = set()
        errors: dict[str, tuple[str, str | None]] = {}
        unreadable: list[str] = []  # damaged lines that name no request of this batch
        with self._missing_as(batch_id):
            for key, completion, outcome, error in self._results(batch_id, requests):
                if key is None:
                    unreadable.append(error or outcome)
                elif key not in held:
                    continue
                elif completion is None:
                    errors[key] = (outcome, error)
                elif key in answered:  # a second answer: the first one is stored, and paid once
                    log.warning("batch %s: a second answer for request %s is ignored", batch_id, key)
                else:
                    cache.put(key, held[key], completion, waited)
                    answered.add(key)
                    if key in todo:
                        results[key] = (completion, waited, None)
        for key in answered.intersection(errors):
            # An answer and an error line for one request: the answer is stored and wins; resubmitting
            # would pay for it twice.
            outcome, error = errors.pop(key)
            log.warning(
                "batch %s: request %s has an answer and also an %s line (%s); the answer is kept",
                batch_id,
                key,
                outcome,
                error,
            )
        failed = [(key, outcome, error) for key, (outcome, error) in errors.items()]
        for key in held:
            if key not in answered and key not in errors:
                reason = state.error or f"no result for this request (batch {state.status})"
                if unreadable:
                    reason += f"; {len(unreadable)} result lines could not be read, the first: {unreadable[0]}"
                failed.append((key, state.status, reason))
        for key, outcome, error in failed:
            last_error[key] = self._redact(f"{self._where()}: batch {batch_id} {outcome}: {error}")
        cache.record_outcomes(batch_id, failed)
        cache.update_batch(batch_id, state.status, handled=True)
        log.info(
            "%s: batch %s %s: stored %d answers, %d requests without one",
            self.provider,
            batch_id,
            state.status,
            len(answered),
            len(failed),
        )
        return [key for key, _, _ in failed]


def _completion(body: dict[str, Any], request: Request, where: str) -> Completion:
    """A real-time teacher's Completion from a chat-completion body of a batch output line."""
    from openai.types.chat import ChatCompletion

    response = ChatCompletion.model_validate(body)
    if request.score_labels:
        return label_scores_completion(response, request.score_labels, where)
    message = response.choices[0].message
    text = (message.content if message is not None else None) or ""
    if request.choices and not request.json_schema:
        text = unquote(text)
    usage = response.usage
    return Completion(
        text=text,
        input_tokens=usage.prompt_tokens if usage else None,
        output_tokens=usage.completion_tokens if usage else None,
    )


QUEUE_CODES = ("token_limit_exceeded", "request_limit_exceeded", "batch_limit_exceeded")


class OpenAIBatchTeacher(BatchTeacher):
    """The OpenAI Batch API: a JSONL of ``/v1/chat/completions`` requests uploaded with the Files API."""

    provider = "openai_batch"
    default_max_requests = 50_000
    default_max_bytes = 200 * 1024 * 1024

    def __init__(self, settings: dict[str, Any]) -> None:
        if not settings.get("model"):
            raise SynthDistillError("teacher backend openai_batch: config key model is missing")
        self.model = str(settings["model"])
        self._parse_batch_settings(settings)
        self.api = ChatApiSettings.parse(settings, "openai_batch")
        # The real-time backend's identity: an answer is the same whichever way it was asked for.
        self.identity = {"backend": "openai", "base_url": self.base_url, "model": self.model}
        self.identity.update(self.api.identity_extras())

    def __repr__(self) -> str:
        return f"OpenAIBatchTeacher(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.key_env!r})"

    def _new_client(self, api_key: str) -> Any:
        import openai

        return openai.OpenAI(
            base_url=self.base_url, api_key=api_key, timeout=self.timeout_s, max_retries=self.client_retries
        )

    def line(self, key: str, request: Request) -> dict[str, Any]:
        return {
            "custom_id": key,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": self.api.chat_kwargs(request, self.model),
        }

    def _upload(self, lines: list[dict[str, Any]]) -> str | None:
        # An upload retried by the client library leaves at most an unused file, which costs nothing.
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return self._get_client().files.create(file=("synthdistill-batch.jsonl", data), purpose="batch").id

    def _create_call(self, lines: list[dict[str, Any]], input_file_id: str | None) -> tuple[str, str]:
        import openai

        try:
            batch = (
                self._get_client()
                .with_options(max_retries=0)
                .batches.create(
                    input_file_id=input_file_id or "",
                    endpoint="/v1/chat/completions",
                    completion_window=self.completion_window,
                    metadata={METADATA_KEY: input_file_id or ""},
                )
            )
        except openai.RateLimitError as exc:
            raise BatchQueueFull(self._queue_message(str(exc))) from None
        return batch.id, batch.status

    def _may_have_created(self, exc: Exception) -> bool:
        import openai

        if isinstance(exc, openai.APIConnectionError):  # a timeout or a dropped connection
            return True
        return isinstance(exc, openai.APIStatusError) and (exc.status_code >= 500 or exc.status_code in (408, 409))

    def _find_created(self, pending: Pending) -> str | None:
        """The batch made from the pending input file: its id is unique, so the match is exact. Listed
        newest first, the search stops at batches older than the upload."""
        if not pending.input_file_id:
            return None
        for batch in self._get_client().batches.list(limit=100):
            if batch.created_at < pending.began - CLOCK_SLACK_S:
                break
            tagged = (batch.metadata or {}).get(METADATA_KEY)
            if batch.input_file_id == pending.input_file_id or tagged == pending.input_file_id:
                return str(batch.id)
        return None

    def _not_found(self) -> type[Exception]:
        import openai

        return openai.NotFoundError

    def _state(self, batch_id: str) -> BatchState:
        batch = self._get_client().batches.retrieve(batch_id)
        counts = batch.request_counts
        error = None
        queue_full = False
        if batch.errors and batch.errors.data:
            first = batch.errors.data[0]
            error = f"{first.code}: {first.message}"
            queue_full = first.code in QUEUE_CODES
        return BatchState(
            status=batch.status,
            done=batch.status in ("completed", "expired", "failed", "cancelled"),
            completed=counts.completed if counts else 0,
            failed=counts.failed if counts else 0,
            total=counts.total if counts else 0,
            error=error,
            queue_full=queue_full,
        )

    def _results(self, batch_id: str, requests: dict[str, Request]) -> Iterator[Line]:
        client = self._get_client()
        batch = client.batches.retrieve(batch_id)
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            text = client.files.content(file_id).text
            for number, raw, item, problem in jsonl_objects(text):
                if item is not None:
                    key = item.get("custom_id")
                    if not isinstance(key, str):
                        problem = "a JSON object without a custom_id"
                    elif key not in requests:
                        continue  # another shard's request
                    else:
                        try:
                            line = self._line(key, item, requests[key])
                        except (AttributeError, TypeError) as exc:  # a response that is no object, ...
                            problem = f"not a batch result ({type(exc).__name__}: {exc})"
                        else:
                            yield line
                            continue
                yield unreadable_line(raw, number, batch_id, f"file {file_id}", problem or "", requests)

    def _line(self, key: str, item: dict[str, Any], request: Request) -> Line:
        response = item.get("response") or {}
        body = response.get("body") or {}
        if item.get("error"):
            error = item["error"]
            code = error.get("code") or "error"
            outcome = "expired" if code == "batch_expired" else "errored"
            return key, None, outcome, f"{code}: {error.get('message')}"
        if response.get("status_code") != 200:
            detail = body.get("error") if isinstance(body, dict) else body
            return key, None, "errored", f"HTTP {response.get('status_code')}: {json.dumps(detail)[:300]}"
        try:
            return key, _completion(body, request, self._where()), "succeeded", None
        except Exception as exc:  # a body that is no completion, no top_logprobs, ...
            return key, None, "errored", f"{type(exc).__name__}: {exc}"


class AnthropicBatchTeacher(BatchTeacher):
    """Anthropic's Message Batches through the ``anthropic`` client."""

    provider = "anthropic_batch"
    default_max_requests = 100_000
    default_max_bytes = 256 * 1024 * 1024

    def __init__(self, settings: dict[str, Any]) -> None:
        if not settings.get("model"):
            raise SynthDistillError("teacher backend anthropic_batch: config key model is missing")
        self.model = str(settings["model"])
        self._parse_batch_settings(settings)
        self.identity = {"backend": "anthropic", "base_url": self.base_url, "model": self.model}

    def __repr__(self) -> str:
        return f"AnthropicBatchTeacher(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.key_env!r})"

    def _new_client(self, api_key: str) -> Any:
        import anthropic

        return anthropic.Anthropic(
            base_url=self.base_url, api_key=api_key, timeout=self.timeout_s, max_retries=self.client_retries
        )

    def check(self, request: Request) -> None:
        if request.score_labels:
            raise SynthDistillError(
                "teacher backend anthropic_batch: label_scores prompts need token log-probabilities, which "
                "Anthropic's API does not return; use a label or cot_json prompt with this teacher"
            )
        if request.json_schema or request.choices:
            raise SynthDistillError(
                "teacher backend anthropic_batch: structured (constrained) decoding is not supported through "
                "Message Batches here; set structured: false on the prompt (answers are still checked against "
                "the label set)"
            )

    def line(self, key: str, request: Request) -> dict[str, Any]:
        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": [m for m in request.messages if m["role"] != "system"],
            "temperature": request.temperature,
        }
        if system:
            params["system"] = system
        if request.top_p < 1.0:
            params["top_p"] = request.top_p
        return {"custom_id": key, "params": params}

    def _create_call(self, lines: list[dict[str, Any]], input_file_id: str | None) -> tuple[str, str]:
        import anthropic

        try:
            batch = self._get_client().with_options(max_retries=0).messages.batches.create(requests=lines)  # type: ignore[arg-type]
        except anthropic.RateLimitError as exc:
            raise BatchQueueFull(self._queue_message(str(exc))) from None
        return batch.id, batch.processing_status

    def _may_have_created(self, exc: Exception) -> bool:
        import anthropic

        if isinstance(exc, anthropic.APIConnectionError):  # a timeout or a dropped connection
            return True
        return isinstance(exc, anthropic.APIStatusError) and (exc.status_code >= 500 or exc.status_code in (408, 409))

    def _find_created(self, pending: Pending) -> str | None:
        """Message batches take no metadata and list no custom_ids, so the batch is matched by what is
        listed: made while the create calls ran (give or take the clocks' difference), holding as many
        requests, and not already recorded by another batch of the ledger. Several such batches (same-sized
        batches created at the same moment by parallel jobs) resolve to the earliest, with a warning."""
        found = []
        for batch in self._get_client().messages.batches.list(limit=100):
            created = batch.created_at.timestamp()
            if created < pending.began - CLOCK_SLACK_S:
                break  # newest first: the rest are older
            counts = batch.request_counts
            total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
            if created <= pending.until + CLOCK_SLACK_S and total == pending.requests and batch.id not in pending.known:
                found.append((created, str(batch.id)))
        if not found:
            return None
        found.sort()
        if len(found) > 1:
            log.warning(
                "%s: batches %s all match %s (%d requests, made while it was being created); taking the earliest",
                self.provider,
                ", ".join(batch_id for _, batch_id in found),
                pending.ledger_id,
                pending.requests,
            )
        return found[0][1]

    def _not_found(self) -> type[Exception]:
        import anthropic

        return anthropic.NotFoundError

    def _state(self, batch_id: str) -> BatchState:
        batch = self._get_client().messages.batches.retrieve(batch_id)
        counts = batch.request_counts
        total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
        return BatchState(
            status=batch.processing_status,
            done=batch.processing_status == "ended",
            completed=counts.succeeded,
            failed=counts.errored + counts.canceled + counts.expired,
            total=total,
        )

    def _results(self, batch_id: str, requests: dict[str, Request]) -> Iterator[Line]:
        from anthropic.types.messages import MessageBatchIndividualResponse

        # Fetched whole and read line by line: the client library's own reader stops at the first damaged
        # line, losing every answer after it.
        with self._get_client().messages.batches.with_streaming_response.results(batch_id) as response:
            text, url = response.text(), str(response.url)
        for number, raw, item, problem in jsonl_objects(text):
            if item is not None:
                try:
                    response = MessageBatchIndividualResponse.model_validate(item)
                except ValueError as exc:  # pydantic's ValidationError: not a batch result
                    problem = f"not a batch result ({type(exc).__name__}: {str(exc).splitlines()[0]})"
                else:
                    if response.custom_id in requests:
                        yield self._line(response)
                    continue
            yield unreadable_line(raw, number, batch_id, f"the results at {url}", problem or "", requests)

    @staticmethod
    def _line(item: Any) -> Line:
        key, result = item.custom_id, item.result
        if result.type == "succeeded":
            message = result.message
            text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
            usage = message.usage
            return key, Completion(text, usage.input_tokens, usage.output_tokens), "succeeded", None
        if result.type == "errored":
            error = result.error.error
            return key, None, "errored", f"{error.type}: {error.message}"
        return key, None, result.type, f"request {result.type}"
