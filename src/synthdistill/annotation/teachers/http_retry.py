"""The retry policy the HTTP teacher backends (``openai``, ``hf_inference``) share.

Exponential backoff with jitter on 429, 408/409, 5xx, timeouts and dropped connections, honouring the
server's ``Retry-After``; every other failure fails at once. The backends differ only in how their
client library reports a failure, so each passes in small functions that read its exceptions.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Callable, Mapping

import tenacity

# 408 and 409 are transient by definition (a timeout, a conflicting concurrent request); 429 asks to wait.
RETRYABLE_STATUS = frozenset({408, 409, 429})


class TeacherRequestError(RuntimeError):
    """A request that failed for good: non-retryable, or still failing after every retry."""

    def __init__(self, message: str, *, status_code: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.attempts = attempts


def is_retryable(status_code: int | None, no_response: bool) -> bool:
    """Whether a failure is worth another attempt: no response at all (timeout, refused or dropped
    connection), or an HTTP status that says the server is busy or failed transiently."""
    if no_response:
        return True
    return status_code is not None and (status_code in RETRYABLE_STATUS or status_code >= 500)


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` (OpenAI's, more precise) or ``Retry-After`` (seconds or an HTTP
    date), if present."""
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


class BackoffOrRetryAfter(tenacity.wait.wait_base):
    """Wait what the server's ``Retry-After`` asks for (capped, plus up to 10% jitter so workers that were
    throttled together do not return together); otherwise exponential backoff with equal jitter: half
    of ``initial * 2**n`` (capped at ``maximum``) plus a random share of the other half."""

    def __init__(
        self,
        initial: float,
        maximum: float,
        max_retry_after: float,
        headers_of: Callable[[BaseException], Mapping[str, str] | None],
    ) -> None:
        self.initial, self.maximum, self.max_retry_after = initial, maximum, max_retry_after
        self.headers_of = headers_of

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = retry_after_s(self.headers_of(exc)) if exc is not None else None
        if retry_after is not None:
            return min(retry_after, self.max_retry_after) * (1 + 0.1 * random.random())
        ceiling = min(self.maximum, self.initial * 2 ** (retry_state.attempt_number - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def retrying(
    *,
    retryable: Callable[[BaseException], bool],
    headers_of: Callable[[BaseException], Mapping[str, str] | None],
    max_retries: int,
    initial_s: float,
    max_wait_s: float,
    max_retry_after_s: float,
    before_sleep: Callable[[tenacity.RetryCallState], None],
) -> tenacity.Retrying:
    """A fresh ``Retrying`` per request: its statistics (the attempt count) belong to that request."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(retryable),
        stop=tenacity.stop_after_attempt(max_retries + 1),
        wait=BackoffOrRetryAfter(initial_s, max_wait_s, max_retry_after_s, headers_of),
        before_sleep=before_sleep,
        reraise=True,
    )


def redact(text: str, secret: str | None) -> str:
    """Servers echo the key in some error bodies; it must not reach errors, logs or the cache."""
    return text.replace(secret, "***") if secret else text


def unquote(text: str) -> str:
    """The label inside a JSON string (what an enum schema yields), or the text unchanged."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, str) else text
