"""Any OpenAI-compatible chat-completions server: OpenAI, vLLM, TGI, Ollama, llama.cpp server, HF router.

One retry policy (:mod:`synthdistill.annotation.teachers.http_retry`; the openai client's own retries are switched
off): exponential backoff with jitter on 429, 408/409, 5xx, timeouts, dropped connections and 200s whose
body is not valid JSON (cut short on its way), honouring ``Retry-After``. Every other failure (400, 401,
404, 422, a JSON body without choices) fails at once.
A request that still fails raises :class:`TeacherRequestError`, which the annotation engine records per
item.

``label_scores`` prompts are answered from the first generated token's ``top_logprobs`` (see
:func:`synthdistill.annotation.teachers.chat_api.label_logprobs`), so the server must return them (OpenAI, vLLM
and llama-cpp-python's server do).

Settings (a teacher's config block), all optional except ``model``:

``base_url``           the server's ``/v1`` URL (the openai client's default when absent)
``api_key_env``        name of the environment variable holding the key; null for local servers
``concurrency``        parallel requests the engine makes (default 8)
``timeout_s``          per-request timeout in seconds (default 60)
``max_retries``        retries after the first attempt (default 6)
``retry_initial_s``    first backoff in seconds, doubled per retry (default 1)
``retry_max_wait_s``   cap of one exponential backoff in seconds (default 60)
``max_retry_after_s``  cap of a server's ``Retry-After`` in seconds (default 300)
``send_seed``          send the request's seed (default true)
``structured_output``  how constrained decoding is requested: ``response_format`` (default; OpenAI,
                       vLLM, SGLang: ``{"type": "json_schema", ...}``), ``json_object`` (llama-cpp-python's
                       server and others that take ``{"type": "json_object", "schema": ...}``), or ``none``
``top_logprobs``       alternatives per token a ``label_scores`` request asks for (default 20, OpenAI's
                       maximum; vLLM's default ``--max-logprobs`` is 20 too)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from synthdistill import SynthDistillError
from synthdistill.annotation.teachers.chat_api import ChatApiSettings, ChatApiTeacher, IncompleteBody, InvalidResponse
from synthdistill.annotation.teachers.http_retry import is_retryable

DUMMY_KEY = "not-needed"


def _status_code(exc: BaseException) -> int | None:
    import openai

    return exc.status_code if isinstance(exc, openai.APIStatusError) else None


class OpenAICompatTeacher(ChatApiTeacher):
    """Chat completions over HTTP. The API key is read from the environment variable named in
    config (``api_key_env``), never from config itself, so it cannot leak into params or logs."""

    def __init__(self, settings: dict[str, Any]) -> None:
        if not settings.get("model"):
            raise SynthDistillError("teacher backend openai: config key model is missing")
        self.model = str(settings["model"])
        self.base_url = settings.get("base_url")
        self.key_env = settings.get("api_key_env")
        self.api = ChatApiSettings.parse(settings, "openai")
        self.identity: dict[str, Any] = {
            "backend": "openai",
            "base_url": self.base_url,
            "model": self.model,
            **self.api.identity_extras(),
        }
        super().__init__()

    def __repr__(self) -> str:
        return f"OpenAICompatTeacher(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.key_env!r})"

    def _new_client(self) -> tuple[Any, str | None]:
        import openai

        if self.key_env:
            api_key = os.environ.get(self.key_env)
            if not api_key:
                raise SynthDistillError(
                    f"teacher backend openai: environment variable {self.key_env} (named by config key "
                    f"api_key_env) is not set or empty; export it before running"
                )
        else:
            api_key = DUMMY_KEY
        client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key,
            timeout=self.api.timeout_s,
            max_retries=0,  # one retry policy: ours
        )
        return client, api_key if api_key != DUMMY_KEY else None

    def _where(self) -> str:
        return f"{self.model} at {self.base_url or 'the default OpenAI URL'}"

    def _call(self, client: Any, kwargs: dict[str, Any]) -> Any:
        try:
            response = client.chat.completions.create(**kwargs)
        except json.JSONDecodeError as exc:  # a 200 whose body is not JSON (the openai client reads it as such)
            raise IncompleteBody(f"{type(exc).__name__}: {exc}") from exc
        except ValueError as exc:
            raise InvalidResponse(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(response, str) and response.lstrip().startswith(("{", "[")):
            # A JSON cut short under another content type: the client hands it over as text.
            raise IncompleteBody(f"the body is not valid JSON: {response[:200]}")
        if isinstance(response, str) or not getattr(response, "choices", None):
            # A non-JSON content type comes back as text; a JSON without choices is no completion either.
            body = response if isinstance(response, str) else repr(response)
            raise InvalidResponse(f"no choices in the response: {body[:200]}")
        return response

    def _is_retryable(self, exc: BaseException) -> bool:
        import openai

        # APIConnectionError includes APITimeoutError and dropped connections; a body cut short is one too.
        no_response = isinstance(exc, openai.APIConnectionError | IncompleteBody)
        return is_retryable(_status_code(exc), no_response)

    def _headers(self, exc: BaseException) -> Mapping[str, str] | None:
        import openai

        return exc.response.headers if isinstance(exc, openai.APIStatusError) else None

    def _describe(self, exc: BaseException) -> tuple[str, int | None]:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return f"no response within timeout_s={self.api.timeout_s:g} s", None
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            detail = f" ({type(cause).__name__}: {cause})" if cause else ""
            return f"connection failed{detail}", None
        if isinstance(exc, openai.APIStatusError):
            body = exc.response.text if exc.response is not None else ""
            return f"HTTP {exc.status_code} ({type(exc).__name__}): {body[:300]}", exc.status_code
        if isinstance(exc, InvalidResponse):
            return f"invalid response body: {exc}", None
        return f"{type(exc).__name__}: {exc}", None
