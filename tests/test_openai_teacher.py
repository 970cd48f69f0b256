"""The OpenAI-compatible teacher against real parts: llama.cpp's OpenAI server running SmolLM2 (a real,
weak LLM) and a fault-injecting proxy in front of it. Nothing here is mocked; every request is HTTP
on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.requests import build_request
from synthdistill.annotation.teachers import make_teacher
from synthdistill.annotation.teachers.base import Request
from synthdistill.annotation.teachers.chat_api import label_logprobs
from synthdistill.annotation.teachers.http_retry import TeacherRequestError
from synthdistill.tasks.base import ERROR, OK

from .conftest import LABELS, REPO, annotate_settings
from .servers import FaultPlan, FaultProxy

DEMO = REPO / "data" / "demo" / "financial_news_sentiment.csv"
LABEL_GEN = {"max_tokens": 4, "temperature": 0.0, "top_p": 1.0, "seed": 0, "structured": False}


@pytest.fixture
def proxy(llama_url):
    with FaultProxy(llama_url) as running:
        yield running


def teacher_settings(base_url: str, **extra) -> dict:
    settings = {
        "backend": "openai",
        "base_url": base_url,
        "model": "smollm2",
        "api_key_env": None,
        "concurrency": 2,  # the server decodes one request at a time; 2 keeps it busy
        "timeout_s": 20,
        "retry_initial_s": 0.05,
        "retry_max_wait_s": 0.5,
    }
    settings.update(extra)
    return settings


def prompt_frame(n: int, kind: str, settings: dict) -> pd.DataFrame:
    """The prompts artifact's columns for the first n demo texts and a shipped template."""
    texts = pd.read_csv(DEMO)["text"].iloc[:n].tolist()
    template = load_template(REPO / "config" / "prompts" / f"{kind}.txt")
    renderer = make_teacher(settings)  # no key needed to render
    messages = [messages_for(template, text, LABELS) for text in texts]
    return pd.DataFrame(
        {
            "id": [f"demo-{i:04d}" for i in range(n)],
            "split": "train",
            "text": texts,
            "messages": [json.dumps(m) for m in messages],
            "rendered": [renderer.render(m) for m in messages],
        }
    )


def run(frame, settings, cache, kind="label", generation=None, max_failure_share=1.0):
    return annotate(
        frame,
        make_teacher(settings),
        cache,
        kind=kind,
        labels=LABELS,
        generation=generation or LABEL_GEN,
        iteration=0,
        **annotate_settings(max_failure_share=max_failure_share),
    )


# -- request construction (no server) -----------------------------------------------------------


def request(**extra) -> Request:
    fields = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0.0, "top_p": 1.0}
    fields.update(extra)
    return Request(**{"seed": None, **fields})


def test_request_arguments_follow_structured_output_and_send_seed():
    default = make_teacher(teacher_settings("http://127.0.0.1:9/v1"))
    kwargs = default.request_kwargs(request(choices=LABELS, seed=7))
    assert kwargs["response_format"]["type"] == "json_schema"
    assert kwargs["response_format"]["json_schema"]["schema"] == {"type": "string", "enum": LABELS}
    assert kwargs["seed"] == 7
    assert "seed" not in default.request_kwargs(request(seed=None))

    json_object = make_teacher(teacher_settings("http://127.0.0.1:9/v1", structured_output="json_object"))
    schema = {"type": "object", "properties": {"label": {"enum": LABELS}}}
    assert json_object.request_kwargs(request(json_schema=schema))["response_format"] == {
        "type": "json_object",
        "schema": schema,
    }
    plain = make_teacher(teacher_settings("http://127.0.0.1:9/v1", structured_output="none", send_seed=False))
    kwargs = plain.request_kwargs(request(json_schema=schema, seed=7))
    assert "response_format" not in kwargs and "seed" not in kwargs
    # The decoding mode changes answers, so it is part of the cache identity (unless it is the default).
    assert plain.identity["structured_output"] == "none" and "structured_output" not in default.identity
    with pytest.raises(SynthDistillError, match="structured_output 'grammar' is not one of"):
        make_teacher(teacher_settings("http://127.0.0.1:9/v1", structured_output="grammar"))


def test_label_scores_request_asks_for_one_token_and_its_alternatives():
    scores = request(score_labels=LABELS, max_tokens=7, temperature=0.7)
    kwargs = make_teacher(teacher_settings("http://127.0.0.1:9/v1")).request_kwargs(scores)
    assert (kwargs["max_tokens"], kwargs["temperature"], kwargs["logprobs"], kwargs["top_logprobs"]) == (
        1,
        0.0,
        True,
        20,
    )
    assert "response_format" not in kwargs
    five = make_teacher(teacher_settings("http://127.0.0.1:9/v1", top_logprobs=5))
    assert five.request_kwargs(scores)["top_logprobs"] == 5 and five.identity["top_logprobs"] == 5
    assert "logprobs" not in five.request_kwargs(request())


def test_tokens_map_to_the_one_label_they_begin():
    top = [("positive", -0.5), (" Positive", -2.0), ("POS", -3.0), ("neg", -2.5), ("Ne", -1.0), ("The", -4.0)]
    scores, unseen = label_logprobs(top, LABELS)
    assert scores["positive"] == pytest.approx(math.log(math.exp(-0.5) + math.exp(-2.0) + math.exp(-3.0)))
    assert scores["negative"] == pytest.approx(-2.5)  # "Ne" begins negative and neutral: it counts for neither
    # No token for neutral: half the smallest probability returned.
    assert scores["neutral"] == pytest.approx(-4.0 - math.log(2)) and unseen == ["neutral"]


def test_labels_sharing_a_first_token_are_refused_before_any_request(tmp_path):
    """Issue 25, item 4: with first-token scores "very negative" and "very positive" were both unseen and
    every item was voted neutral; the engine refuses such labels before it sends anything."""
    labels = ["very negative", "very positive", "neutral"]
    frame = pd.DataFrame(
        {
            "id": ["a"],
            "split": ["train"],
            "text": ["Sales fell."],
            "messages": [json.dumps(messages_for("One of {labels}: {text}", "Sales fell.", labels))],
        }
    )
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with FaultProxy("fake", labels=labels) as fake:
        teacher = make_teacher(teacher_settings(fake.base_url))
        with pytest.raises(SynthDistillError, match=r"'very negative' and 'very positive' share their first token"):
            annotate(
                frame,
                teacher,
                cache,
                kind="label_scores",
                labels=labels,
                generation={},
                iteration=0,
                **annotate_settings(),
            )
        assert fake.stats()["received"] == 0 and len(cache) == 0


# -- the real server ------------------------------------------------------------------------------


@pytest.mark.slow
def test_label_through_llama_server_then_rerun_is_served_from_cache(proxy, tmp_path):
    settings = teacher_settings(proxy.base_url, structured_output="json_object")
    frame = prompt_frame(10, "label", settings)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    first = run(frame, settings, cache, generation={**LABEL_GEN, "structured": True})

    assert first["id"].tolist() == frame["id"].tolist()
    # llama.cpp enforces {"type": "json_object", "schema": <enum>} with a grammar: every answer is a label.
    assert (first["parse_status"] == OK).all(), first[["raw_output", "parse_status", "error"]]
    assert set(first["label"]) <= set(LABELS)
    assert (first["input_tokens"] > 0).all() and (first["output_tokens"] > 0).all()
    assert not first["cached"].any()
    assert proxy.stats()["ok"] == len(cache) == 10

    proxy.reset()
    second = run(frame, settings, cache, generation={**LABEL_GEN, "structured": True})
    assert proxy.stats()["received"] == 0
    assert second["cached"].all()
    assert second["label"].tolist() == first["label"].tolist()
    assert second["output_tokens"].tolist() == first["output_tokens"].tolist()


@pytest.mark.slow
def test_cot_json_with_json_object_schema_is_all_ok(proxy, tmp_path):
    settings = teacher_settings(proxy.base_url, structured_output="json_object")
    frame = prompt_frame(10, "cot_json", settings)
    generation = {"max_tokens": 64, "temperature": 0.0, "seed": 0, "structured": True}
    out = run(frame, settings, ResponseCache(tmp_path / "cache.sqlite"), kind="cot_json", generation=generation)
    assert (out["parse_status"] == OK).all(), out[["raw_output", "parse_status", "error"]]
    assert out["reason"].notna().all()
    assert (out["output_tokens"] > 0).all()


@pytest.mark.slow
def test_llama_server_rejects_json_schema_response_format(proxy, tmp_path):
    """llama-cpp-python's server accepts only response_format {"type": "json_object" | "text"}; the
    OpenAI form {"type": "json_schema"} fails validation, reported as HTTP 500. Being a 5xx it is
    retried (max_retries=1 here), then recorded per item, and the job stops: nothing was guessed."""
    settings = teacher_settings(proxy.base_url, max_retries=1)
    frame = prompt_frame(3, "cot_json", settings)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    generation = {"max_tokens": 64, "temperature": 0.0, "seed": 0, "structured": True}
    with pytest.raises(SynthDistillError, match=r"3 of 3 requests failed") as raised:
        run(frame, settings, cache, kind="cot_json", generation=generation, max_failure_share=0.1)
    assert "HTTP 500" in str(raised.value) and "json_object" in str(raised.value)
    assert proxy.stats()["upstream_status"] == {"500": 6} and len(cache) == 0


@pytest.mark.slow
def test_label_scores_from_the_server_agree_with_in_process_llama_cpp(llama_url, smollm2_teacher, tmp_path):
    settings = teacher_settings(llama_url)
    frame = prompt_frame(5, "label", settings)
    out = run(frame, settings, ResponseCache(tmp_path / "cache.sqlite"), kind="label_scores")
    probs = out[[f"prob_{label}" for label in LABELS]].to_numpy()
    assert (out["parse_status"] == OK).all(), out[["raw_output", "error"]]
    assert probs.sum(axis=1) == pytest.approx(1.0)
    assert out["label"].tolist() == [LABELS[i] for i in probs.argmax(axis=1)]
    assert (out["output_tokens"] == 1).all()

    # llama_cpp.server returns top_logprobs with its default logits_all=true and applies the GGUF's chat
    # template as LlamaCppTeacher does (same prompt tokens). Its first-token scores are compared with the
    # same mapping applied in-process to the whole first-token distribution: they differ only by what the
    # server's top 20 alternatives leave out. (LlamaCppTeacher itself scores whole label sequences.)
    teacher = make_teacher(settings)
    llm = smollm2_teacher.llm
    token_texts = [llm.detokenize([t]).decode("utf-8", "replace") for t in range(llm.n_vocab())]
    for messages, input_tokens in zip(frame["messages"], out["input_tokens"], strict=True):
        scores_request = build_request(json.loads(messages), "label_scores", LABELS, LABEL_GEN, 0)
        remote = teacher.complete(scores_request)
        assert remote.text == max(remote.extra["label_logprobs"], key=remote.extra["label_logprobs"].get)
        tokens = llm.tokenize(smollm2_teacher.render(json.loads(messages)).encode(), add_bos=True, special=True)
        assert input_tokens == len(tokens)
        llm.reset()
        llm.eval(tokens)
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(float)
        logprobs = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        local, _ = label_logprobs(list(zip(token_texts, logprobs.tolist(), strict=True)), LABELS)
        for label in LABELS:
            assert remote.extra["label_logprobs"][label] == pytest.approx(local[label], abs=0.25)


def test_label_scores_need_a_server_that_returns_top_logprobs():
    with FaultProxy("fake") as fake:  # the fake upstream answers without logprobs
        teacher = make_teacher(teacher_settings(fake.base_url))
        with pytest.raises(TeacherRequestError, match="does not expose the log-probabilities"):
            teacher.complete(request(score_labels=LABELS, max_tokens=1))


@pytest.mark.slow
def test_plain_text_label_from_the_server(proxy, tmp_path):
    settings = teacher_settings(proxy.base_url, structured_output="none")
    frame = prompt_frame(10, "label", settings)
    out = run(frame, settings, ResponseCache(tmp_path / "cache.sqlite"))
    assert out["raw_output"].notna().all() and (out["parse_status"] != ERROR).all()
    assert (out["output_tokens"] > 0).all()


# -- faults ---------------------------------------------------------------------------------------

FAULT_SCHEDULE = [
    "rate_limit",  # Retry-After: 0
    "server_error",
    "timeout",
    "malformed",  # a 200 with half its JSON: retried like a dropped connection
    "drop",
    "rate_limit",  # Retry-After: 1
    "ok",
    "malformed",
    "drop",
]


@pytest.mark.slow
def test_faults_lose_and_duplicate_nothing_and_rerun_requests_only_failures(proxy, tmp_path):
    proxy.plan = FaultPlan(
        latency_s=0.02,
        schedule=FAULT_SCHEDULE,
        rate_limit=0.1,
        server_error=0.1,
        drop=0.1,
        malformed=0.05,
        timeout=0.03,
        slow_s=3.5,
        seed=1,
    )
    settings = teacher_settings(proxy.base_url, structured_output="none", timeout_s=3, max_retries=2)
    frame = prompt_frame(14, "label", settings)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    out = run(frame, settings, cache)

    assert out["id"].tolist() == frame["id"].tolist()  # nothing lost, nothing added, same order
    failed = out["parse_status"] == ERROR
    assert out.loc[failed, "error"].str.len().gt(0).all() and out.loc[failed, "raw_output"].isna().all()
    assert out.loc[~failed, "raw_output"].notna().all() and out.loc[~failed, "error"].isna().all()
    stats = proxy.stats()
    assert stats["faults"]["malformed"] >= 2 and stats["faults"]["rate_limit"] >= 2
    assert {"server_error", "timeout", "drop"} <= set(stats["faults"])
    assert stats["ok"] == len(cache) == (~failed).sum()  # every successful answer is stored, once
    assert stats["max_ok_per_body"] == 1

    proxy.wait_idle()
    proxy.plan = FaultPlan()
    proxy.reset()
    rerun = run(frame, settings, cache)
    assert proxy.stats()["received"] == failed.sum()  # only the failed items are requested again
    assert rerun["id"].tolist() == frame["id"].tolist()
    assert (rerun["parse_status"] != ERROR).all()
    assert rerun["cached"].tolist() == (~failed).tolist()
    assert rerun.loc[~failed, "raw_output"].tolist() == out.loc[~failed, "raw_output"].tolist()
    assert len(cache) == len(frame)


def test_retry_after_is_honoured():
    plan = FaultPlan(schedule=["rate_limit", "ok", "rate_limit", "ok"], retry_after=["1", "1", "0", "0"])
    with FaultProxy("fake", plan) as fake:
        teacher = make_teacher(teacher_settings(fake.base_url, retry_initial_s=0.01))
        start = time.monotonic()
        teacher.complete(request())
        waited = time.monotonic() - start
        start = time.monotonic()
        teacher.complete(request(max_tokens=5))
        immediate = time.monotonic() - start
    assert 1.0 <= waited < 2.0 and immediate < 0.5
    assert fake.stats()["faults"] == {"rate_limit": 2} and fake.stats()["ok"] == 2


def test_non_retryable_errors_fail_at_once(tmp_path):
    with FaultProxy("fake", FaultPlan(schedule=["bad_request"] * 3)) as fake:
        teacher = make_teacher(teacher_settings(fake.base_url))
        with pytest.raises(TeacherRequestError, match="not retried") as raised:
            teacher.complete(request())
        assert raised.value.status_code == 400 and fake.stats()["received"] == 1


def test_a_200_with_its_json_cut_short_is_retried_counted_and_never_cached(tmp_path):
    """Issue 25, item 18: a 200 whose JSON is cut in half (Content-Length of the half, or of the whole with
    the connection closed) is a failed request: retried, never an answer, never cached."""
    plan = FaultPlan(schedule=["malformed", "cut", "malformed", "ok", "ok", "ok"])
    with FaultProxy("fake", plan) as fake:
        settings = teacher_settings(fake.base_url, concurrency=1, max_retries=3)
        frame = prompt_frame(4, "label", settings)
        cache = ResponseCache(tmp_path / "cache.sqlite")
        out = run(frame, settings, cache, max_failure_share=0.0)
        assert (out["parse_status"] == OK).all() and out["label"].isin(LABELS).all()
        assert fake.stats()["faults"] == {"malformed": 2, "cut": 1} and fake.stats()["received"] == 4 + 3
        assert len(cache) == 4 and fake.stats()["ok"] == 4

        # Retries used up: the item is a counted request error (the job fails), and nothing is cached for it.
        fake.plan = FaultPlan(schedule=["cut", "malformed"])
        fake.reset()
        once = teacher_settings(fake.base_url, concurrency=1, max_retries=1)
        more = prompt_frame(6, "label", once)
        with pytest.raises(SynthDistillError, match=r"1 of 6 requests failed.*invalid response body.*after 2 attempts"):
            run(more, once, cache, max_failure_share=0.0)
        assert fake.stats()["received"] == 2 + 1 and len(cache) == 5

        # A rerun asks again for exactly that item.
        fake.plan = FaultPlan()
        fake.reset()
        rerun = run(more, once, cache, max_failure_share=0.0)
        assert fake.stats()["received"] == 1 and (rerun["parse_status"] == OK).all()
        assert rerun["cached"].tolist() == [True] * 4 + [False, True]


@pytest.mark.slow
def test_more_failures_than_allowed_stop_the_job(proxy, tmp_path):
    proxy.plan = FaultPlan(server_error=1.0)
    settings = teacher_settings(proxy.base_url, max_retries=2)
    frame = prompt_frame(8, "label", settings)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with pytest.raises(SynthDistillError) as raised:
        run(frame, settings, cache, max_failure_share=0.1)
    message = str(raised.value)
    assert "8 of 8 requests failed" in message and "max_failure_share=0.1" in message
    assert "answers received are in the cache" in message and str(cache.path) in message
    assert "HTTP 500" in message and "after 3 attempts" in message
    assert proxy.stats()["received"] == 8 * 3 and proxy.stats()["forwarded"] == 0


# -- crash and resume -----------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, sys
    import pandas as pd
    from synthdistill.annotation.engine import annotate
    from synthdistill.settings import annotate_settings
    from synthdistill.annotation.cache import ResponseCache
    from synthdistill.annotation.teachers import make_teacher

    frame_path, settings_json, cache_path, out_path = sys.argv[1:]
    frame = pd.read_json(frame_path, orient="records", lines=True)
    generation = {"max_tokens": 4, "temperature": 0.0, "top_p": 1.0, "seed": 0, "structured": False}
    out = annotate(frame, make_teacher(json.loads(settings_json)), ResponseCache(cache_path), kind="label",
                   labels=["positive", "negative", "neutral"], generation=generation, iteration=0,
                   **annotate_settings())
    out.to_json(out_path, orient="records", lines=True)
    """
)


def cache_rows(path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.slow
def test_killed_job_resumes_with_only_the_missing_requests(proxy, tmp_path):
    proxy.plan = FaultPlan(latency_s=0.3)
    settings = teacher_settings(proxy.base_url, structured_output="none")
    frame = prompt_frame(40, "label", settings)
    frame_path, cache_path, out_path = tmp_path / "prompts.jsonl", tmp_path / "cache.sqlite", tmp_path / "out.jsonl"
    frame.to_json(frame_path, orient="records", lines=True)
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    command = [sys.executable, str(worker), str(frame_path), json.dumps(settings), str(cache_path), str(out_path)]
    process = subprocess.Popen(command, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        while cache_rows(cache_path) < 6 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "the worker finished (or died) before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert not out_path.exists()
    proxy.wait_idle()
    cache = ResponseCache(cache_path)
    stored = len(cache)
    assert 6 <= stored < 40

    proxy.plan = FaultPlan()
    proxy.reset()
    out = run(frame, settings, cache, max_failure_share=0.0)
    out.to_json(out_path, orient="records", lines=True)
    assert proxy.stats()["received"] == 40 - stored  # the cached answers are not requested again
    assert proxy.stats()["max_received_per_body"] == 1
    final = pd.read_json(out_path, orient="records", lines=True)
    assert final["id"].tolist() == frame["id"].tolist()
    assert int(final["cached"].sum()) == stored and final["raw_output"].notna().all()
    assert len(cache) == 40


# -- the API key -----------------------------------------------------------------------------------


def test_missing_api_key_names_the_variable_on_first_request(monkeypatch, tmp_path):
    monkeypatch.delenv("SYNTHDISTILL_TEST_KEY", raising=False)
    settings = teacher_settings("http://127.0.0.1:9/v1", api_key_env="SYNTHDISTILL_TEST_KEY")
    teacher = make_teacher(settings)  # building and rendering need no key
    frame = prompt_frame(2, "label", settings)
    assert teacher.render([{"role": "user", "content": "hi"}])
    with pytest.raises(SynthDistillError, match="environment variable SYNTHDISTILL_TEST_KEY") as raised:
        teacher.complete(request())
    assert "api_key_env" in str(raised.value)
    # Through the engine, every item records it and the job stops naming the variable.
    with pytest.raises(SynthDistillError, match="SYNTHDISTILL_TEST_KEY"):
        run(frame, settings, ResponseCache(tmp_path / "cache.sqlite"), max_failure_share=0.1)


def test_api_key_never_appears_in_errors_logs_or_repr(monkeypatch, caplog):
    secret = "sk-test-" + "a1b2c3d4e5f6" * 3
    monkeypatch.setenv("SYNTHDISTILL_TEST_KEY", secret)
    plan = FaultPlan(schedule=["rate_limit", "unauthorized"], retry_after=["0"])
    with FaultProxy("fake", plan) as fake, caplog.at_level(logging.DEBUG):
        teacher = make_teacher(teacher_settings(fake.base_url, api_key_env="SYNTHDISTILL_TEST_KEY"))
        with pytest.raises(TeacherRequestError) as raised:
            teacher.complete(request())  # 429 (retried), then a 401 whose body echoes the key
    assert raised.value.status_code == 401 and "Incorrect API key provided: ***" in str(raised.value)
    assert secret not in str(raised.value) and secret not in repr(raised.value)
    assert secret not in repr(teacher) and secret not in json.dumps(teacher.identity)
    assert secret not in caplog.text
    assert os.environ["SYNTHDISTILL_TEST_KEY"] == secret


@pytest.mark.slow
def test_concurrent_requests_share_their_busy_time_and_a_cached_rerun_keeps_it(proxy, tmp_path):
    # 0.3 s added per request with 4 in flight: latencies overlap, so their sum would count the
    # same wall time several times over; the busy-time shares must add up to at most the wall time.
    proxy.plan = FaultPlan(latency_s=0.3)
    settings = teacher_settings(proxy.base_url, structured_output="none", concurrency=4)
    frame = prompt_frame(12, "label", settings)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    start = time.perf_counter()
    first = run(frame, settings, cache)
    wall = time.perf_counter() - start
    assert first["compute_s"].notna().all() and not first["cached"].any()
    assert first["compute_s"].sum() <= wall
    assert first["compute_s"].sum() < 0.6 * first["latency_s"].sum()
    # A request's share lies between its latency over the most requests in flight and its latency.
    assert (first["compute_s"] >= first["latency_s"] / 4 - 1e-3).all()
    assert (first["compute_s"] <= first["latency_s"] + 1e-3).all()

    proxy.reset()
    second = run(frame, settings, cache)  # every answer from the cache: the shares measured when paid
    assert proxy.stats()["received"] == 0 and second["cached"].all()
    assert second["compute_s"].tolist() == pytest.approx(first["compute_s"].tolist())
