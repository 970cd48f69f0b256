"""Answers and failures that must not poison the cache or run forever (issue 17), against real parts:
the openai backend over HTTP to the fault-injecting proxy (its built-in upstream, so no model is
needed), and real SQLite files. Requests are counted at the proxy.
"""

from __future__ import annotations

import json
import re
import time

import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import CacheError, ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.runner import CircuitBreaker, failure_kind
from synthdistill.annotation.teachers import make_teacher
from synthdistill.annotation.teachers.http_retry import TeacherRequestError
from synthdistill.tasks.base import NOT_A_LABEL, OK

from .conftest import LABELS, annotate_settings
from .servers import FaultPlan, FaultProxy, free_port

GENERATION = {"max_tokens": 4, "temperature": 0.0, "top_p": 1.0, "seed": 0, "structured": False}


def settings_for(base_url: str, **extra) -> dict:
    settings = {
        "backend": "openai",
        "base_url": base_url,
        "model": "fake",
        "api_key_env": None,
        "concurrency": 4,
        "timeout_s": 5,
        "max_retries": 0,
        "retry_initial_s": 0.01,
        "retry_max_wait_s": 0.05,
    }
    settings.update(extra)
    return settings


def prompts(n: int, padding: int = 0) -> pd.DataFrame:
    texts = [f"news item {i} " + "x" * padding for i in range(n)]
    return pd.DataFrame(
        {
            "id": [f"i{i:04d}" for i in range(n)],
            "split": "train",
            "text": texts,
            "messages": [json.dumps([{"role": "user", "content": t}]) for t in texts],
        }
    )


def run(frame, settings, cache, **options):
    options = annotate_settings(**{"max_failure_share": 1.0, **options})
    return annotate(
        frame,
        make_teacher(settings),
        cache,
        kind="label",
        labels=LABELS,
        generation=GENERATION,
        iteration=0,
        **options,
    )


# -- 200s whose answer does not parse ------------------------------------------------------------------


def test_empty_and_unparseable_answers_count_as_failures_and_are_cached(tmp_path):
    plan = FaultPlan(schedule=["empty"] * 6 + ["unparseable"] * 4)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with FaultProxy("fake", plan) as proxy:
        with pytest.raises(SynthDistillError) as raised:
            run(prompts(10), settings_for(proxy.base_url), cache, max_failure_share=0.1)
    message = str(raised.value)
    assert "10 of 10 requests failed (more than max_failure_share=0.1)" in message
    assert "0 request errors and 10 unparseable answers (6 empty, 4 not_a_label)" in message
    assert "Example unparseable answer (" in message and "retry_unparsed" in message
    assert str(cache.path) in message
    assert "I would say it is somewhat mixed" in message or "(empty): ''" in message
    # They were paid for: stored, so that only retry_unparsed asks again.
    assert len(cache) == 10


def test_rerun_reuses_unparsed_answers_and_retry_unparsed_reasks_exactly_them(tmp_path):
    bad = ["ok"] * 3 + ["empty", "ok", "unparseable", "ok", "empty"] + ["ok"] * 4 + ["unparseable", "empty"]
    frame = prompts(24)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with FaultProxy("fake", FaultPlan(schedule=bad)) as proxy:
        settings = settings_for(proxy.base_url)
        with pytest.raises(SynthDistillError, match=r"5 of 24 requests failed .*0 request errors and 5 unparseable"):
            run(frame, settings, cache, max_failure_share=0.1)
        parsed_bodies = set(proxy.stats()["ok_by_body"])
        assert len(parsed_bodies) == 19 and len(cache) == 24

        # The server is fixed, but without retry_unparsed the cached empty answers stand: no request at all.
        proxy.plan = FaultPlan()
        proxy.reset()
        with pytest.raises(SynthDistillError, match="5 unparseable answers"):
            run(frame, settings, cache, max_failure_share=0.1)
        assert proxy.stats()["received"] == 0

        # retry_unparsed asks again for exactly the five, nothing that parsed, and replaces their entries.
        proxy.reset()
        out = run(frame, settings, cache, max_failure_share=0.1, retry_unparsed=True)
        stats = proxy.stats()
        assert stats["received"] == 5 and stats["max_received_per_body"] == 1
        assert not set(stats["ok_by_body"]) & parsed_bodies
        assert (out["parse_status"] == OK).all() and int((~out["cached"]).sum()) == 5
        assert len(cache) == 24

        # The new answers are what the cache holds now: the next run asks nothing, retry_unparsed or not.
        proxy.reset()
        again = run(frame, settings, cache, max_failure_share=0.0, retry_unparsed=True)
        assert proxy.stats()["received"] == 0 and again["cached"].all()
        assert again["label"].tolist() == out["label"].tolist()


def test_retry_unparsed_keeps_a_still_unparseable_answer_failed(tmp_path):
    """A server that answers the same nonsense again (temperature 0): asked once more per run, still counted."""
    frame = prompts(4)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with FaultProxy("fake", FaultPlan(unparseable=1.0)) as proxy:
        settings = settings_for(proxy.base_url)
        first = run(frame, settings, cache)
        assert (first["parse_status"] == NOT_A_LABEL).all()
        proxy.reset()
        second = run(frame, settings, cache, retry_unparsed=True)
        assert proxy.stats()["received"] == 4 and (second["parse_status"] == NOT_A_LABEL).all()
    assert len(cache) == 4


# -- the cache file -----------------------------------------------------------------------------------


def test_full_cache_stops_requests_at_once_and_names_the_file(tmp_path):
    concurrency = 4
    cache = ResponseCache(tmp_path / "cache.sqlite")
    # A real "database or disk is full" from SQLite: the file may grow by a few pages only. Each row holds
    # a ~1.5 kB request, so a handful of answers fit.
    pages = cache.db.execute("PRAGMA page_count").fetchone()[0]
    cache.db.execute(f"PRAGMA max_page_count = {pages + 8}")
    frame = prompts(100, padding=1500)
    with FaultProxy("fake", FaultPlan(latency_s=0.05)) as proxy:
        with pytest.raises(SynthDistillError) as raised:
            run(frame, settings_for(proxy.base_url, concurrency=concurrency), cache)
        proxy.wait_idle()
        received = proxy.stats()["received"]
    message = str(raised.value)
    stored = len(cache)
    assert 1 <= stored < 20
    assert f"cannot write to the response cache {cache.path}" in message and "database or disk is full" in message
    assert "free space on the disk" in message and "cache.path" in message
    assert f"stored {stored} new answers" in message  # nothing was written after the error
    # Only the requests already in flight when the write failed went out after it, and they are reported.
    assert received <= stored + concurrency  # the one that failed to store and at most concurrency - 1 more
    assert f"{received - stored} answers received could not be stored" in message
    assert f"{100 - received} requests were not sent" in message


def test_read_only_cache_stops_at_the_first_write(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    cache.db.execute("PRAGMA query_only = ON")  # SQLite refuses writes: "attempt to write a readonly database"
    with FaultProxy("fake", FaultPlan(latency_s=0.05)) as proxy:
        with pytest.raises(SynthDistillError) as raised:
            run(prompts(50), settings_for(proxy.base_url, concurrency=2), cache)
        proxy.wait_idle()
        received = proxy.stats()["received"]
    message = str(raised.value)
    assert str(cache.path) in message and "readonly" in message and "writable" in message
    assert received <= 2 and len(cache) == 0


def test_a_file_that_is_no_database_is_named_with_the_remedy(tmp_path):
    path = tmp_path / "responses.sqlite"
    garbage = bytes(range(256)) * 64
    path.write_bytes(garbage)
    with pytest.raises(CacheError) as raised:
        ResponseCache(path)
    message = str(raised.value)
    assert isinstance(raised.value, SynthDistillError)
    assert str(path) in message and "file is not a database" in message
    assert f"mv {path} {path}.broken" in message and f"sqlite3 {path}.broken .recover" in message
    assert path.read_bytes() == garbage  # left as it was, for recovery


def test_an_unopenable_cache_path_is_named(tmp_path):
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(CacheError, match=re.escape(str(tmp_path / "dir.sqlite"))) as raised:
        ResponseCache(tmp_path / "dir.sqlite")
    assert ".recover" not in str(raised.value)  # not a damaged file: no advice to recover it


# -- circuit breaker ------------------------------------------------------------------------------------


def not_sent(message: str) -> int:
    return int(re.search(r"(\d+) requests were not sent", message).group(1))


def test_401_to_everything_stops_after_the_threshold(tmp_path):
    concurrency, threshold, n = 4, 5, 200
    cache = ResponseCache(tmp_path / "cache.sqlite")
    plan = FaultPlan(schedule=["ok"] * 3, unauthorized=1.0)
    with FaultProxy("fake", plan) as proxy:
        with pytest.raises(SynthDistillError) as raised:
            run(
                prompts(n),
                settings_for(proxy.base_url, concurrency=concurrency),
                cache,
                max_consecutive_failures=threshold,
            )
        proxy.wait_idle()
        received = proxy.stats()["received"]
    message = str(raised.value)
    assert f"stopped after {threshold} consecutive requests failed the same way" in message
    assert "max_consecutive_failures=5" in message and "HTTP 401" in message and "Incorrect API key" in message
    # Answers are counted in the order they come back, not the order the proxy saw the requests: on a
    # busy machine up to concurrency - 1 failures can be counted before the third "ok" resets the run
    # (seen once in CI: 13 requests). Then `threshold` failures in a row, and at most concurrency - 1
    # requests already in flight when it trips; nothing after that.
    assert received <= 3 + (concurrency - 1) + threshold + (concurrency - 1)
    assert not_sent(message) == n - received
    assert len(cache) == 3 and str(cache.path) in message  # the answers received before stay cached


def test_dead_endpoint_stops_after_the_threshold(tmp_path):
    threshold, n = 5, 300
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: connection refused
    settings = settings_for(dead, concurrency=4, max_retries=1)
    start = time.monotonic()
    with pytest.raises(SynthDistillError) as raised:
        run(prompts(n), settings, ResponseCache(tmp_path / "cache.sqlite"), max_consecutive_failures=threshold)
    message = str(raised.value)
    assert "connection failed" in message and "after 2 attempts" in message
    assert f"stopped after {threshold} consecutive requests" in message
    assert not_sent(message) >= n - threshold - 4
    assert time.monotonic() - start < 30


def test_failures_broken_by_answers_or_of_different_kinds_do_not_trip_the_breaker(tmp_path):
    # One request at a time, so completion order is arrival order.
    for schedule in (["unauthorized", "unauthorized", "ok"] * 4, ["unauthorized", "bad_request"] * 6):
        with FaultProxy("fake", FaultPlan(schedule=schedule)) as proxy:
            out = run(
                prompts(12),
                settings_for(proxy.base_url, concurrency=1),
                ResponseCache(tmp_path / f"{schedule[-1]}.sqlite"),
                max_consecutive_failures=3,
            )
            assert proxy.stats()["received"] == 12
        assert (out["parse_status"] == "request_error").sum() == sum(s != "ok" for s in schedule)


def test_breaker_off_and_failure_kinds():
    breaker = CircuitBreaker(None)
    assert not any(breaker.record("HTTP 401") for _ in range(1000))
    assert failure_kind(TeacherRequestError("x", status_code=401)) == "HTTP 401"
    # Numbers (ports, attempts, seconds) do not make two failures different.
    assert failure_kind(ConnectionError("port 8001 after 3 attempts, 0.5 s")) == failure_kind(
        ConnectionError("port 9 after 7 attempts, 12 s")
    )
    assert failure_kind(ConnectionError("refused")) != failure_kind(TimeoutError("refused"))


# -- through the annotate rule ----------------------------------------------------------------------------


@pytest.mark.slow
def test_annotate_job_against_a_dead_endpoint_stops_at_the_default_threshold(tmp_path):
    """The rule passes the breaker's default (20) to the script: the job fails quoting the error instead of
    trying every item."""
    from .pipeline_helpers import make_workdir, snakemake

    dead = f"http://127.0.0.1:{free_port()}/v1"
    teacher = {
        "backend": "openai",
        "base_url": dead,
        "model": "dead",
        "api_key_env": None,
        "concurrency": 2,
        "max_retries": 0,
        "timeout_s": 5,
        "price": {"input_per_1m_tokens": 0.0, "output_per_1m_tokens": 0.0},
    }
    workdir = make_workdir(tmp_path, teachers={"dead": teacher})
    target = "results/annotations/dead/label/iter0/1-of-1.parquet"
    result = snakemake(workdir, target, check=False)
    assert result.returncode != 0 and not (workdir / target).exists()
    log = (workdir / "logs/annotate/dead/label/iter0/1-of-1.log").read_text()
    assert "stopped after 20 consecutive requests failed the same way (annotate.max_consecutive_failures=20)" in log
    assert "connection failed" in log
    assert not_sent(log) >= len(pd.read_parquet(workdir / "results/prompts/dead/label.parquet")) - 20 - 2
