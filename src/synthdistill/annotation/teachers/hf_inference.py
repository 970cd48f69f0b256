"""Hugging Face Inference Providers and Inference Endpoints through ``huggingface_hub.InferenceClient``.

Without ``base_url`` the request goes through the Hugging Face router to ``provider`` (or the router's
own choice); with ``base_url`` it goes straight to that URL: a dedicated Inference Endpoint, or any
TGI or OpenAI-compatible server (``/v1/chat/completions`` is appended as needed).

One retry policy (:mod:`synthdistill.annotation.teachers.http_retry`, shared with the ``openai`` backend):
exponential backoff with jitter on 429, 408/409, 5xx, timeouts and dropped connections, honouring
``Retry-After``. Every other failure (400, 401, 403, 404, 422, ...) fails at once. A request that still
fails raises :class:`TeacherRequestError`, which the annotation engine records per item.

``label_scores`` prompts are answered from the first generated token's ``top_logprobs``, mapped to the
labels as the ``openai`` backend does (:func:`synthdistill.annotation.teachers.chat_api.label_logprobs`); the
server or provider must return them.

Settings (a teacher's config block); ``model`` or ``base_url`` is required:

``model``              hub id of the model (sent as the request's ``model``)
``base_url``           a dedicated endpoint or any TGI/OpenAI-compatible server; not with ``provider``
``provider``           an Inference Provider (``together``, ``novita``, ``hf-inference``, ``auto``, ...)
``token_env``          environment variable holding the token (default ``HF_TOKEN``); when it is unset,
                       the ``huggingface_hub`` login is used. ``null``: send no token (local servers;
                       needs ``base_url``)
``concurrency``, ``timeout_s``, ``max_retries``, ``retry_initial_s``, ``retry_max_wait_s``,
``max_retry_after_s``, ``send_seed``: as for the ``openai`` backend
(:mod:`synthdistill.annotation.teachers.openai_compat`)
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
import os
from collections.abc import Mapping
from typing import Any

from synthdistill import SynthDistillError
from synthdistill.annotation.teachers.chat_api import ChatApiSettings, ChatApiTeacher, IncompleteBody, InvalidResponse
from synthdistill.annotation.teachers.http_retry import is_retryable

# huggingface_hub falls back to the login token whenever none is given; a placeholder stops that.
NO_TOKEN = "not-needed"


def _status_code(exc: BaseException) -> int | None:
    from huggingface_hub.errors import HfHubHTTPError

    status = getattr(exc.response, "status_code", None) if isinstance(exc, HfHubHTTPError) else None
    return status if isinstance(status, int) else None


class HFInferenceTeacher(ChatApiTeacher):
    """Chat completions through ``huggingface_hub``. The token comes from the environment variable
    named by ``token_env`` or the ``huggingface_hub`` login, never from config."""

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
        self.identity: dict[str, Any] = {
            "backend": "hf_inference",
            "model": self.model,
            "base_url": self.base_url,
            "provider": self.provider,
            **self.api.identity_extras(),
        }
        super().__init__()

    def __repr__(self) -> str:
        return (
            f"HFInferenceTeacher(model={self.model!r}, base_url={self.base_url!r}, provider={self.provider!r}, "
            f"token_env={self.token_env!r})"
        )

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

    def _new_client(self) -> tuple[Any, str | None]:
        from huggingface_hub import InferenceClient

        token = self._token()
        client = InferenceClient(
            base_url=self.base_url, provider=self.provider, token=token, timeout=self.api.timeout_s
        )
        return client, token if token and token != NO_TOKEN else None

    def _call(self, client: Any, kwargs: dict[str, Any]) -> Any:
        try:
            response = client.chat_completion(**kwargs)
        except json.JSONDecodeError as exc:  # a 200 whose body is not JSON: cut short on its way
            raise IncompleteBody(f"{type(exc).__name__}: {exc}") from exc
        if not getattr(response, "choices", None):
            raise InvalidResponse(f"no choices in the response: {response!r:.200}")
        return response

    def _where(self) -> str:
        if self.base_url:
            return f"{self.model or 'model'} at {self.base_url}"
        return f"{self.model} via provider {self.provider or 'auto'}"

    def _is_retryable(self, exc: BaseException) -> bool:
        import httpx2
        from huggingface_hub.errors import InferenceTimeoutError

        # huggingface_hub raises its own timeout error but lets httpx2's refused or dropped connections through.
        no_response = isinstance(exc, InferenceTimeoutError | httpx2.TransportError | IncompleteBody)
        return is_retryable(_status_code(exc), no_response)

    def _headers(self, exc: BaseException) -> Mapping[str, str] | None:
        from huggingface_hub.errors import HfHubHTTPError

        return getattr(exc.response, "headers", None) if isinstance(exc, HfHubHTTPError) else None

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
        if isinstance(exc, InvalidResponse):
            return f"invalid response body: {exc}", None
        return f"{type(exc).__name__}: {exc}", None
