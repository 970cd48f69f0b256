"""A loopback server for provider batch APIs: OpenAI's Files and Batches endpoints and Anthropic's Message
Batches, in their documented shapes, answering every request line through a real chat-completions server
(the llama.cpp server of :func:`tests.servers.start_llama_server`) or, for benchmarks only, the fake upstream
of :mod:`tests.servers`.

OpenAI: ``POST /v1/files`` (multipart, purpose ``batch``), ``GET /v1/files/{id}`` and ``/content``,
``POST /v1/batches``, ``GET /v1/batches`` and ``/{id}``, ``POST /v1/batches/{id}/cancel``. A batch moves
validating -> in_progress -> finalizing -> completed (or failed when its input is invalid or the queue
limit is reached, expired, cancelling -> cancelled); answered lines go to the output file, errored and
expired lines to the error file, as ``{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error"}``; ``request_counts`` counts them.

Anthropic: ``POST /v1/messages/batches``, ``GET /v1/messages/batches/{id}``, ``.../results`` (JSONL of
``{"custom_id", "result": {"type": "succeeded" | "errored" | "expired" | "canceled", ...}}``) and
``.../cancel``; ``processing_status`` in_progress -> ended.

Everything lives in a state folder, so a server killed and started again on the same folder carries on
with the batches it had (lines already answered are not asked again). Faults: ``fail_share`` of the lines
error once (the same custom_id answers when resubmitted), ``expire_after`` lines into the first batch it
expires, ``queue_limit`` batches at most in progress (more: OpenAI fails the batch with
``token_limit_exceeded``, Anthropic answers 429), and a ``HOLD`` file in the state folder pauses
processing (a batch stays in_progress) until it is removed. ``GET /_batch/stats`` counts the lines
submitted per custom_id across restarts: duplicates are what a client submitted twice.

Faults of the provider itself: ``create_faults``, one per create call in order (then none):
``drop_before`` closes the connection before creating the batch, ``drop_after`` creates it and then
closes the connection unanswered, ``slow_after`` creates it and answers ``create_delay_s`` later (past a
client's timeout), ``slow_before`` waits ``create_delay_s`` before it creates the batch and answers,
``none`` answers as usual.
``truncate_line`` cuts that line (1-based) of the first batch's results (OpenAI: its output file) in
half, or to its first ``truncate_keep`` characters; ``duplicate_error_line`` adds an error line for the
custom_id of that line of the first batch's results, after its answer. A batch unknown to the server
(another state folder: another key or project) answers 404.

    python tests/batch_server.py --state DIR --upstream URL|fake [--port N] [--fail-share 0.05] ...

prints ``PORT <n>``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import HOST, fake_completion, free_port, stop_process, wait_for_http  # noqa: E402

LABELS = ["positive", "negative", "neutral"]
TERMINAL = ("completed", "failed", "expired", "cancelled")


def _now() -> int:
    return int(time.time())


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts else None


class BatchState:
    """The server's state folder: files/, batches/, counts.json, failed_once.json."""

    def __init__(
        self,
        root: Path,
        upstream: str,
        fail_share: float = 0.0,
        expire_after: int | None = None,
        queue_limit: int | None = None,
        line_delay_s: float = 0.0,
        create_faults: tuple[str, ...] = (),
        create_delay_s: float = 2.0,
        truncate_line: int | None = None,
        truncate_keep: int | None = None,
        duplicate_error_line: int | None = None,
    ) -> None:
        self.root = root
        (root / "files").mkdir(parents=True, exist_ok=True)
        (root / "batches").mkdir(parents=True, exist_ok=True)
        self.upstream, self.fail_share, self.expire_after = upstream, fail_share, expire_after
        self.queue_limit, self.line_delay_s = queue_limit, line_delay_s
        self.create_faults, self.create_delay_s = list(create_faults), create_delay_s
        self.truncate_line, self.truncate_keep = truncate_line, truncate_keep
        self.duplicate_error_line = duplicate_error_line
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.calls = 0
        self._lines: dict[str, list[dict[str, Any]]] = {}
        self.base_url = ""  # set by the server once bound: absolute results_url

    # persistence
    def _read(self, name: str, default: Any) -> Any:
        path = self.root / name
        return json.loads(path.read_text()) if path.exists() else default

    def _write(self, name: str, value: Any) -> None:
        path = self.root / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value))
        os.replace(tmp, path)

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        return self._read(f"batches/{batch_id}.json", None)

    def save(self, batch: dict[str, Any]) -> None:
        batch = dict(batch)
        lines = batch.pop("lines", None)
        if lines is not None:  # written once, at creation; read back on demand
            self._write(f"batches/{batch['id']}.lines", lines)
            self._lines[batch["id"]] = lines
        self._write(f"batches/{batch['id']}.json", batch)

    def lines(self, batch_id: str) -> list[dict[str, Any]]:
        if batch_id not in self._lines:
            self._lines[batch_id] = self._read(f"batches/{batch_id}.lines", [])
        return self._lines[batch_id]

    def all_batches(self) -> list[dict[str, Any]]:
        return sorted(
            (json.loads(p.read_text()) for p in (self.root / "batches").glob("*.json")),
            key=lambda b: (b["created_at"], b["seq"]),
        )

    def count_submitted(self, custom_ids: list[str]) -> None:
        counts = self._read("counts.json", {})
        for custom_id in custom_ids:
            counts[custom_id] = counts.get(custom_id, 0) + 1
        self._write("counts.json", counts)

    def stats(self) -> dict[str, Any]:
        counts = self._read("counts.json", {})
        batches = self.all_batches()
        return {
            "submitted_lines": sum(counts.values()),
            "distinct_custom_ids": len(counts),
            "resubmitted": {k: v for k, v in counts.items() if v > 1},
            "batches": len(batches),
            "statuses": [b["status"] for b in batches],
            "injected_failures": len(self._read("failed_once.json", [])),
            "upstream_calls": self.calls,
        }

    # files
    def add_file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        (self.root / "files" / f"{file_id}.data").write_bytes(data)
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": _now(),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        self._write(f"files/{file_id}.json", meta)
        return meta

    def file_meta(self, file_id: str) -> dict[str, Any] | None:
        return self._read(f"files/{file_id}.json", None)

    def file_data(self, file_id: str) -> bytes | None:
        path = self.root / "files" / f"{file_id}.data"
        return path.read_bytes() if path.exists() else None

    # faults
    def next_create_fault(self) -> str | None:
        with self.lock:
            return self.create_faults.pop(0) if self.create_faults else None

    def faulty_results(self, batch: dict[str, Any], out: bytes, err: bytes) -> tuple[bytes, bytes]:
        """The first batch's results (answers, errors) with the configured faults applied."""
        if batch["seq"] != 0:
            return out, err
        lines = out.splitlines(keepends=True)
        if self.duplicate_error_line is not None:
            custom_id = json.loads(lines[self.duplicate_error_line - 1])["custom_id"]
            err += (json.dumps(self._error_record(batch["kind"], custom_id)) + "\n").encode()
        if self.truncate_line is not None:
            cut = lines[self.truncate_line - 1]
            keep = self.truncate_keep if self.truncate_keep is not None else len(cut) // 2
            lines[self.truncate_line - 1] = cut[:keep] + b"\n"
        return b"".join(lines), err

    @staticmethod
    def _error_record(kind: str, custom_id: str) -> dict[str, Any]:
        if kind == "openai":
            body = {"error": {"message": "The server had an error processing your request", "type": "server_error"}}
            response = {"status_code": 500, "request_id": f"req_{uuid.uuid4().hex[:16]}", "body": body}
            return {"id": f"batch_req_{uuid.uuid4().hex[:16]}", "custom_id": custom_id, "response": response}
        error = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}
        return {"custom_id": custom_id, "result": {"type": "errored", "error": error}}

    # batches
    def _active(self) -> int:
        return sum(b["status"] in ("validating", "in_progress", "finalizing") for b in self.all_batches())

    def create_openai(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        data = self.file_data(body.get("input_file_id", ""))
        if data is None:
            return 404, {"error": {"message": "No such File object", "type": "invalid_request_error"}}
        if body.get("completion_window") != "24h":
            return 400, {"error": {"message": "completion_window must be 24h", "type": "invalid_request_error"}}
        with self.lock:
            seq = len(list((self.root / "batches").glob("*.json")))
            batch = {
                "id": f"batch_{uuid.uuid4().hex[:24]}",
                "object": "batch",
                "kind": "openai",
                "seq": seq,
                "endpoint": body.get("endpoint"),
                "errors": None,
                "input_file_id": body["input_file_id"],
                "completion_window": "24h",
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": _now(),
                "in_progress_at": None,
                "expires_at": _now() + 86400,
                "finalizing_at": None,
                "completed_at": None,
                "failed_at": None,
                "expired_at": None,
                "cancelling_at": None,
                "cancelled_at": None,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
            }
            lines = [json.loads(raw) for raw in data.decode().splitlines() if raw.strip()]
            self.count_submitted([line.get("custom_id") for line in lines])
            problem = self._validate(lines, batch["endpoint"])
            if problem is None and self.queue_limit is not None and self._active() >= self.queue_limit:
                problem = ("token_limit_exceeded", "Enqueued token limit reached for this model. Wait for batches")
            if problem is not None:
                batch.update(status="failed", failed_at=_now())
                batch["errors"] = {"object": "list", "data": [{"code": problem[0], "message": problem[1]}]}
            else:
                batch["request_counts"]["total"] = len(lines)
            batch["lines"] = lines
            self.save(batch)
        self.wake.set()
        return 200, self.public(batch)

    @staticmethod
    def _validate(lines: list[dict[str, Any]], endpoint: str) -> tuple[str, str] | None:
        seen = set()
        for number, line in enumerate(lines, 1):
            custom_id = line.get("custom_id")
            if not custom_id or custom_id in seen:
                return "duplicate_custom_id", f"line {number}: custom_id missing or not unique"
            seen.add(custom_id)
            if line.get("method") != "POST" or line.get("url") != endpoint or not isinstance(line.get("body"), dict):
                return "invalid_request", f"line {number}: method must be POST and url {endpoint}"
        return None

    def create_anthropic(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        requests = body.get("requests") or []
        with self.lock:
            if self.queue_limit is not None and self._active() >= self.queue_limit:
                error = {"type": "rate_limit_error", "message": "Too many message batches in progress"}
                return 429, {"type": "error", "error": error}
            ids = [r.get("custom_id") for r in requests]
            if len(set(ids)) != len(ids) or not all(ids):
                error = {"type": "invalid_request_error", "message": "custom_id values must be unique"}
                return 400, {"type": "error", "error": error}
            self.count_submitted(ids)
            batch = {
                "id": f"msgbatch_{uuid.uuid4().hex[:24]}",
                "kind": "anthropic",
                "seq": len(list((self.root / "batches").glob("*.json"))),
                "status": "in_progress",
                "created_at": _now(),
                "ended_at": None,
                "lines": requests,
                "request_counts": {"total": len(requests), "completed": 0, "failed": 0},
            }
            self.save(batch)
        self.wake.set()
        return 200, self.public(batch)

    def public(self, batch: dict[str, Any]) -> dict[str, Any]:
        if batch["kind"] == "openai":
            return {k: v for k, v in batch.items() if k not in ("lines", "kind", "seq", "results")}
        done = batch["status"] in TERMINAL
        results = batch.get("results", {})
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for line in self.lines(batch["id"]):
            kind = results.get(line["custom_id"])
            counts[kind if kind else ("canceled" if done else "processing")] += 1
        return {
            "id": batch["id"],
            "type": "message_batch",
            "processing_status": "ended"
            if done
            else ("canceling" if batch["status"] == "cancelling" else "in_progress"),
            "request_counts": counts,
            "created_at": _iso(batch["created_at"]),
            "expires_at": _iso(batch["created_at"] + 86400),
            "ended_at": _iso(batch.get("ended_at")),
            "cancel_initiated_at": None,
            "archived_at": None,
            "results_url": f"{self.base_url}/messages/batches/{batch['id']}/results" if done else None,
        }

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        with self.lock:
            batch = self.batch(batch_id)
            if batch is None:
                return None
            if batch["status"] not in TERMINAL:
                batch.update(status="cancelling", cancelling_at=_now())
                self.save(batch)
        self.wake.set()
        return self.public(batch)

    # processing
    def _fails(self, custom_id: str, payload: dict[str, Any]) -> bool:
        if self.fail_share <= 0:
            return False
        # Drawn from the request itself, not its custom_id: the custom_id is the cache key, which holds
        # the server's (random) port, so a draw from it would make a test's faults differ run to run.
        draw = int(hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        if draw >= self.fail_share:
            return False
        failed = set(self._read("failed_once.json", []))
        if custom_id in failed:
            return False
        failed.add(custom_id)
        self._write("failed_once.json", sorted(failed))
        return True

    def _chat(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls += 1
        if self.upstream == "fake":
            return 200, fake_completion(request, LABELS, self.calls)
        data = json.dumps(request).encode()
        http_request = urllib.request.Request(
            self.upstream.rstrip("/") + "/chat/completions", data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(http_request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read())
            except ValueError:
                return exc.code, {"error": {"message": str(exc)}}

    def _paths(self, batch: dict[str, Any]) -> tuple[Path, Path]:
        return self.root / "batches" / f"{batch['id']}.out", self.root / "batches" / f"{batch['id']}.err"

    def _promote(self) -> None:
        """Batches validate at once (even while another batch is held): validating -> in_progress."""
        with self.lock:
            for batch in self.all_batches():
                if batch["status"] == "validating":
                    batch.update(status="in_progress", in_progress_at=_now())
                    self.save(batch)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            busy = False
            for batch in self.all_batches():
                if batch["status"] in ("validating", "in_progress", "finalizing", "cancelling"):
                    busy = True
                    self._process(batch, stop)
            if not busy:
                self.wake.wait(0.2)
                self.wake.clear()

    def _process(self, batch: dict[str, Any], stop: threading.Event) -> None:
        if batch["status"] == "validating":
            batch.update(status="in_progress", in_progress_at=_now())
            self.save(batch)
            return  # a client polling now sees in_progress at least once
        out_path, err_path = self._paths(batch)
        done = {
            json.loads(r)["custom_id"] for p in (out_path, err_path) if p.exists() for r in p.read_text().splitlines()
        }
        expire = self.expire_after is not None and batch["seq"] == 0
        for line in self.lines(batch["id"]):
            if stop.is_set():
                return
            while (self.root / "HOLD").exists() and not stop.is_set():
                self._promote()
                time.sleep(0.05)
            current = self.batch(batch["id"])
            if current["status"] == "cancelling":
                self._finish(current, "cancelled", "batch_cancelled")
                return
            if line["custom_id"] in done:
                continue
            if expire and len(done) >= self.expire_after:
                self._finish(current, "expired", "batch_expired")
                return
            self._answer(batch, line, out_path, err_path)
            done.add(line["custom_id"])
            if self.line_delay_s:
                time.sleep(self.line_delay_s)
        self._finish(self.batch(batch["id"]), "completed", None)

    def _answer(self, batch: dict[str, Any], line: dict[str, Any], out_path: Path, err_path: Path) -> None:
        custom_id = line["custom_id"]
        request_id = f"req_{uuid.uuid4().hex[:16]}"
        if batch["kind"] == "openai":
            status, body = (
                (500, {"error": {"message": "The server had an error processing your request", "type": "server_error"}})
                if self._fails(custom_id, line["body"])
                else self._chat(line["body"])
            )
            record = {
                "id": f"batch_req_{uuid.uuid4().hex[:16]}",
                "custom_id": custom_id,
                "response": {"status_code": status, "request_id": request_id, "body": body},
                "error": None,
            }
            path = out_path if status == 200 else err_path
        else:
            if self._fails(custom_id, line["params"]):
                status, body = 500, {"error": {"message": "Internal server error"}}
            else:
                status, body = self._chat(_anthropic_to_chat(line["params"]))
            if status == 200:
                result = {"type": "succeeded", "message": _chat_to_message(body, line["params"]["model"])}
            else:
                kind = "api_error" if status >= 500 else "invalid_request_error"
                message = (body.get("error") or {}).get("message", "error") if isinstance(body, dict) else str(body)
                result = {"type": "errored", "error": {"type": "error", "error": {"type": kind, "message": message}}}
            record = {"custom_id": custom_id, "result": result}
            path = out_path if status == 200 else err_path
        with self.lock:
            with path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
            current = self.batch(batch["id"])
            current["request_counts"]["completed" if status == 200 else "failed"] += 1
            if batch["kind"] == "anthropic":
                current.setdefault("results", {})[custom_id] = "succeeded" if status == 200 else "errored"
            self.save(current)

    def _finish(self, batch: dict[str, Any], status: str, code: str | None) -> None:
        with self.lock:
            out_path, err_path = self._paths(batch)
            answered = {
                json.loads(r)["custom_id"]
                for p in (out_path, err_path)
                if p.exists()
                for r in p.read_text().splitlines()
            }
            left = [line for line in self.lines(batch["id"]) if line["custom_id"] not in answered]
            with err_path.open("a") as handle:
                for line in left:
                    if batch["kind"] == "openai":
                        message = "This request could not be executed before the completion window expired."
                        if code == "batch_cancelled":
                            message = "This request was cancelled."
                        record = {
                            "id": f"batch_req_{uuid.uuid4().hex[:16]}",
                            "custom_id": line["custom_id"],
                            "response": None,
                            "error": {"code": code, "message": message},
                        }
                    else:
                        record = {
                            "custom_id": line["custom_id"],
                            "result": {"type": code.split("_")[1].replace("cancelled", "canceled")},
                        }
                    handle.write(json.dumps(record) + "\n")
                    batch.setdefault("results", {})[line["custom_id"]] = record.get("result", {}).get("type")
                    batch["request_counts"]["failed"] += 1
            if batch["kind"] == "openai":
                batch.update(status="finalizing", finalizing_at=_now())
                served = self.faulty_results(
                    batch, *(p.read_bytes() if p.exists() else b"" for p in (out_path, err_path))
                )
                for path, data, field in zip(
                    (out_path, err_path), served, ("output_file_id", "error_file_id"), strict=True
                ):
                    if data:
                        batch[field] = self.add_file(data, path.name, "batch_output")["id"]
                stamp = {"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}[status]
                batch.update(status=status, **{stamp: _now()})
            else:
                batch.update(status=status, ended_at=time.time())
            self.save(batch)

    def anthropic_results(self, batch_id: str) -> bytes | None:
        batch = self.batch(batch_id)
        if batch is None or batch["status"] not in TERMINAL:
            return None
        out_path, err_path = self._paths(batch)
        return b"".join(
            self.faulty_results(batch, *(p.read_bytes() if p.exists() else b"" for p in (out_path, err_path)))
        )


def _anthropic_to_chat(params: dict[str, Any]) -> dict[str, Any]:
    messages = list(params["messages"])
    if params.get("system"):
        messages.insert(0, {"role": "system", "content": params["system"]})
    request = {"model": params["model"], "messages": messages, "max_tokens": params["max_tokens"]}
    for key in ("temperature", "top_p"):
        if key in params:
            request[key] = params[key]
    return request


def _chat_to_message(body: dict[str, Any], model: str) -> dict[str, Any]:
    usage = body.get("usage") or {}
    text = body["choices"][0]["message"].get("content") or ""
    return {
        "id": f"msg_{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0)},
    }


def _multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    boundary = content_type.split("boundary=")[1].strip().strip('"').encode()
    parts: dict[str, tuple[str | None, bytes]] = {}
    for chunk in body.split(b"--" + boundary):
        if b"\r\n\r\n" not in chunk:
            continue
        head, data = chunk.split(b"\r\n\r\n", 1)
        data = data[:-2] if data.endswith(b"\r\n") else data
        disposition = next((h for h in head.decode().split("\r\n") if h.lower().startswith("content-disposition")), "")
        fields = dict(p.strip().split("=", 1) for p in disposition.split(";")[1:] if "=" in p)
        name = fields.get("name", "").strip('"')
        filename = fields.get("filename", "").strip('"') or None
        parts[name] = (filename, data)
    return parts


def make_handler(state: BatchState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _create(self, create: Any) -> None:
            """A batch create, with the next of ``create_faults``: a dropped connection (before or after
            the batch is made) or an answer later than the client waits."""
            fault = state.next_create_fault()
            if fault == "drop_before":
                self.close_connection = True
                return
            if fault == "slow_before":
                time.sleep(state.create_delay_s)
            answer = create()
            if fault == "drop_after":
                self.close_connection = True
                return
            if fault == "slow_after":
                time.sleep(state.create_delay_s)
            self._send(*answer)

        def _not_found(self) -> None:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0].rstrip("/")
            parts = path.strip("/").split("/")
            if path == "/_batch/stats":
                return self._send(200, state.stats())
            if path == "/v1/models":
                return self._send(200, {"object": "list", "data": []})
            if path == "/v1/batches":
                data = [state.public(b) for b in reversed(state.all_batches()) if b["kind"] == "openai"]
                return self._send(200, {"object": "list", "data": data, "has_more": False})
            if len(parts) == 3 and parts[:2] == ["v1", "batches"]:
                batch = state.batch(parts[2])
                return self._send(200, state.public(batch)) if batch else self._not_found()
            if len(parts) in (3, 4) and parts[:2] == ["v1", "files"]:
                if len(parts) == 4 and parts[3] == "content":
                    data = state.file_data(parts[2])
                    return self._send(200, data, "application/octet-stream") if data is not None else self._not_found()
                meta = state.file_meta(parts[2])
                return self._send(200, meta) if meta else self._not_found()
            if path == "/v1/messages/batches":
                data = [state.public(b) for b in reversed(state.all_batches()) if b["kind"] == "anthropic"]
                first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
                return self._send(200, {"data": data, "has_more": False, "first_id": first, "last_id": last})
            if len(parts) >= 4 and parts[:3] == ["v1", "messages", "batches"]:
                if len(parts) == 5 and parts[4] == "results":
                    data = state.anthropic_results(parts[3])
                    return self._send(200, data, "application/binary") if data is not None else self._not_found()
                batch = state.batch(parts[3])
                return self._send(200, state.public(batch)) if batch else self._not_found()
            self._not_found()

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?")[0].rstrip("/")
            parts = path.strip("/").split("/")
            body = self._body()
            if path == "/v1/files":
                fields = _multipart(body, self.headers.get("Content-Type", ""))
                filename, data = fields.get("file", (None, b""))
                purpose = fields.get("purpose", (None, b""))[1].decode()
                if purpose != "batch" or not data:
                    return self._send(
                        400, {"error": {"message": "purpose must be batch", "type": "invalid_request_error"}}
                    )
                return self._send(200, state.add_file(data, filename or "input.jsonl", purpose))
            if path == "/v1/batches":
                return self._create(lambda: state.create_openai(json.loads(body)))
            if len(parts) == 4 and parts[:2] == ["v1", "batches"] and parts[3] == "cancel":
                found = state.cancel(parts[2])
                return self._send(200, found) if found else self._not_found()
            if path == "/v1/messages/batches":
                return self._create(lambda: state.create_anthropic(json.loads(body)))
            if len(parts) == 5 and parts[:3] == ["v1", "messages", "batches"] and parts[4] == "cancel":
                found = state.cancel(parts[3])
                return self._send(200, found) if found else self._not_found()
            self._not_found()

    return Handler


class BatchServer:
    """The server in this process (tests that do not restart it): ``base_url`` ends in /v1."""

    def __init__(self, state_dir: Path, upstream: str, port: int | None = None, **faults: Any) -> None:
        self.state = BatchState(Path(state_dir), upstream, **faults)
        self.httpd = ThreadingHTTPServer((HOST, port or 0), make_handler(self.state))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://{HOST}:{self.port}/v1"
        self.state.base_url = self.base_url
        self.stop_event = threading.Event()

    def __enter__(self) -> BatchServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.worker = threading.Thread(target=self.state.run, args=(self.stop_event,), daemon=True)
        self.worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.worker.join(10)


def start_batch_server_process(
    state_dir: Path, upstream: str, port: int | None = None, extra: list[str] | None = None
) -> tuple[subprocess.Popen, str]:
    """The server as a child process (tests that kill and restart it); returns (process, base URL)."""
    port = port or free_port()
    command = [sys.executable, __file__, "--state", str(state_dir), "--upstream", upstream, "--port", str(port)]
    process = subprocess.Popen([*command, *(extra or [])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://{HOST}:{port}/v1"
    try:
        wait_for_http(f"{base_url}/models", 30, process)
    except BaseException:
        stop_process(process)
        raise
    return process, base_url


def batch_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url.rsplit("/v1", 1)[0] + "/_batch/stats", timeout=10) as response:
        return json.loads(response.read())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--upstream", required=True, help="chat server base URL ending in /v1, or 'fake'")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-share", type=float, default=0.0)
    parser.add_argument("--expire-after", type=int, default=None)
    parser.add_argument("--queue-limit", type=int, default=None)
    parser.add_argument("--line-delay", type=float, default=0.0)
    parser.add_argument(
        "--create-fault",
        action="append",
        default=[],
        choices=["drop_before", "drop_after", "slow_after", "slow_before", "none"],
    )
    parser.add_argument("--create-delay", type=float, default=2.0)
    parser.add_argument("--truncate-line", type=int, default=None)
    parser.add_argument("--truncate-keep", type=int, default=None)
    parser.add_argument("--duplicate-error-line", type=int, default=None)
    args = parser.parse_args(argv)
    server = BatchServer(
        args.state,
        args.upstream,
        args.port or None,
        fail_share=args.fail_share,
        expire_after=args.expire_after,
        queue_limit=args.queue_limit,
        line_delay_s=args.line_delay,
        create_faults=tuple(args.create_fault),
        create_delay_s=args.create_delay,
        truncate_line=args.truncate_line,
        truncate_keep=args.truncate_keep,
        duplicate_error_line=args.duplicate_error_line,
    )
    with server:
        print(f"PORT {server.port}", flush=True)
        try:
            server.stop_event.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
