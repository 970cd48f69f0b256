"""Hugging Face Inference Providers and Inference Endpoints through ``huggingface_hub.InferenceClient``.

Without ``base_url`` the request goes through the Hugging Face router to ``provider`` (or the router's
own choice); with ``base_url`` it goes straight to that URL: a dedicated Inference Endpoint, or any
TGI or OpenAI-compatible server (``/v1/chat/completions`` is appended as needed).

One retry policy (:mod:`synthdistill.teachers.http_retry`, shared with the ``openai`` backend):
exponential backoff with jitter on 429, 408/409, 5xx, timeouts and dropped connections, honouring
``Retry-After``. Every other failure (400, 401, 403, 404, 422, ...) fails at once. A request that still
fails raises :class:`TeacherRequestError`, which the annotation engine records per item.

``label_scores`` prompts are answered from the first generated token's ``top_logprobs``, mapped to the
labels as the ``openai`` backend does (:func:`synthdistill.teachers.openai_compat.label_logprobs`); the
server or provider must return them.

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
``top_logprobs``       alternatives per token a ``label_scores`` request asks for (default 20; TGI allows
                       ``--max-top-n-tokens``, 5 unless raised)
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import tenacity

from synthdistill.errors import SynthDistillError
from synthdistill.teachers.base import Completion, Request
from synthdistill.teachers.chat_api import ChatApiSettings
from synthdistill.teachers.http_retry import TeacherRequestError, is_retryable, redact, retrying, unquote
from synthdistill.teachers.openai_compat import label_scores_completion

log = logging.getLogger(__name__)

# huggingface_hub falls back to the login token whenever none is given; a placeholder stops that.
NO_TOKEN = "not-needed"


def _status_code(exc: BaseException) -> int | None:
    from huggingface_hub.errors import HfHubHTTPError

    status = getattr(exc.response, "status_code", None) if isinstance(exc, HfHubHTTPError) else None
    return status if isinstance(status, int) else None


def _headers(exc: BaseException) -> Mapping[str, str] | None:
    from huggingface_hub.errors import HfHubHTTPError

    return getattr(exc.response, "headers", None) if isinstance(exc, HfHubHTTPError) else None


def _is_retryable(exc: BaseException) -> bool:
    import httpx2
    from huggingface_hub.errors import InferenceTimeoutError

    # huggingface_hub raises its own timeout error but lets httpx2's refused or dropped connections through.
    no_response = isinstance(exc, InferenceTimeoutError | httpx2.TransportError)
    return is_retryable(_status_code(exc), no_response)


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
        self.api = ChatApiSettings.parse(settings, "hf_inference")
        self.max_concurrency = self.api.concurrency
        self.identity: dict[str, Any] = {
            "backend": "hf_inference",
            "model": self.model,
            "base_url": self.base_url,
            "provider": self.provider,
            **self.api.identity_extras(),
        }
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
                    base_url=self.base_url, provider=self.provider, token=token, timeout=self.api.timeout_s
                )
            return self._client

    def _redact(self, text: str) -> str:
        return redact(text, self._secret)

    def request_kwargs(self, request: Request) -> dict[str, Any]:
        """The ``chat_completion`` arguments for one request."""
        return self.api.chat_kwargs(request, self.model)

    def complete(self, request: Request) -> Completion:
        client = self._get_client()
        kwargs = self.request_kwargs(request)
        policy = retrying(
            retryable=_is_retryable,
            headers_of=_headers,
            max_retries=self.api.max_retries,
            initial_s=self.api.retry_initial_s,
            max_wait_s=self.api.retry_max_wait_s,
            max_retry_after_s=self.api.max_retry_after_s,
            before_sleep=self._log_retry,
        )
        try:
            response = policy(client.chat_completion, **kwargs)
        except Exception as exc:
            attempts = policy.statistics.get("attempt_number", 1)
            raise self._failure(exc, attempts) from None
        if not getattr(response, "choices", None):
            raise TeacherRequestError(self._redact(f"{self._where()}: no choices in the response: {response!r:.200}"))
        if request.score_labels:
            return label_scores_completion(response, request.score_labels, self._where())
        message = response.choices[0].message
        text = (message.content if message is not None else None) or ""
        if request.choices and not request.json_schema and self.api.structured_output != "none":
            text = unquote(text)
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
            return f"no response within timeout_s={self.api.timeout_s:g} s", None
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
            self.api.max_retries + 1,
            self._redact(description[:200]),
            wait,
        )
