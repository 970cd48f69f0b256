"""The HTTP API (FastAPI on uvicorn).

``POST /v1/classify`` takes ``{"texts": ["...", ...]}`` (or ``{"text": "..."}``) and returns
``{"results": [{"label", "probabilities", "model", "confidence"[, "student_label"]}, ...]}`` in
input order; ``model`` is ``student``, ``teacher`` or ``student-fallback`` (the teacher was asked
but could not answer). A multi_label student answers ``{"labels": [...], "probabilities", "model"}``
per text: its set (the labels at or above their thresholds) and each label's own probability.
``GET /health`` describes the service; ``GET /metrics`` is Prometheus text.

The request body is checked by hand rather than by a pydantic model: at hundreds of one-text
requests a second on two cores, validation is a visible share of the CPU, and the hand-written
messages name the offending field and index.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.background import BackgroundTask

from synthdistill.serving.service import ClassifierService, release_memory

# A refused body is read and dropped up to this many times serve.max_body_bytes, then the connection closes.
DRAIN_LIMIT_FACTOR = 16
# After answering a body at least this large, freed memory goes back to the system (release_memory).
RELEASE_AFTER_BYTES = 1 << 20


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def lone_surrogate_at(text: str) -> int | None:
    """Where a text holds half a UTF-16 surrogate pair, which JSON's \\ud800 escapes allow and no
    tokenizer (nor UTF-8) can take, else None."""
    if text.isascii():  # the common case, without encoding the text
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def parse_texts(body: bytes, max_texts: int, max_chars: int) -> list[str]:
    """The texts of a classify request, or a BadRequest saying what is wrong with it."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"the body is not valid JSON ({exc})") from None
    except RecursionError:  # the C decoder recurses once per level: [[[[... 100,000 deep is no request
        raise BadRequest(400, "the body is nested too deeply to be a classify request") from None
    if not isinstance(payload, dict):
        raise BadRequest(422, 'the body must be a JSON object: {"texts": ["..."]} or {"text": "..."}')
    unknown = sorted(set(payload) - {"texts", "text"})
    if unknown:
        raise BadRequest(422, f'unknown field {unknown[0]!r}; send {{"texts": [...]}} or {{"text": "..."}}')
    if ("texts" in payload) == ("text" in payload):
        raise BadRequest(422, 'send exactly one of "texts" (a list of strings) and "text" (a string)')
    if "text" in payload:
        texts, where = [payload["text"]], lambda i: "text"
    else:
        texts, where = payload["texts"], lambda i: f"texts[{i}]"
        if not isinstance(texts, list):
            raise BadRequest(422, f'"texts" must be a list of strings, not {type(texts).__name__}')
        if not texts:
            raise BadRequest(422, '"texts" is empty; send at least one text')
        if len(texts) > max_texts:
            raise BadRequest(
                413, f'"texts" has {len(texts)} texts; at most {max_texts} per request (serve.max_texts_per_request)'
            )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadRequest(422, f"{where(i)} must be a string, not {type(text).__name__}")
        if not text.strip():
            raise BadRequest(422, f"{where(i)} is empty")
        surrogate = lone_surrogate_at(text)
        if surrogate is not None:
            raise BadRequest(
                400,
                f"{where(i)} is not valid Unicode: a lone surrogate ({text[surrogate]!r}) at character {surrogate}; "
                "send whole characters (a text cut in the middle of an emoji's surrogate pair leaves half of it)",
            )
        if len(text) > max_chars:
            raise BadRequest(413, f"{where(i)} has {len(text)} characters; at most {max_chars} (serve.max_text_chars)")
    return texts


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or a 413 as soon as it is known to exceed ``limit`` bytes: from its
    Content-Length, else while it streams in (chunked), so an oversized body is never held whole."""
    declared = request.headers.get("content-length", "")
    # One stream for reading and draining: Starlette refuses a second request.stream() once the last
    # message came in, which is what happens when a whole chunked body arrived before the app read it.
    stream = request.stream()
    chunks, size = [], 0
    if not (declared.isdigit() and int(declared) > limit):
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
    chunks.clear()
    await discard_body(stream, DRAIN_LIMIT_FACTOR * limit - size)
    raise BadRequest(413, f"the body is larger than {limit} bytes (serve.max_body_bytes)")


async def discard_body(stream: AsyncIterator[bytes], budget: int) -> None:
    """Read and drop what is left of a refused body, up to ``budget`` bytes, as nginx's lingering
    close does: a client still sending when the connection closes sees a reset, not the 413."""
    async for chunk in stream:
        budget -= len(chunk)
        if budget < 0:
            return


def classify_openapi(max_texts: int, max_chars: int) -> dict[str, Any]:
    """The OpenAPI of ``POST /v1/classify``, written out because the body is checked by hand (a
    client generator, Schemathesis or the service's own property test reads it from /openapi.json)."""
    text = {"type": "string", "minLength": 1, "maxLength": max_chars}
    request = {
        "oneOf": [
            {
                "type": "object",
                "properties": {"texts": {"type": "array", "items": text, "minItems": 1, "maxItems": max_texts}},
                "required": ["texts"],
                "additionalProperties": False,
            },
            {"type": "object", "properties": {"text": text}, "required": ["text"], "additionalProperties": False},
        ]
    }
    result = {
        "type": "object",
        "properties": {
            "label": {"type": "string"},
            "labels": {"type": "array", "items": {"type": "string"}},
            "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
            "model": {"enum": ["student", "teacher", "student-fallback"]},
            "confidence": {"type": "number"},
            "student_label": {"type": "string"},
        },
        "required": ["probabilities", "model"],
    }
    ok = {"type": "object", "properties": {"results": {"type": "array", "items": result}}, "required": ["results"]}
    error = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    errors = {
        "400": "the body is not JSON, is nested too deeply, or a text is not valid Unicode",
        "401": "the bearer token is missing or wrong",
        "413": "too many texts, a text too long, or a body over serve.max_body_bytes",
        "422": "a field is missing, empty, of the wrong type, or unknown",
        "500": "the student failed on this request",
    }
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": {
            "200": {"description": "one result per text, in input order", "content": _json(ok)},
            **{code: {"description": why, "content": _json(error)} for code, why in errors.items()},
        },
    }


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def create_app(service: ClassifierService, token: str | None = None) -> FastAPI:
    """The app; with ``token``, ``/v1/classify`` and ``/metrics`` need it as a bearer token and
    ``/health`` without it tells only the status (``/openapi.json`` and ``/docs`` hold no data)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield
        await service.stop()

    app = FastAPI(title="synthdistill-serve", lifespan=lifespan)
    metrics = service.metrics
    settings = service.settings

    expected = token.encode() if token is not None else None

    def authorized(request: Request) -> bool:
        if expected is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # compare_digest takes as long for a near miss as for a wild guess: no timing to learn the token from.
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)

    def refused() -> JSONResponse:
        return JSONResponse(
            {"error": "missing or wrong bearer token (send 'Authorization: Bearer <token>')"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    def answer(status: int, content: Any, start: float, large: bool = False) -> JSONResponse:
        metrics.requests.labels(status=str(status)).inc()
        metrics.request_latency.observe(time.perf_counter() - start)
        # After a large request, once its texts are freed (the response is sent), hand the memory back.
        background = BackgroundTask(release_memory) if large else None
        return JSONResponse(content, status_code=status, background=background)

    @app.post(
        "/v1/classify",
        openapi_extra=classify_openapi(settings.max_texts_per_request, settings.max_text_chars),
    )
    async def classify(request: Request) -> JSONResponse:
        start = time.perf_counter()
        if not authorized(request):
            metrics.requests.labels(status="401").inc()
            return refused()
        try:
            body = await read_body(request, settings.max_body_bytes)
            texts = parse_texts(body, settings.max_texts_per_request, settings.max_text_chars)
        except BadRequest as exc:
            return answer(exc.status, {"error": exc.message}, start)
        large = len(body) >= RELEASE_AFTER_BYTES
        del body
        try:
            results = await service.classify(texts)
        except Exception as exc:  # the student itself failed: a real server error, said as such
            return answer(500, {"error": f"the student failed: {type(exc).__name__}: {exc}"}, start, large)
        return answer(200, {"results": results}, start, large)

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        if not authorized(request):  # a load balancer's liveness check, told nothing of the setup
            return JSONResponse({"status": "ok"})
        return JSONResponse(service.describe())

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        if not authorized(request):
            return refused()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
