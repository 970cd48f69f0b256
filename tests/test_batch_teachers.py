"""openai_batch and anthropic_batch against the loopback batch server (tests/batch_server.py), whose every
request line is answered by the real llama.cpp server running SmolLM2."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate, check_failures
from synthdistill.annotation.teachers import make_teacher
from synthdistill.metrics.costs import resolve_price, teacher_cost_row, teacher_costing
from synthdistill.tasks.base import ERROR, OK

from .batch_server import BatchServer, batch_stats, start_batch_server_process
from .conftest import LABELS, annotate_settings
from .pipeline_helpers import make_workdir
from .servers import start_llama_server, stop_process

LABEL_GEN = {"max_tokens": 4, "temperature": 0.7, "top_p": 1.0, "seed": 0, "structured": False}
FAST = {"poll_interval_s": 0.05, "poll_backoff": 1.5, "poll_max_interval_s": 0.3, "max_retries": 0}


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory):
    missing = [name for name in ("llama_cpp", "uvicorn", "fastapi") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"llama-cpp-python[server] cannot run: {', '.join(missing)} not installed")
    process, base_url = start_llama_server(log_path=tmp_path_factory.mktemp("llama") / "server.log")
    # The first completion loads the weights (about 15 s on a busy 2-core machine): not a test's time.
    body = json.dumps({"model": "smollm2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}).encode()
    request = urllib.request.Request(
        f"{base_url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=120).read()
    yield base_url
    stop_process(process)


def prompts(n: int) -> pd.DataFrame:
    texts = [f"Quarterly profit rose {i} percent." if i % 2 else f"Sales fell by {i} percent." for i in range(n)]
    messages = [
        json.dumps(
            [
                {"role": "system", "content": "Answer with one word: positive, negative or neutral."},
                {"role": "user", "content": text},
            ]
        )
        for text in texts
    ]
    return pd.DataFrame({"id": [f"i{i}" for i in range(n)], "split": "train", "messages": messages})


def teacher(kind: str, base_url: str, **settings):
    url = base_url if kind == "openai" else base_url.removesuffix("/v1")
    return make_teacher({"backend": f"{kind}_batch", "model": "smollm2", "base_url": url, **FAST, **settings})


def run(frame, batch_teacher, cache, iteration=0, kind="label", generation=LABEL_GEN, **kwargs):
    return annotate(
        frame,
        batch_teacher,
        cache,
        kind=kind,
        labels=LABELS,
        generation=generation,
        iteration=iteration,
        **annotate_settings(**{"max_failure_share": 1.0, **kwargs}),
    )


@pytest.mark.slow  # the llama.cpp server answers its batch lines
def test_openai_batch_answers_every_iteration_and_real_time_reuses_them(llama_url, tmp_path):
    frame = prompts(5)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", llama_url) as server:
        batch = teacher("openai", server.base_url)
        first = run(frame, batch, cache, iteration=0)
        second = run(frame, batch, cache, iteration=1)
        stats = batch_stats(server.base_url)
    for result in (first, second):
        assert result["error"].isna().all() and not result["cached"].any()
        assert result["raw_output"].notna().all() and (result["output_tokens"] > 0).all()
    # Each iteration is its own request with its own seed: 10 distinct lines, each submitted once.
    assert stats["submitted_lines"] == stats["distinct_custom_ids"] == 10
    assert stats["statuses"] == ["completed", "completed"]
    assert [b["status"] for b in cache.batches()] == ["completed", "completed"]
    # The real-time backend for the same model and settings finds every answer in the cache: nothing is sent
    # (its base_url would answer 404 to a chat completion).
    real_time = make_teacher({"backend": "openai", "model": "smollm2", "base_url": server.base_url, "max_retries": 0})
    assert real_time.identity == batch.identity
    again = run(frame, real_time, cache, iteration=1)
    assert again["cached"].all()
    assert again["raw_output"].tolist() == second["raw_output"].tolist()


@pytest.mark.slow  # the llama.cpp server answers its batch lines
def test_structured_output_and_label_scores_through_openai_batch(llama_url, tmp_path):
    frame = prompts(2)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", llama_url) as server:
        batch = teacher("openai", server.base_url, structured_output="json_object")
        generation = {"max_tokens": 64, "temperature": 0.0, "seed": 0, "structured": True}
        structured = run(frame, batch, cache, kind="cot_json", generation=generation)
        scores = run(frame, batch, cache, kind="label_scores", generation={"structured": False})
    assert (structured["parse_status"] == OK).all(), structured["raw_output"].tolist()
    assert scores["parse_status"].eq(OK).all()
    probs = scores[[f"prob_{label}" for label in LABELS]].to_numpy()
    assert abs(probs.sum(axis=1) - 1).max() < 1e-6


@pytest.mark.slow  # the llama.cpp server answers its batch lines
def test_errored_and_expired_lines_are_resubmitted_once_each(llama_url, tmp_path):
    frame = prompts(8)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", llama_url, fail_share=0.5, expire_after=3) as server:
        result = run(frame, teacher("openai", server.base_url), cache)
        stats = batch_stats(server.base_url)
    # SmolLM2 often answers no label; what matters here is that every request got an answer.
    assert result["error"].isna().all() and (result["parse_status"] != ERROR).all()
    assert stats["statuses"][0] == "expired" and "completed" in stats["statuses"]
    # The first batch answered 3 lines (some of them injected errors) before it expired; every other line
    # came back once more and every injected error was resubmitted once, nothing else.
    expired = 8 - 3
    assert stats["injected_failures"] > 0
    assert stats["submitted_lines"] == 8 + expired + stats["injected_failures"]
    assert stats["distinct_custom_ids"] == 8
    assert len(cache) == 8


@pytest.mark.slow  # the llama.cpp server answers its batch lines
def test_lines_failing_past_the_retry_cap_are_failures_with_their_error_and_a_rerun_asks_again(llama_url, tmp_path):
    frame = prompts(6)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", llama_url, fail_share=0.5) as server:
        batch = teacher("openai", server.base_url, batch_max_retries=0)
        first = run(frame, batch, cache)
        failed = batch_stats(server.base_url)["injected_failures"]
        assert failed > 0
        assert (first["parse_status"] == ERROR).sum() == failed
        assert first["error"].dropna().str.contains("HTTP 500").all()
        with pytest.raises(SynthDistillError, match=f"{failed} request errors"):
            check_failures(first, 0.0, cache.path, False)
        result = run(frame, batch, cache)  # the failures once more, the rest cached
        stats = batch_stats(server.base_url)
    assert result["cached"].sum() == 6 - failed and result["error"].isna().all()
    assert stats["submitted_lines"] == 6 + failed


@pytest.mark.slow  # the llama.cpp server answers its batch lines
def test_first_run_failure_message_names_the_batch_error(llama_url, tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", llama_url, fail_share=1.0) as server:
        result = run(prompts(2), teacher("openai", server.base_url, batch_max_retries=0), cache)
    assert (result["parse_status"] == ERROR).all()
    assert result["error"].str.contains("errored: HTTP 500").all(), result["error"].tolist()


def test_batches_are_split_by_request_and_byte_limits(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake") as server:
        run(prompts(7), teacher("openai", server.base_url, batch_max_requests=3), cache)
        by_count = [b["requests"] for b in cache.batches()]
        line_bytes = len(json.dumps(teacher("openai", server.base_url).line("k" * 64, _request())).encode())
        run(prompts(4), teacher("openai", server.base_url, batch_max_bytes=2 * line_bytes + 200), cache, iteration=1)
        by_bytes = [b["requests"] for b in cache.batches()][len(by_count) :]
        with pytest.raises(SynthDistillError, match="more than batch_max_bytes=100"):
            run(prompts(1), teacher("openai", server.base_url, batch_max_bytes=100), cache, iteration=2)
    assert by_count == [3, 3, 1]
    assert by_bytes == [2, 2]


def _request():
    from synthdistill.annotation.requests import build_request

    return build_request(json.loads(prompts(1)["messages"][0]), "label", LABELS, LABEL_GEN, 0)


@pytest.mark.slow  # the llama.cpp server answers its batch lines
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_server_restart_while_a_batch_is_in_progress(llama_url, tmp_path, kind):
    state = tmp_path / "state"
    state.mkdir()
    (state / "HOLD").touch()
    process, base_url = start_batch_server_process(state, llama_url)
    port = int(base_url.split(":")[2].split("/")[0])
    outcome: dict = {}

    def annotate_in_thread() -> None:  # a SQLite connection belongs to the thread that opened it
        cache = ResponseCache(tmp_path / "cache.sqlite")
        outcome["frame"] = run(prompts(4), teacher(kind, base_url, max_retries=8), cache)

    worker = threading.Thread(target=annotate_in_thread)
    worker.start()
    try:
        _wait(lambda: batch_stats(base_url)["statuses"] == ["in_progress"])
        process.send_signal(signal.SIGKILL)
        process.wait()
        time.sleep(0.5)  # the client polls a dead server and retries
        process, base_url = start_batch_server_process(state, llama_url, port=port)
        (state / "HOLD").unlink()
        worker.join(120)
        stats = batch_stats(base_url)
    finally:
        stop_process(process)
    assert not worker.is_alive()
    assert outcome["frame"]["error"].isna().all()
    assert stats["submitted_lines"] == stats["distinct_custom_ids"] == 4 and stats["statuses"] == ["completed"]


def _wait(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def test_queue_limit_stops_with_a_clear_message_openai_and_anthropic(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake", queue_limit=0) as server:
        for kind in ("openai", "anthropic"):
            with pytest.raises(SynthDistillError, match="batch queue limit is reached"):
                run(prompts(2), teacher(kind, server.base_url), cache)


def test_a_batch_created_by_a_run_killed_before_recording_its_id_is_found_not_resubmitted(tmp_path):
    import openai

    from synthdistill.annotation.cache import cache_key
    from synthdistill.annotation.requests import build_request

    frame = prompts(3)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake") as server:
        batch = teacher("openai", server.base_url)
        requests = [build_request(json.loads(m), "label", LABELS, LABEL_GEN, 0) for m in frame["messages"]]
        keys = [cache_key(batch.identity, r.as_dict(), 0) for r in requests]
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        # What a run killed right after the create call leaves: the upload recorded as pending, the batch
        # created at the provider, its id never written down.
        data = "".join(json.dumps(batch.line(k, r)) + "\n" for k, r in zip(keys, requests, strict=True)).encode()
        uploaded = client.files.create(file=("in.jsonl", data), purpose="batch")
        entries = [(k, r.as_dict()) for k, r in zip(keys, requests, strict=True)]
        cache.record_batch(f"pending:{uploaded.id}", "openai_batch", "creating", entries, input_file_id=uploaded.id)
        created = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        # And an upload of the same requests whose run died before its create call: no batch holds that
        # file, so it is marked never created; its requests are in the batch found above, not sent again.
        orphan = client.files.create(file=("in.jsonl", data), purpose="batch")
        cache.record_batch(f"pending:{orphan.id}", "openai_batch", "creating", entries, input_file_id=orphan.id)
        result = run(frame, batch, cache, max_failure_share=0.0)
        stats = batch_stats(server.base_url)
    assert result["error"].isna().all()
    assert stats["submitted_lines"] == 3 and stats["batches"] == 1
    ledger = {b["batch_id"]: b["status"] for b in cache.batches()}
    assert ledger == {created.id: "completed", f"pending:{orphan.id}": "never_created"}


def test_a_batch_refused_for_the_queue_limit_waits_for_a_running_one_and_uses_no_retry(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake", queue_limit=1, line_delay_s=0.3) as server:
        # batch_max_retries=0: a refusal counted as a retry would make the second pair failures.
        batch = teacher("openai", server.base_url, batch_max_requests=2, batch_max_retries=0)
        result = run(prompts(4), batch, cache, max_failure_share=0.0)
        stats = batch_stats(server.base_url)
    assert result["error"].isna().all()
    assert stats["statuses"] == ["completed", "failed", "completed"]
    assert [b["status"] for b in cache.batches()] == ["completed", "failed", "completed"]


def test_sharded_jobs_submit_and_resume_only_their_own_requests(tmp_path):
    from synthdistill.annotation.shards import select_shard

    frame = prompts(6)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake") as server:
        batch = teacher("openai", server.base_url)
        shards = [run(select_shard(frame, shard, 2), batch, cache) for shard in (0, 1)]
        stats = batch_stats(server.base_url)
    assert sorted(pd.concat(shards)["id"]) == sorted(frame["id"])
    held = [set(cache.batch_entries(b["batch_id"])) for b in cache.batches()]
    assert len(held) == 2 and not held[0] & held[1]
    assert stats["submitted_lines"] == stats["distinct_custom_ids"] == 6


@pytest.mark.slow  # the llama.cpp server answers its batch lines
def test_anthropic_message_batches_with_errors_and_expiry(llama_url, tmp_path):
    frame = prompts(6)
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", llama_url, fail_share=0.3, expire_after=2) as server:
        anthropic = teacher("anthropic", server.base_url)
        result = run(frame, anthropic, cache)
        again = run(frame, anthropic, cache)
        stats = batch_stats(server.base_url)
    assert result["error"].isna().all() and (result["output_tokens"] > 0).all()
    assert again["cached"].all()
    assert stats["statuses"][0] == "expired"
    assert stats["submitted_lines"] == 6 + (6 - 2) + stats["injected_failures"]
    assert anthropic.identity == {"backend": "anthropic", "base_url": anthropic.base_url, "model": "smollm2"}


def test_anthropic_refuses_label_scores_and_structured_prompts_before_submitting(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake") as server:
        anthropic = teacher("anthropic", server.base_url)
        with pytest.raises(SynthDistillError, match="log-probabilities"):
            run(prompts(2), anthropic, cache, kind="label_scores", generation={})
        with pytest.raises(SynthDistillError, match="structured"):
            run(prompts(2), anthropic, cache, generation={**LABEL_GEN, "structured": True})
        assert batch_stats(server.base_url)["submitted_lines"] == 0


def test_report_teacher_cost_table_says_batch_pricing(tmp_path):
    from synthdistill.reporting.tables import teacher_cost_table

    stats = tmp_path / "stats.json"
    annotation = {"iterations": 1, "answers": 4, "input_tokens": 4000, "output_tokens": 400}
    stats.write_text(
        json.dumps({"annotation": {**annotation, "latency_p50_s": 1, "latency_p95_s": 1}, "vote": {"items": 4}})
    )
    price = {"input_per_1m_tokens": 1.0, "output_per_1m_tokens": 4.0}
    rows = teacher_cost_table(
        [
            {
                "teacher": "gpt_batch",
                "prompt": "label",
                "stats": str(stats),
                "costing": teacher_costing("gpt_batch", {"backend": "openai_batch", "price": price}, None),
            },
            {
                "teacher": "gpt",
                "prompt": "label",
                "stats": str(stats),
                "costing": teacher_costing("gpt", {"backend": "openai", "price": price}, None),
            },
        ]
    )
    assert rows["pricing"].tolist() == ["batch", "real-time"]
    assert rows["cost_usd"][0] == pytest.approx(rows["cost_usd"][1] / 2)
    assert rows["cost_usd_at_real_time_prices"][0] == pytest.approx(rows["cost_usd"][1])


def test_batch_prices_and_the_cost_row_says_which():
    stats = {
        "annotation": {
            "iterations": 1,
            "answers": 10,
            "input_tokens": 1_000_000,
            "output_tokens": 100_000,
            "latency_p50_s": 1.0,
            "latency_p95_s": 2.0,
        },
        "vote": {"items": 10},
    }
    price = {"input_per_1m_tokens": 2.0, "output_per_1m_tokens": 8.0}
    batch = teacher_cost_row(stats, teacher_costing("gpt", {"backend": "openai_batch", "price": price}, None))
    real = teacher_cost_row(stats, teacher_costing("gpt", {"backend": "openai", "price": price}, None))
    assert real["pricing"] == "real-time" and batch["pricing"] == "batch"
    assert real["cost_usd"] == pytest.approx(2.8) and batch["cost_usd"] == pytest.approx(1.4)
    assert batch["cost_usd_at_real_time_prices"] == pytest.approx(2.8)
    assert "50% batch discount" in batch["method"]
    explicit = resolve_price({**price, "batch_input_per_1m_tokens": 1.5, "batch_output_per_1m_tokens": 4.0}, "x_batch")
    assert explicit["pricing"] == "real-time"  # only batch backends get batch prices
    explicit = resolve_price(
        {**price, "batch_input_per_1m_tokens": 1.5, "batch_output_per_1m_tokens": 4.0}, "anthropic_batch"
    )
    assert (explicit["input_per_1m_tokens"], explicit["output_per_1m_tokens"]) == (1.5, 4.0)
    assert resolve_price({**price, "batch_discount": 0.4}, "openai_batch")["input_per_1m_tokens"] == pytest.approx(1.2)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_snakemake_killed_while_polling_resubmits_nothing_and_loses_nothing(llama_url, tmp_path, kind):
    state = tmp_path / "state"
    state.mkdir()
    (state / "HOLD").touch()
    process, base_url = start_batch_server_process(state, llama_url)
    try:
        batch_teacher = {
            "backend": f"{kind}_batch",
            "model": "smollm2",
            "base_url": base_url if kind == "openai" else base_url.removesuffix("/v1"),
            **FAST,
            "temperature": 0.7,
        }
        workdir = make_workdir(
            tmp_path,
            teachers={"smol": {**batch_teacher, "price": {"input_per_1m_tokens": 2.0, "output_per_1m_tokens": 8.0}}},
            prompts={"label": {"template": "config/prompts/label.txt", "kind": "label", "max_tokens": 4}},
            self_consistency={"iterations": 2},
        )
        targets = [f"results/annotations/smol/label/iter{i}.parquet" for i in (0, 1)]
        command = [sys.executable, "-m", "snakemake", "--cores", "2", *targets]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        first = subprocess.Popen(
            command, cwd=workdir, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # Both iterations' batches submitted and held in progress: the jobs are polling.
        _wait(lambda: batch_stats(base_url)["statuses"] == ["in_progress", "in_progress"], 120)
        submitted = batch_stats(base_url)["submitted_lines"]
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        with sqlite3.connect(tmp_path / "cache" / "responses.sqlite") as db:
            recorded = db.execute("SELECT COUNT(*) FROM batch_requests").fetchone()[0]
        assert recorded == submitted
        (state / "HOLD").unlink()
        subprocess.run([*command, "--unlock"], cwd=workdir, env=env, check=True, capture_output=True)
        rerun = subprocess.run(
            [*command, "--rerun-incomplete"], cwd=workdir, env=env, capture_output=True, text=True, timeout=600
        )
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        stats = batch_stats(base_url)
    finally:
        stop_process(process)
    assert stats["submitted_lines"] == stats["distinct_custom_ids"] == submitted
    assert stats["statuses"] == ["completed", "completed"]
    frames = [pd.read_parquet(workdir / target) for target in targets]
    assert sum(len(f) for f in frames) == submitted  # every request has its row: nothing lost
    assert all(f["error"].isna().all() for f in frames)


# Faults of the provider itself (tests/batch_server.py's switches), through the real client libraries.

DONE = {"openai": "completed", "anthropic": "ended"}  # a finished batch's status


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", ["drop_after", "slow_after", "drop_before"])
def test_a_create_whose_answer_is_lost_makes_one_batch_not_two(tmp_path, kind, fault):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake", create_faults=(fault,), create_delay_s=1.5) as server:
        # A client library allowed to retry (max_retries=2) that waits 0.5 s for an answer: left to itself it
        # sends the create again after drop_after and slow_after, and the provider makes a second batch.
        batch = teacher(kind, server.base_url, max_retries=2, timeout_s=0.5)
        result = run(prompts(4), batch, cache, max_failure_share=0.0)
        stats = batch_stats(server.base_url)
    assert result["error"].isna().all()
    assert stats["batches"] == 1, stats
    assert stats["submitted_lines"] == stats["distinct_custom_ids"] == 4
    assert [b["status"] for b in cache.batches()] == [DONE[kind]]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_batch_made_after_the_last_look_stays_pending_and_the_rerun_finds_it(tmp_path, kind):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake", create_faults=("slow_before",), create_delay_s=2.5) as server:
        # The provider makes the batch 2.5 s into a create the client gave up on after 1 s, after the look.
        batch = teacher(kind, server.base_url, max_retries=0, timeout_s=1.0)
        with pytest.raises(SynthDistillError, match="a rerun looks for the batch again") as failed:
            run(prompts(3), batch, cache)
        (pending,) = [b["batch_id"] for b in cache.batches()]
        assert pending.startswith("pending:") and pending in str(failed.value)
        _wait(lambda: batch_stats(server.base_url)["batches"] == 1)
        result = run(prompts(3), batch, cache, max_failure_share=0.0)
        stats = batch_stats(server.base_url)
    assert result["error"].isna().all()
    assert stats["batches"] == 1 and stats["submitted_lines"] == 3
    assert [b["status"] for b in cache.batches()] == [DONE[kind]]


def test_an_anthropic_batch_found_after_a_lost_create_is_never_one_the_ledger_already_holds(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake", create_faults=("none", "drop_after")) as server:
        batch = teacher("anthropic", server.base_url, max_retries=2)
        run(prompts(3), batch, cache, iteration=0)
        # Iteration 1 is as many requests, created a moment later: only the ledger tells the two batches apart.
        result = run(prompts(3), batch, cache, iteration=1, max_failure_share=0.0)
        stats = batch_stats(server.base_url)
    assert result["error"].isna().all() and len(cache) == 6
    assert stats["batches"] == 2 and stats["submitted_lines"] == 6
    assert [b["status"] for b in cache.batches()] == ["ended", "ended"]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_truncated_results_line_costs_only_its_own_request(tmp_path, kind):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake", truncate_line=3) as server:
        batch = teacher(kind, server.base_url, batch_max_retries=0)
        first = run(prompts(6), batch, cache)
        batch_id = cache.batches()[0]["batch_id"]
        # Every readable line is stored; the damaged one is a failed request, named by batch, file and line.
        assert len(cache) == 5
        errors = first["error"].dropna().tolist()
        assert len(errors) == 1 and batch_id in errors[0] and "line 3 of" in errors[0], errors
        assert ("file file-" if kind == "openai" else "/results") in errors[0]
        again = run(prompts(6), batch, cache, max_failure_share=0.0)  # asks for that one alone
        stats = batch_stats(server.base_url)
    assert again["error"].isna().all() and again["cached"].sum() == 5
    assert stats["submitted_lines"] == 7 and len(stats["resubmitted"]) == 1


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_truncated_results_line_is_asked_again_in_the_follow_up_batch(tmp_path, kind):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake", truncate_line=2) as server:
        result = run(prompts(4), teacher(kind, server.base_url), cache, max_failure_share=0.0)
        stats = batch_stats(server.base_url)
    assert result["error"].isna().all() and len(cache) == 4
    assert stats["batches"] == 2 and stats["submitted_lines"] == 5


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_results_line_cut_before_its_custom_id_fails_its_request_naming_batch_file_and_line(tmp_path, kind):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake", truncate_line=2, truncate_keep=10) as server:
        result = run(prompts(4), teacher(kind, server.base_url, batch_max_retries=0), cache)
        batch_id = cache.batches()[0]["batch_id"]
    # Whose line it was cannot be read; the request left without a result says why.
    assert len(cache) == 3
    errors = result["error"].dropna().tolist()
    assert len(errors) == 1 and batch_id in errors[0] and "no result for this request" in errors[0]
    assert "1 result lines could not be read" in errors[0] and "line 2 of" in errors[0], errors


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_an_answer_and_an_error_line_for_one_request_keep_the_answer(tmp_path, kind, caplog):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with BatchServer(tmp_path / "state", "fake", duplicate_error_line=2) as server:
        with caplog.at_level("WARNING", logger="synthdistill"):
            result = run(prompts(4), teacher(kind, server.base_url), cache, max_failure_share=0.0)
        stats = batch_stats(server.base_url)
    assert result["error"].isna().all() and len(cache) == 4
    assert stats["batches"] == 1 and stats["submitted_lines"] == 4  # nothing paid twice
    assert any("the answer is kept" in r.getMessage() for r in caplog.records)  # the error line is logged


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_batch_the_provider_no_longer_knows_stops_the_job_until_resubmit_is_asked_for(tmp_path, kind):
    frame = prompts(3)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "HOLD").touch()
    outcome: dict = {}
    process, url = start_batch_server_process(tmp_path / "a", "fake")
    port = int(url.split(":")[2].split("/")[0])

    def annotate_in_thread() -> None:  # a SQLite connection belongs to the thread that opened it
        try:
            run(frame, teacher(kind, url, max_retries=8), ResponseCache(tmp_path / "cache.sqlite"))
        except Exception as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=annotate_in_thread)
    worker.start()
    cache = ResponseCache(tmp_path / "cache.sqlite")

    def polling() -> bool:  # the batch is made and its id recorded: the create call has returned
        recorded = [b["batch_id"] for b in cache.batches()]
        return len(recorded) == 1 and not recorded[0].startswith("pending:")

    try:
        _wait(polling)
    finally:
        process.send_signal(signal.SIGKILL)  # the job polls on; the provider at this URL is now another project
        process.wait()
    (batch_id,) = [b["batch_id"] for b in cache.batches()]
    with BatchServer(tmp_path / "b", "fake", port=port) as second:
        worker.join(60)
        assert isinstance(outcome.get("error"), SynthDistillError), outcome
        for error in (outcome["error"], _raised(lambda: run(frame, teacher(kind, url), cache))):
            message = str(error)
            assert batch_id in message and "404" in message and "annotate.batch_missing: resubmit" in message
        assert batch_stats(second.base_url)["submitted_lines"] == 0  # never a silent resubmit
        result = run(frame, teacher(kind, url), cache, batch_missing="resubmit", max_failure_share=0.0)
        stats = batch_stats(second.base_url)
    assert result["error"].isna().all()
    assert stats["submitted_lines"] == 3 and stats["batches"] == 1
    ledger = {b["batch_id"]: b["status"] for b in cache.batches()}
    assert ledger.pop(batch_id) == "missing" and list(ledger.values()) == [DONE[kind]]


def _raised(call) -> BaseException:
    with pytest.raises(SynthDistillError) as raised:
        call()
    return raised.value
