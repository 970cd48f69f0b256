"""Hugging Face Inference Providers and Inference Endpoints through ``huggingface_hub.InferenceClient``.

Without ``base_url`` the request goes through the Hugging Face router to ``provider`` (or the router's
own choice); with ``base_url`` it goes straight to that URL: a dedicated Inference Endpoint, or any
TGI or OpenAI-compatible server (``/v1/chat/completions`` is appended as needed).

One retry policy (tenacity): exponential backoff with jitter on 429, 408/409, 5xx, timeouts and
dropped connections, honouring ``Retry-After``. Every other failure (400, 401, 403, 404, 422, ...)
fails at once. A request that still fails raises :class:`TeacherRequestError`, which the annotation
engine records per item.

Settings (a teacher's config block); ``model`` or ``base_url`` is required:

``model``              hub id of the model (sent as the request's ``model``)
``base_url``           a dedicated endpoint or any TGI/OpenAI-compatible server; not with ``provider``
``provider``           an Inference Provider (``together``, ``novita``, ``hf-inference``, ``auto``, ...)
``token_env``          environment variable holding the token (default ``HF_TOKEN``); when it is unset,
                       the ``huggingface_hub`` login is used. ``null``: send no token (local servers;
                       needs ``base_url``)
``concurrency``        parallel requests the engine makes (default 8)
``timeout_s``          per-request timeout in seconds (default 60)
``max_retries``        retries after the first attempt (default 6)
``retry_initial_s``    first backoff in seconds, doubled per retry (default 1)
``retry_max_wait_s``   cap of one exponential backoff in seconds (default 60)
``max_retry_after_s``  cap of a server's ``Retry-After`` in seconds (default 300)
``send_seed``          send the request's seed (default true)
``structured_output``  how constrained decoding is requested: ``response_format`` (default: OpenAI's
                       ``{"type": "json_schema", ...}``, which ``huggingface_hub`` translates for each
                       provider and to TGI's grammar for a ``base_url``), ``json_object``
                       (``{"type": "json_object", "schema": ...}`` sent as is, for llama-cpp-python's
                       server), or ``none``
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
from typing import Any

import tenacity

from synthdistill.errors import SynthDistillError
from synthdistill.teachers.base import Completion, Request

log = logging.getLogger(__name__)

STRUCTURED_OUTPUT_MODES = ("response_format", "json_object", "none")
RETRYABLE_STATUS = frozenset({408, 409, 429})
# huggingface_hub falls back to the login token whenever none is given; a placeholder stops that.
NO_TOKEN = "not-needed"


class TeacherRequestError(RuntimeError):
    """A request that failed for good: non-retryable, or still failing after every retry."""

    def __init__(self, message: str, *, status_code: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.attempts = attempts


def _status_code(exc: BaseException | None) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after_s(exc: BaseException | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), if the error has them."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _is_retryable(exc: BaseException) -> bool:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

    if isinstance(exc, InferenceTimeoutError | httpx2.TransportError):  # timeouts, refused or dropped connections
        return True
    if isinstance(exc, HfHubHTTPError):
        status = _status_code(exc)
        return status is not None and (status in RETRYABLE_STATUS or status >= 500)
    return False


class _BackoffOrRetryAfter(tenacity.wait.wait_base):
    """The server's ``Retry-After`` (capped, plus up to 10% jitter so throttled workers do not return
    together); otherwise equal-jitter exponential backoff: half of ``initial * 2**n`` (capped at
    ``maximum``) plus a random share of the other half."""

    def __init__(self, initial: float, maximum: float, max_retry_after: float) -> None:
        self.initial, self.maximum, self.max_retry_after = initial, maximum, max_retry_after

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = _retry_after_s(exc)
        if retry_after is not None:
            return min(retry_after, self.max_retry_after) * (1 + 0.1 * random.random())
        ceiling = min(self.maximum, self.initial * 2 ** (retry_state.attempt_number - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class HFInferenceTeacher:
    """Chat completions through ``huggingface_hub``. The token comes from the environment variable
    named by ``token_env`` or the ``huggingface_hub`` login, never from config. It is looked up, and
    the client built, on the first :meth:`complete`: rendering prompts needs no token."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.model = settings.get("model") or None
        self.base_url = settings.get("base_url") or None
        self.provider = settings.get("provider") or None
        if not self.model and not self.base_url:
            raise SynthDistillError("teacher backend hf_inference: config key model (or base_url) is missing")
        if self.base_url and self.provider:
            raise SynthDistillError(
                "teacher backend hf_inference: provider and base_url exclude each other; a base_url is called directly"
            )
        self.token_env = settings["token_env"] if "token_env" in settings else "HF_TOKEN"
        if self.token_env is None and not self.base_url:
            raise SynthDistillError("teacher backend hf_inference: token_env: null (no token) needs a base_url")
        self.max_concurrency = int(settings.get("concurrency", 8))
        self.timeout_s = float(settings.get("timeout_s", 60.0))
        self.max_retries = int(settings.get("max_retries", 6))
        self.retry_initial_s = float(settings.get("retry_initial_s", 1.0))
        self.retry_max_wait_s = float(settings.get("retry_max_wait_s", 60.0))
        self.max_retry_after_s = float(settings.get("max_retry_after_s", 300.0))
        self.send_seed = settings.get("send_seed", True) is not False
        self.structured_output = settings.get("structured_output") or "response_format"
        if self.structured_output not in STRUCTURED_OUTPUT_MODES:
            raise SynthDistillError(
                f"teacher backend hf_inference: structured_output {self.structured_output!r} is not one of "
                f"{', '.join(STRUCTURED_OUTPUT_MODES)}"
            )
        if self.max_retries < 0 or self.timeout_s <= 0 or self.max_concurrency < 1:
            raise SynthDistillError(
                "teacher backend hf_inference: max_retries must be >= 0, timeout_s > 0 and concurrency >= 1"
            )
        self.identity: dict[str, Any] = {
            "backend": "hf_inference",
            "model": self.model,
            "base_url": self.base_url,
            "provider": self.provider,
        }
        if self.structured_output != "response_format":
            self.identity["structured_output"] = self.structured_output
        self._client: Any = None
        self._secret: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"HFInferenceTeacher(model={self.model!r}, base_url={self.base_url!r}, provider={self.provider!r}, "
            f"token_env={self.token_env!r})"
        )

    def render(self, messages: list[dict[str, str]]) -> str:
        # The server applies the chat template; what we send is the message list itself.
        return json.dumps(messages, ensure_ascii=False)

    def _token(self) -> str | None:
        if self.token_env is None:
            return NO_TOKEN
        token = os.environ.get(self.token_env)
        if not token:
            from huggingface_hub import get_token

            token = get_token()
        if not token and not self.base_url:
            raise SynthDistillError(
                f"teacher backend hf_inference: no Hugging Face token; set the environment variable "
                f"{self.token_env} (named by config key token_env) or log in with `hf auth login`"
            )
        return token or None

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from huggingface_hub import InferenceClient

                token = self._token()
                self._secret = token if token and token != NO_TOKEN else None
                self._client = InferenceClient(
                    base_url=self.base_url, provider=self.provider, token=token, timeout=self.timeout_s
                )
            return self._client

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def request_kwargs(self, request: Request) -> dict[str, Any]:
        """The ``chat_completion`` arguments for one request."""
        kwargs: dict[str, Any] = {
            "messages": request.messages,
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        schema: dict[str, Any] | None = None
        if request.json_schema:
            schema = request.json_schema
        elif request.choices:
            # An enum inside a JSON schema is the portable way to force one of a closed set.
            schema = {"type": "string", "enum": list(request.choices)}
        if schema is not None and self.structured_output == "response_format":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": True},
            }
        elif schema is not None and self.structured_output == "json_object":
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        if self.send_seed and request.seed is not None:
            kwargs["seed"] = request.seed
        return kwargs

    def complete(self, request: Request) -> Completion:
        if request.score_labels:
            raise SynthDistillError(
                "teacher backend hf_inference: label_scores prompts need every label's log-probability, which "
                "chat completions do not return reliably; use a label or cot_json prompt with this backend"
            )
        client = self._get_client()
        kwargs = self.request_kwargs(request)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_retryable),
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=_BackoffOrRetryAfter(self.retry_initial_s, self.retry_max_wait_s, self.max_retry_after_s),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            response = retrying(client.chat_completion, **kwargs)
        except Exception as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise self._failure(exc, attempts) from None
        if not getattr(response, "choices", None):
            raise TeacherRequestError(self._redact(f"{self._where()}: no choices in the response: {response!r:.200}"))
        message = response.choices[0].message
        text = (message.content if message is not None else None) or ""
        if request.choices and not request.json_schema and self.structured_output != "none":
            text = _unquote(text)
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            input_tokens=getattr(usage, "prompt_tokens", None) if usage else None,
            output_tokens=getattr(usage, "completion_tokens", None) if usage else None,
        )

    def _where(self) -> str:
        if self.base_url:
            return f"{self.model or 'model'} at {self.base_url}"
        return f"{self.model} via provider {self.provider or 'auto'}"

    def _describe(self, exc: BaseException) -> tuple[str, int | None]:
        import httpx2
        from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError

        if isinstance(exc, InferenceTimeoutError | httpx2.TimeoutException):
            return f"no response within timeout_s={self.timeout_s:g} s", None
        if isinstance(exc, httpx2.TransportError):
            return f"connection failed ({type(exc).__name__}: {exc})", None
        if isinstance(exc, HfHubHTTPError):
            status = _status_code(exc)
            return f"HTTP {status} ({type(exc).__name__}): {str(exc)[:300]}", status
        if isinstance(exc, SynthDistillError):
            return str(exc), None
        return f"{type(exc).__name__}: {exc}", None

    def _failure(self, exc: BaseException, attempts: int) -> Exception:
        if isinstance(exc, SynthDistillError):
            return exc
        description, status = self._describe(exc)
        tries = f"after {attempts} attempts" if attempts > 1 else "not retried" if not _is_retryable(exc) else ""
        message = self._redact(f"{self._where()}: {description}" + (f" ({tries})" if tries else ""))
        return TeacherRequestError(message, status_code=status, attempts=attempts)

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        description, _ = self._describe(exc) if exc else ("", None)
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.info(
            "teacher %s: attempt %d/%d failed (%s); retrying in %.2f s",
            self.model or self.base_url,
            retry_state.attempt_number,
            self.max_retries + 1,
            self._redact(description[:200]),
            wait,
        )


def _unquote(text: str) -> str:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, str) else text
