"""The hf_inference backend against llama-cpp-python's OpenAI-compatible server on the loopback interface."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import httpx2
import pandas as pd
import pytest
from huggingface_hub.errors import HfHubHTTPError

from synthdistill import SynthDistillError
from synthdistill.annotation.cache import ResponseCache
from synthdistill.annotation.engine import annotate
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.teachers import make_teacher
from synthdistill.annotation.teachers.base import Request
from synthdistill.annotation.teachers.http_retry import TeacherRequestError
from synthdistill.data.model_refs import resolve_model_ref

from .conftest import LABELS, REPO, SMOLLM2, annotate_settings
from .servers import FaultPlan, FaultProxy

TEXTS = [
    "Norvik Systems raised its full-year profit guidance after record third-quarter sales.",
    "Halden Foods will cut 300 jobs and close two plants as demand keeps falling.",
    "The annual general meeting of Corvel Oyj will be held in Espoo on 3 May.",
]
GENERATION = {"temperature": 0.7, "top_p": 0.95, "seed": 0, "max_tokens": 8}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    """llama-cpp-python's server with SmolLM2, on 127.0.0.1 only; stopped after the module."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", resolve_model_ref(SMOLLM2)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_threads", "2", "--n_ctx", "2048"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within 90 s:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def teacher_for(url: str, **settings):
    return make_teacher(
        {"backend": "hf_inference", "model": "smollm2", "base_url": f"{url}/v1", "token_env": None, **settings}
    )


def prompt_frame() -> pd.DataFrame:
    template = load_template(REPO / "config" / "prompts" / "label.txt")
    return pd.DataFrame(
        {
            "id": [f"t{i}" for i in range(len(TEXTS))],
            "split": "train",
            "text": TEXTS,
            "messages": [json.dumps(messages_for(template, t, LABELS)) for t in TEXTS],
        }
    )


@pytest.mark.slow
def test_labels_come_back_through_the_engine_and_reruns_use_the_cache(server_url, tmp_path):
    # llama-cpp-python's server takes {"type": "json_object", "schema": ...} for constrained decoding.
    teacher = teacher_for(server_url, structured_output="json_object", concurrency=2)
    assert teacher.identity["base_url"] == f"{server_url}/v1" and teacher.identity["backend"] == "hf_inference"
    calls = []
    complete = teacher.complete
    teacher.complete = lambda request: calls.append(request) or complete(request)
    cache = ResponseCache(tmp_path / "c.sqlite")
    settings = dict(kind="label", labels=LABELS, generation={**GENERATION, "structured": True})

    frame = annotate(prompt_frame(), teacher, cache, iteration=0, **settings, **annotate_settings())
    assert len(calls) == 3 and list(frame["id"]) == ["t0", "t1", "t2"]
    assert (frame["parse_status"] == "ok").all(), frame[["raw_output", "parse_status", "error"]]
    assert frame["label"].isin(LABELS).all()
    assert (frame["input_tokens"] > 20).all() and (frame["output_tokens"] > 0).all()

    again = annotate(prompt_frame(), teacher, cache, iteration=0, **settings, **annotate_settings())
    assert len(calls) == 3  # no request: every answer came from the cache
    assert again["cached"].all() and again["raw_output"].tolist() == frame["raw_output"].tolist()


@pytest.mark.slow
def test_unconstrained_answers_are_parsed_strictly(server_url, tmp_path):
    frame = annotate(
        prompt_frame(),
        teacher_for(server_url),
        ResponseCache(tmp_path / "c.sqlite"),
        kind="label",
        labels=LABELS,
        generation={**GENERATION, "structured": False},
        iteration=0,
        **annotate_settings(
            max_failure_share=1.0
        ),  # SmolLM2 writes off-format answers; they are counted, not a reason to stop here
    )
    assert frame["error"].isna().all() and (frame["output_tokens"] > 0).all()
    assert frame["label"].dropna().isin(LABELS).all()


@pytest.mark.slow
def test_label_scores_match_the_openai_backend(server_url, tmp_path):
    # huggingface_hub's ChatCompletionOutput carries logprobs in OpenAI's shape, so both backends share
    # the mapping to labels and must agree on the same server.
    settings = dict(kind="label_scores", labels=LABELS, generation=GENERATION, iteration=0)
    # llama.cpp reuses the previous prompt's matching prefix, which changes the logits slightly (enough to
    # change which alternatives make the top 20). So both backends send the same requests in the same
    # order, one at a time, after the same warm-up request: the server is then in the same state for each.
    warm_up = Request(
        messages=[{"role": "user", "content": "Warm up."}], max_tokens=1, temperature=0.0, top_p=1.0, seed=None
    )
    hf_teacher = teacher_for(server_url, concurrency=1)
    hf_teacher.complete(warm_up)
    frame = annotate(
        prompt_frame(),
        hf_teacher,
        ResponseCache(tmp_path / "hf.sqlite"),
        **settings,
        **annotate_settings(),
    )
    openai_teacher = make_teacher(
        {"backend": "openai", "model": "smollm2", "base_url": f"{server_url}/v1", "api_key_env": None, "concurrency": 1}
    )
    openai_teacher.complete(warm_up)
    expected = annotate(
        prompt_frame(),
        openai_teacher,
        ResponseCache(tmp_path / "openai.sqlite"),
        **settings,
        **annotate_settings(),
    )
    probs = [f"prob_{label}" for label in LABELS]
    assert (frame["parse_status"] == "ok").all(), frame[["raw_output", "error"]]
    assert frame[probs].sum(axis=1).to_numpy() == pytest.approx(1.0)
    assert frame[probs].to_numpy() == pytest.approx(expected[probs].to_numpy(), abs=1e-6)
    assert frame["label"].tolist() == expected["label"].tolist()


@pytest.mark.slow
def test_http_errors_fail_at_once_and_connection_errors_are_retried(server_url):
    request = Request(messages=[{"role": "user", "content": "hi"}], max_tokens=2, temperature=0.0, top_p=1.0, seed=0)
    with pytest.raises(TeacherRequestError, match="HTTP 404") as not_found:
        make_teacher({"backend": "hf_inference", "base_url": f"{server_url}/nowhere", "token_env": None}).complete(
            request
        )
    assert not_found.value.status_code == 404 and not_found.value.attempts == 1
    closed = teacher_for(f"http://127.0.0.1:{free_port()}", max_retries=2, retry_initial_s=0.01)
    with pytest.raises(TeacherRequestError, match="connection failed") as refused:
        closed.complete(request)
    assert refused.value.attempts == 3


def test_a_200_with_its_json_cut_short_is_retried():
    """Issue 25, item 18, for this backend too: half a JSON body is a failed request, never an answer."""
    request = Request(messages=[{"role": "user", "content": "hi"}], max_tokens=2, temperature=0.0, top_p=1.0, seed=0)
    with FaultProxy("fake", FaultPlan(schedule=["malformed", "cut"])) as fake:
        teacher = teacher_for(fake.base_url.removesuffix("/v1"), max_retries=2, retry_initial_s=0.01)
        assert teacher.complete(request).text in LABELS
        assert fake.stats()["faults"] == {"malformed": 1, "cut": 1} and fake.stats()["received"] == 3


def test_retry_after_is_honoured_on_429(monkeypatch):
    teacher = make_teacher({"backend": "hf_inference", "model": "m", "base_url": "http://127.0.0.1:9/v1"})
    url = "http://127.0.0.1:9/v1/chat/completions"
    throttled = httpx2.Response(429, headers={"Retry-After": "0.3"}, request=httpx2.Request("POST", url))
    answer = {
        "id": "x",
        "created": 0,
        "model": "m",
        "system_fingerprint": "",
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "neutral"}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
    }

    class FlakyClient:
        calls = 0

        def chat_completion(self, **kwargs):
            FlakyClient.calls += 1
            if FlakyClient.calls == 1:
                raise HfHubHTTPError("429 Too Many Requests", response=throttled)
            from huggingface_hub import ChatCompletionOutput

            return ChatCompletionOutput.parse_obj_as_instance(answer)

    teacher._client = FlakyClient()
    request = Request(messages=[{"role": "user", "content": "hi"}], max_tokens=2, temperature=0.0, top_p=1.0, seed=0)
    start = time.monotonic()
    completion = teacher.complete(request)
    assert FlakyClient.calls == 2 and time.monotonic() - start >= 0.3
    assert (completion.text, completion.input_tokens, completion.output_tokens) == ("neutral", 7, 1)


def test_rendering_needs_no_token_but_the_router_does(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("MY_HF_TOKEN", "")
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)  # no stored login either
    teacher = make_teacher(
        {"backend": "hf_inference", "model": "org/model", "provider": "together", "token_env": "MY_HF_TOKEN"}
    )
    messages = [{"role": "user", "content": "héllo"}]
    assert json.loads(teacher.render(messages)) == messages
    assert teacher.identity == {
        "backend": "hf_inference",
        "model": "org/model",
        "base_url": None,
        "provider": "together",
    }
    request = Request(messages=messages, max_tokens=2, temperature=0.0, top_p=1.0, seed=None)
    with pytest.raises(SynthDistillError, match="MY_HF_TOKEN"):
        teacher.complete(request)
    # label_scores prompts are supported (see test_label_scores_match_the_openai_backend) and ask for the
    # answer token's alternatives.
    scores = Request(messages=messages, max_tokens=1, temperature=0.0, top_p=1.0, seed=None, score_labels=LABELS)
    kwargs = teacher.request_kwargs(scores)
    assert (kwargs["max_tokens"], kwargs["logprobs"], kwargs["top_logprobs"]) == (1, True, 20)
    with pytest.raises(SynthDistillError, match="exclude each other"):
        make_teacher(
            {"backend": "hf_inference", "model": "m", "base_url": "http://127.0.0.1:9", "provider": "together"}
        )
