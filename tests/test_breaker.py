"""The service's circuit breaker for its teacher, on a clock the test moves (the service runs it
over HTTP in tests/test_serving.py)."""

from __future__ import annotations

from synthdistill.serving.breaker import CLOSED, HALF_OPEN, OPEN, TeacherBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_it_opens_after_failures_in_a_row_probes_after_the_cool_down_and_closes_on_an_answer():
    clock, states = Clock(), []
    breaker = TeacherBreaker(failures=3, cooldown_s=10, on_change=states.append, clock=clock)
    breaker.record(answered=0, unanswered=2)
    breaker.record(answered=1, unanswered=0)  # an answer resets the run
    breaker.record(answered=0, unanswered=2)
    assert breaker.allow() and breaker.state == CLOSED
    breaker.record(answered=0, unanswered=0)  # an unparseable answer: the teacher is up, nothing counts
    breaker.record(answered=0, unanswered=1)
    assert breaker.state == OPEN and not breaker.allow()
    assert breaker.describe() == {"state": OPEN, "consecutive_failures": 3, "trips": 1, "retry_in_s": 10.0}

    clock.now = 10.0
    assert breaker.allow() and breaker.state == HALF_OPEN  # the probe
    assert not breaker.allow()  # everyone else while it is out
    breaker.record(answered=0, unanswered=1)  # it failed: another cool-down
    assert breaker.state == OPEN and breaker.trips == 2 and not breaker.allow()
    clock.now = 20.0
    assert breaker.allow()
    breaker.record(answered=1, unanswered=0)
    assert breaker.state == CLOSED and breaker.allow()
    assert states == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]
