"""What the chat-completion backends (openai, hf_inference) share: settings, request arguments, the
request-retry-answer loop of :class:`ChatApiTeacher`, and reading label scores from ``top_logprobs``.
Each backend supplies its client and reads its own library's exceptions."""

from __future__ import annotations

import json
import logging
import math
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import tenacity

from synthdistill import SynthDistillError
from synthdistill.annotation.teachers.base import Completion, Request
from synthdistill.annotation.teachers.http_retry import TeacherRequestError, redact, retrying, unquote

log = logging.getLogger(__name__)


class InvalidResponse(Exception):
    """A 200 whose body is no chat completion (a JSON without choices); not retried."""


class IncompleteBody(InvalidResponse):
    """A 200 whose body is not valid JSON: cut short on its way (a proxy, a dropped upstream), since no
    server means to send half an answer. Retried like a dropped connection; never an answer, so
    never cached."""


STRUCTURED_OUTPUT_MODES = ("response_format", "json_object", "none")
DEFAULT_TOP_LOGPROBS = 20


@dataclass(frozen=True)
class ChatApiSettings:
    """Concurrency, timeout, retry and decoding settings of an HTTP teacher, validated once."""

    concurrency: int
    timeout_s: float
    max_retries: int
    retry_initial_s: float
    retry_max_wait_s: float
    max_retry_after_s: float
    send_seed: bool
    structured_output: str
    top_logprobs: int

    @classmethod
    def parse(cls, settings: dict[str, Any], backend: str) -> ChatApiSettings:
        parsed = cls(
            concurrency=int(settings.get("concurrency", 8)),
            timeout_s=float(settings.get("timeout_s", 60.0)),
            max_retries=int(settings.get("max_retries", 6)),
            retry_initial_s=float(settings.get("retry_initial_s", 1.0)),
            retry_max_wait_s=float(settings.get("retry_max_wait_s", 60.0)),
            max_retry_after_s=float(settings.get("max_retry_after_s", 300.0)),
            send_seed=settings.get("send_seed", True) is not False,
            structured_output=settings.get("structured_output") or "response_format",
            top_logprobs=int(settings.get("top_logprobs", DEFAULT_TOP_LOGPROBS)),
        )
        if parsed.structured_output not in STRUCTURED_OUTPUT_MODES:
            raise SynthDistillError(
                f"teacher backend {backend}: structured_output {parsed.structured_output!r} is not one of "
                f"{', '.join(STRUCTURED_OUTPUT_MODES)}"
            )
        if parsed.max_retries < 0 or parsed.timeout_s <= 0 or parsed.concurrency < 1 or parsed.top_logprobs < 1:
            raise SynthDistillError(
                f"teacher backend {backend}: max_retries must be >= 0, timeout_s > 0, concurrency >= 1 and "
                "top_logprobs >= 1"
            )
        return parsed

    def identity_extras(self) -> dict[str, Any]:
        """Settings that change answers, for the cache key; defaults are left out so that
        existing cache keys stay valid."""
        extras: dict[str, Any] = {}
        if self.structured_output != "response_format":
            extras["structured_output"] = self.structured_output
        if self.top_logprobs != DEFAULT_TOP_LOGPROBS:
            extras["top_logprobs"] = self.top_logprobs
        return extras

    def chat_kwargs(self, request: Request, model: str) -> dict[str, Any]:
        return chat_completion_kwargs(request, model, self.structured_output, self.top_logprobs, self.send_seed)


def chat_completion_kwargs(
    request: Request, model: str, structured_output: str, top_logprobs: int, send_seed: bool
) -> dict[str, Any]:
    """OpenAI-style chat-completion arguments; huggingface_hub's chat_completion takes the same."""
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": request.messages,
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
    if schema is not None and structured_output == "response_format":
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        }
    elif schema is not None and structured_output == "json_object":
        kwargs["response_format"] = {"type": "json_object", "schema": schema}
    if request.score_labels:
        # One greedy token: the labels' probabilities are read from its alternatives.
        kwargs.update(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=top_logprobs)
    if send_seed and request.seed is not None:
        kwargs["seed"] = request.seed
    return kwargs


class ChatApiTeacher:
    """One chat completion per request, under the shared retry policy. Subclasses set ``model``,
    ``api`` and ``identity`` and implement the hooks below; the client (and with it the key or
    token) is built on the first :meth:`complete`, so rendering prompts needs no secret."""

    model: str | None
    api: ChatApiSettings
    identity: dict[str, Any]

    def __init__(self) -> None:
        self.max_concurrency = self.api.concurrency
        self._client: Any = None
        self._secret: str | None = None
        self._lock = threading.Lock()

    # Hooks for each backend.
    def _new_client(self) -> tuple[Any, str | None]:
        """A client, and the secret it holds (to redact from messages) or None."""
        raise NotImplementedError

    def _call(self, client: Any, kwargs: dict[str, Any]) -> Any:
        """One request; raises the library's exception, or an error for a body that is no completion."""
        raise NotImplementedError

    def _is_retryable(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def _headers(self, exc: BaseException) -> Mapping[str, str] | None:
        """The failed response's headers (for Retry-After), if there was a response."""
        raise NotImplementedError

    def _describe(self, exc: BaseException) -> tuple[str, int | None]:
        """A one-line description of a failure and its HTTP status, if any."""
        raise NotImplementedError

    def _where(self) -> str:
        raise NotImplementedError

    def render(self, messages: list[dict[str, str]]) -> str:
        # The server applies the chat template; what we send is the message list itself.
        return json.dumps(messages, ensure_ascii=False)

    def request_kwargs(self, request: Request) -> dict[str, Any]:
        """The chat-completion arguments for one request (model and messages included)."""
        return self.api.chat_kwargs(request, self.model or "")

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client, self._secret = self._new_client()
            return self._client

    def _redact(self, text: str) -> str:
        return redact(text, self._secret)

    def complete(self, request: Request) -> Completion:
        client = self._get_client()
        kwargs = self.request_kwargs(request)
        policy = retrying(
            retryable=self._is_retryable,
            headers_of=self._headers,
            max_retries=self.api.max_retries,
            initial_s=self.api.retry_initial_s,
            max_wait_s=self.api.retry_max_wait_s,
            max_retry_after_s=self.api.max_retry_after_s,
            before_sleep=self._log_retry,
        )
        try:
            response = policy(self._call, client, kwargs)
        except Exception as exc:
            attempts = policy.statistics.get("attempt_number", 1)
            raise self._failure(exc, attempts) from None
        if request.score_labels:
            return label_scores_completion(response, request.score_labels, self._where())
        message = response.choices[0].message
        text = (message.content if message is not None else None) or ""
        if request.choices and not request.json_schema:
            text = unquote(text)
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            input_tokens=getattr(usage, "prompt_tokens", None) if usage else None,
            output_tokens=getattr(usage, "completion_tokens", None) if usage else None,
        )

    def _failure(self, exc: BaseException, attempts: int) -> Exception:
        if isinstance(exc, SynthDistillError):
            return exc
        description, status = self._describe(exc)
        tries = f"after {attempts} attempt{'s' if attempts > 1 else ''}" if self._is_retryable(exc) else "not retried"
        message = self._redact(f"{self._where()}: {description} ({tries})")
        return TeacherRequestError(message, status_code=status, attempts=attempts)

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        description, _ = self._describe(exc) if exc else ("", None)
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.info(
            "teacher %s: attempt %d/%d failed (%s); retrying in %.2f s",
            self._where(),
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


def _is_letter(char: str) -> bool:
    return unicodedata.category(char)[0] in "LM"


def _is_number(char: str) -> bool:
    return unicodedata.category(char)[0] == "N"


def first_token_bound(label: str) -> str:
    """The longest text (lower-cased) that the first token of ``label`` can be, whatever the tokenizer.

    An HTTP server's tokenizer is unknown here, but the tokenizers of chat models split text into words
    before they merge anything (GPT-2, cl100k, o200k, Llama 3, Qwen; SentencePiece splits at spaces), and
    no token crosses such a split: at most one non-letter followed by a run of letters (``very``, ``(a``),
    at most three digits, or a run of punctuation (``$$``). Taking the longest such piece refuses only what
    no such tokenizer can tell apart; a tokenizer that splits a word further can still fail to see a
    label, and then ``label_logprobs`` reports it as unseen.
    """
    text = label.lower()
    if _is_number(text[0]):
        end = 1
        while end < min(3, len(text)) and _is_number(text[end]):
            end += 1
        return text[:end]
    start = 0 if _is_letter(text[0]) else 1
    if start < len(text) and _is_letter(text[start]):
        end = start
        while end < len(text) and _is_letter(text[end]):
            end += 1
        return text[:end]
    end = 1
    while end < len(text) and not (text[end].isspace() or _is_letter(text[end]) or _is_number(text[end])):
        end += 1
    return text[:end]


def first_token_clash(labels: list[str]) -> tuple[str, str, str] | None:
    """Two labels that first-token scores cannot tell apart, and the longest first token of the first:
    a token counts for a label only when it begins no other label (``label_logprobs``), so a label whose
    every possible first token also begins another label is never seen: ``very negative`` beside
    ``very positive`` (the first token is at most ``very``), ``neg`` beside ``negative``."""
    for label in labels:
        bound = first_token_bound(label)
        for other in labels:
            if other != label and other.lower().startswith(bound):
                return label, other, bound
    return None


def first_token_problem(labels: list[str]) -> str | None:
    """Why first-token scores (HTTP teachers: the first answer token's top_logprobs) cannot tell two of
    ``labels`` apart, or None. The rule and why it is sound without the server's tokenizer:
    ``first_token_bound``."""
    clash = first_token_clash(labels)
    if clash is None:
        return None
    label, other, bound = clash
    if bound == label.lower():
        return f"label {label!r} is a prefix of {other!r}"
    return (
        f"labels {label!r} and {other!r} share their first token: the first token of {label!r} is at most "
        f"{bound!r}, which begins {other!r} too"
    )


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
        text=max(scores, key=lambda label: scores[label]),
        input_tokens=getattr(usage, "prompt_tokens", None) if usage else None,
        output_tokens=getattr(usage, "completion_tokens", None) if usage else None,
        extra={"label_logprobs": scores, "unseen_labels": unseen},
    )
