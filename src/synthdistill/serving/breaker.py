"""The service's circuit breaker for its teacher: stop asking a teacher that is down.

Without it every deferred request of an outage waits for the teacher to fail (a dead port after the
client's retries, a 500 after the engine's, a hang after ``serve.teacher_timeout_s``) before it gets
the student's answer. After ``serve.teacher_breaker_failures`` deferred texts in a row the teacher
did not answer at all, the breaker opens: every deferral gets the student's answer at once
(``student-fallback``) for ``serve.teacher_breaker_cooldown_s``. Then one request is let through as
a probe (half-open; the others still fall back at once): a teacher answer closes the breaker, a
failure opens it for another cool-down. A teacher that answers with something that is not a label
is up, so it does not count; the pipeline engine's breaker counts the same way.

Used from the event loop only (no lock).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATES = (CLOSED, OPEN, HALF_OPEN)


class TeacherBreaker:
    def __init__(
        self,
        failures: int,
        cooldown_s: float,
        on_change: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures, self.cooldown_s = failures, cooldown_s
        self.on_change, self.clock = on_change, clock
        self.state = CLOSED
        self.run = 0  # deferred texts in a row the teacher did not answer
        self.opened_at = 0.0
        self.trips = 0

    def allow(self) -> bool:
        """Whether a deferral goes to the teacher now; the first one after a cool-down is the probe,
        and its outcome must be recorded (``record``) or the breaker stays half-open."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self.clock() - self.opened_at >= self.cooldown_s:
            self._set(HALF_OPEN)
            return True
        return False

    def record(self, answered: int, unanswered: int) -> None:
        """One deferral's outcome: texts the teacher answered, and texts it did not (request failed,
        timed out, raised). Any answer closes the breaker."""
        if answered:
            self.run = 0
            if self.state != CLOSED:
                log.info("the teacher answers again: closing the circuit breaker")
                self._set(CLOSED)
            return
        if not unanswered:
            return
        self.run += unanswered
        if self.state == HALF_OPEN or (self.state == CLOSED and self.run >= self.failures):
            log.warning(
                "the teacher did not answer %d deferred texts in a row: the student answers alone for %g s",
                self.run,
                self.cooldown_s,
            )
            self.trips += 1
            self.opened_at = self.clock()
            self._set(OPEN)

    def _set(self, state: str) -> None:
        self.state = state
        if self.on_change is not None:
            self.on_change(state)

    def describe(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"state": self.state, "consecutive_failures": self.run, "trips": self.trips}
        if self.state == OPEN:
            facts["retry_in_s"] = round(max(0.0, self.opened_at + self.cooldown_s - self.clock()), 1)
        return facts
