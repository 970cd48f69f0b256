"""Any OpenAI-compatible chat-completions server: OpenAI, vLLM, TGI, Ollama, llama.cpp server, HF router.

One retry policy (:mod:`synthdistill.teachers.http_retry`; the openai client's own retries are switched
off): exponential backoff with jitter on 429, 408/409, 5xx, timeouts and dropped connections, honouring
``Retry-After``. Every other failure (400, 401, 404, 422, a body that is not valid JSON) fails at once.
A request that still fails raises :class:`TeacherRequestError`, which the annotation engine records per
item.

``label_scores`` prompts are answered from the first generated token's ``top_logprobs`` (see
:func:`label_logprobs`), so the server must return them (OpenAI, vLLM and llama-cpp-python's server do).

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
import logging
import math
import os
import threading
from collections.abc import Mapping
from typing import Any

import tenacity

from synthdistill.errors import SynthDistillError
from synthdistill.teachers.base import Completion, Request
from synthdistill.teachers.chat_api import ChatApiSettings
from synthdistill.teachers.http_retry import TeacherRequestError, is_retryable, redact, retrying, unquote

log = logging.getLogger(__name__)

DUMMY_KEY = "not-needed"


class _InvalidResponse(Exception):
    """A 200 whose body is not a chat completion (malformed JSON, no choices); not retried."""


def _status_code(exc: BaseException) -> int | None:
    import openai

    return exc.status_code if isinstance(exc, openai.APIStatusError) else None


def _headers(exc: BaseException) -> Mapping[str, str] | None:
    import openai

    return exc.response.headers if isinstance(exc, openai.APIStatusError) else None


def _is_retryable(exc: BaseException) -> bool:
    import openai

    # APIConnectionError includes APITimeoutError and dropped connections.
    return is_retryable(_status_code(exc), isinstance(exc, openai.APIConnectionError))


class OpenAICompatTeacher:
    """Chat completions over HTTP. The API key is read from the environment variable named in
    config (``api_key_env``), never from config itself, so it cannot leak into params or logs.
    The key is looked up, and the client built, on the first :meth:`complete`: rendering prompts
    needs no key."""

    def __init__(self, settings: dict[str, Any]) -> None:
        if not settings.get("model"):
            raise SynthDistillError("teacher backend openai: config key model is missing")
        self.model = str(settings["model"])
        self.base_url = settings.get("base_url")
        self.key_env = settings.get("api_key_env")
        self.api = ChatApiSettings.parse(settings, "openai")
        self.max_concurrency = self.api.concurrency
        self.identity: dict[str, Any] = {
            "backend": "openai",
            "base_url": self.base_url,
            "model": self.model,
            **self.api.identity_extras(),
        }
        self._client: Any = None
        self._secret: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAICompatTeacher(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.key_env!r})"

    def render(self, messages: list[dict[str, str]]) -> str:
        # The server applies the chat template; what we send is the message list itself.
        return json.dumps(messages, ensure_ascii=False)

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
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
                self._secret = api_key if api_key != DUMMY_KEY else None
                self._client = openai.OpenAI(
                    base_url=self.base_url,
                    api_key=api_key,
                    timeout=self.api.timeout_s,
                    max_retries=0,  # one retry policy: ours
                )
            return self._client

    def _redact(self, text: str) -> str:
        return redact(text, self._secret)

    def _where(self) -> str:
        return f"{self.model} at {self.base_url or 'the default OpenAI URL'}"

    def request_kwargs(self, request: Request) -> dict[str, Any]:
        """The chat-completions arguments for one request (model and messages included)."""
        return self.api.chat_kwargs(request, self.model)

    def _create_once(self, client: Any, kwargs: dict[str, Any]) -> Any:
        try:
            response = client.chat.completions.create(**kwargs)
        except ValueError as exc:  # json.JSONDecodeError: a 200 whose body is not JSON
            raise _InvalidResponse(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(response, str) or not getattr(response, "choices", None):
            # A non-JSON content type comes back as text; a JSON without choices is no completion either.
            body = response if isinstance(response, str) else repr(response)
            raise _InvalidResponse(f"no choices in the response: {body[:200]}")
        return response

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
            response = policy(self._create_once, client, kwargs)
        except Exception as exc:
            attempts = policy.statistics.get("attempt_number", 1)
            raise self._failure(exc, attempts) from None
        if request.score_labels:
            return label_scores_completion(response, request.score_labels, self._where())
        message = response.choices[0].message
        text = (message.content if message is not None else None) or ""
        if request.choices and not request.json_schema:
            text = unquote(text)
        usage = response.usage
        return Completion(
            text=text,
            input_tokens=getattr(usage, "prompt_tokens", None) if usage else None,
            output_tokens=getattr(usage, "completion_tokens", None) if usage else None,
        )

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
        if isinstance(exc, _InvalidResponse):
            return f"invalid response body: {exc}", None
        if isinstance(exc, SynthDistillError):
            return str(exc), None
        return f"{type(exc).__name__}: {exc}", None

    def _failure(self, exc: BaseException, attempts: int) -> Exception:
        if isinstance(exc, SynthDistillError):
            return exc
        description, status = self._describe(exc)
        tries = f"after {attempts} attempt{'s' if attempts > 1 else ''}" if _is_retryable(exc) else "not retried"
        message = self._redact(f"{self._where()}: {description} ({tries})")
        return TeacherRequestError(message, status_code=status, attempts=attempts)

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        description, _ = self._describe(exc) if exc else ("", None)
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.info(
            "teacher %s: attempt %d/%d failed (%s); retrying in %.2f s",
            self.model,
            retry_state.attempt_number,
            self.api.max_retries + 1,
            self._redact(description[:200]),
            wait,
        )


def label_logprobs(top_logprobs: list[tuple[str, float]], labels: list[str]) -> tuple[dict[str, float], list[str]]:
    """Each label's log-probability as the first answer token, from that token's ``(token, logprob)``
    alternatives; also the labels none of the alternatives stands for.

    A token counts for a label when, stripped of whitespace and lower-cased, it is a non-empty prefix of
    exactly one lower-cased label: "positive", " Positive" and "pos" count for ``positive``, while "ne"
    (``negative`` or ``neutral``) counts for none. A label's tokens are summed as probabilities.

    Servers return only the most likely alternatives. A label with no token among them gets
    ``log(p_min / 2)``, p_min being the smallest probability returned: every token left out is at most
    p_min likely, so p_min is an upper bound for each of them and half of it an estimate below that
    bound (not of the label's total, which may be spread over several unseen tokens). Such labels are
    returned as unseen, so that an answer resting on the estimate can be told apart.
    """
    lowered = [label.lower() for label in labels]
    matched: dict[str, list[float]] = {label: [] for label in labels}
    for token, logprob in top_logprobs:
        prefix = token.strip().lower()
        if not prefix:
            continue
        candidates = [label for label, low in zip(labels, lowered, strict=True) if low.startswith(prefix)]
        if len(candidates) == 1:
            matched[candidates[0]].append(logprob)
    unseen_logprob = min(logprob for _, logprob in top_logprobs) - math.log(2)
    scores = {label: _logsumexp(values) if values else unseen_logprob for label, values in matched.items()}
    return scores, [label for label in labels if not matched[label]]


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(value - top) for value in values))


def label_scores_completion(response: Any, labels: list[str], where: str) -> Completion:
    """The answer to a ``label_scores`` request from a chat completion that was asked for ``logprobs``
    and ``top_logprobs``. Reads OpenAI's response shape, which ``huggingface_hub``'s
    ``ChatCompletionOutput`` mirrors, so both HTTP backends use it."""
    content = getattr(getattr(response.choices[0], "logprobs", None), "content", None)
    alternatives = getattr(content[0], "top_logprobs", None) if content else None
    if not alternatives:
        raise TeacherRequestError(
            f"{where}: the server returned no top_logprobs for the answer token, so it does not expose the "
            "log-probabilities label_scores prompts need; use a label or cot_json prompt with this teacher"
        )
    scores, unseen = label_logprobs([(item.token, item.logprob) for item in alternatives], labels)
    usage = getattr(response, "usage", None)
    return Completion(
        text=max(scores, key=scores.get),
        input_tokens=getattr(usage, "prompt_tokens", None) if usage else None,
        output_tokens=getattr(usage, "completion_tokens", None) if usage else None,
        extra={"label_logprobs": scores, "unseen_labels": unseen},
    )
