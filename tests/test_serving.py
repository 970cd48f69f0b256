"""synthdistill-serve as a user runs it: its own process, called over HTTP on 127.0.0.1.

The student is MiniLM-L6 exported to ONNX int8 with a fresh 3-label head (its answers are near
uniform, so a threshold picks exactly which texts defer); the teacher is SmolLM2 behind llama.cpp's
OpenAI-compatible server, reached through the real annotation engine, or the fault proxy for an
outage. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from .conftest import LABELS, MINILM, REPO
from .pipeline_helpers import TINY_CONFIG
from .servers import FaultPlan, FaultProxy, free_port, stop_process, wait_for_http

pytestmark = pytest.mark.slow

TEXTS = pd.read_csv(REPO / "data" / "demo" / "financial_news_sentiment.csv")["text"].tolist()


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    """A student folder (model/ + onnx/) laid out as the pipeline writes it."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from synthdistill.data.model_refs import resolve_model_ref
    from synthdistill.students.inference import export_onnx

    folder = tmp_path_factory.mktemp("serve") / "results" / "students" / "minilm" / "smollm2" / "label"
    torch.manual_seed(0)
    source = resolve_model_ref(MINILM)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)}
    )
    model.save_pretrained(folder / "model")
    AutoTokenizer.from_pretrained(source).save_pretrained(folder / "model")
    export_onnx(folder / "model", folder / "onnx")
    return folder


def write_config(workdir: Path, teacher_url: str | None = None, **serve) -> Path:
    """The tiny pipeline config, its teacher an OpenAI-compatible server (one vote per text, no retries)."""
    config = {**TINY_CONFIG, "cache": {"path": str(workdir / "cache.sqlite")}, "serve": serve}
    config["prompts"] = {
        "label": {**TINY_CONFIG["prompts"]["label"], "template": str(REPO / "config/prompts/label.txt")}
    }
    config["self_consistency"] = {"iterations": 1}
    if teacher_url:
        config["teachers"] = {
            "smollm2": {
                "backend": "openai",
                "base_url": teacher_url,
                "model": "smollm2",
                "structured_output": "json_object",
                "temperature": 0.0,
                "seed": 0,
                "max_retries": 0,
                "timeout_s": 120,  # SmolLM2 on two busy cores
                "concurrency": 2,
            }
        }
    path = workdir / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Service:
    def __init__(self, student: Path, workdir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "synthdistill.serving.cli", str(student), "--port", str(self.port), *args]
        self.log = workdir / f"serve-{self.port}.log"
        self.headers: dict[str, str] = {}  # sent with every call
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        try:
            wait_for_http(f"{self.url}/health", 120, self.process)
        except BaseException:
            self.stop()
            raise

    def post(self, payload, raw: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        body = raw if raw is not None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}/v1/classify", data=body, method="POST", headers={**self.headers, **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(f"{self.url}{path}", headers={**self.headers, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def health(self) -> dict:
        status, body = self.get("/health")
        assert status == 200
        return json.loads(body)

    def metrics(self) -> dict[str, float]:
        status, raw = self.get("/metrics")
        assert status == 200, raw
        text = raw.decode()
        values = {}
        for line in text.splitlines():
            match = re.match(r"^(\w+(?:\{[^}]*\})?) (\S+)$", line)
            if match:
                values[match.group(1)] = float(match.group(2))
        return values

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def service_factory(tmp_path):
    started: list[Service] = []

    def start(student: Path, *args: str, env: dict[str, str] | None = None) -> Service:
        started.append(Service(student, tmp_path, *args, env=env))
        return started[-1]

    yield start
    for service in started:
        service.stop()


def student_probabilities(student: Path, texts: list[str]) -> np.ndarray:
    from synthdistill.students.inference import load_predictor

    # Batches of 8 like the service's (serve.inner_batch_size): int8 activations are quantized per batch.
    return load_predictor(student, "onnx", 64, batch_size=8).predict_proba(texts)


def test_student_alone_over_http_with_micro_batching_metrics_and_bad_requests(student, service_factory, tmp_path):
    config = write_config(tmp_path, max_texts_per_request=8, max_wait_ms=50)
    service = service_factory(student, "--configfile", str(config), "--max-length", "64")
    health = json.loads(urllib.request.urlopen(f"{service.url}/health").read())
    assert health["backend"] == "OnnxPredictor" and health["labels"] == LABELS and health["teacher"] is None
    assert health["settings"]["workers"] >= 2  # on a CPU, batches overlap by default

    status, body = service.post({"texts": TEXTS[:3]})
    assert status == 200
    expected = student_probabilities(student, TEXTS[:3])
    for result, row in zip(body["results"], expected, strict=True):
        assert result["model"] == "student"
        assert result["label"] == LABELS[int(row.argmax())]  # the same predictor code as `predict`
        assert np.allclose([result["probabilities"][k] for k in LABELS], row, atol=1e-5)
    status, body = service.post({"text": TEXTS[3]})
    assert status == 200 and len(body["results"]) == 1

    # 24 one-text requests at once: the 50 ms wait gathers them into fewer, larger batches.
    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda text: service.post({"texts": [text]}), TEXTS[10:34]))
    assert all(status == 200 for status, _ in answers)
    # int8 activations are quantized per batch, so batch companions move the fresh head's near-uniform
    # probabilities by a little: compared with a tolerance, not by argmax.
    served = np.array([[body["results"][0]["probabilities"][k] for k in LABELS] for _, body in answers])
    assert np.allclose(served, student_probabilities(student, TEXTS[10:34]), atol=0.01)

    bad = [
        ({"texts": []}, 422, '"texts" is empty'),
        ({"texts": ["fine", "  "]}, 422, "texts[1] is empty"),
        ({"texts": ["fine", 7]}, 422, "texts[1] must be a string, not int"),
        ({"texts": "one"}, 422, '"texts" must be a list of strings'),
        ({"texts": ["a"] * 9}, 413, "at most 8 per request (serve.max_texts_per_request)"),
        ({"query": "x"}, 422, "unknown field 'query'"),
        ({"text": "a", "texts": ["b"]}, 422, "exactly one of"),
    ]
    for payload, code, message in bad:
        status, body = service.post(payload)
        assert (status, message in body["error"]) == (code, True), (payload, status, body)
    status, body = service.post(None, raw=b"{not json")
    assert status == 400 and "not valid JSON" in body["error"]

    metrics = service.metrics()
    assert metrics['synthdistill_requests_total{status="200"}'] == 26
    assert metrics['synthdistill_requests_total{status="422"}'] == 6
    assert metrics['synthdistill_requests_total{status="413"}'] == 1
    assert metrics['synthdistill_texts_total{model="student"}'] == 3 + 1 + 24
    assert metrics["synthdistill_request_latency_seconds_count"] == 34
    batches = metrics["synthdistill_student_batch_size_count"]
    assert metrics["synthdistill_student_batch_size_sum"] == 28
    assert batches < 2 + 24, "concurrent requests were not batched together"
    assert metrics["synthdistill_deferred_share"] == 0


def cache_keys(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT key FROM responses")}


def pipeline_cache_keys(config_path: Path, texts: list[str]) -> set[str]:
    """The keys the pipeline's annotate job would use for these texts (build_prompts + engine)."""
    from synthdistill.annotation.cache import cache_key
    from synthdistill.annotation.prompt_files import build_prompt_frame
    from synthdistill.annotation.requests import build_request
    from synthdistill.annotation.teachers import make_teacher
    from synthdistill.serving.deferral import load_config
    from synthdistill.settings import prompt_settings, teacher_settings

    config = load_config([config_path])
    teacher, prompt = teacher_settings(config, "smollm2"), prompt_settings(config, "label")
    items = pd.DataFrame({"id": range(len(texts)), "split": "train", "text": texts})
    frame = build_prompt_frame(items, prompt["template"], teacher, prompt, LABELS)
    identity = make_teacher(teacher).identity
    return {
        cache_key(identity, build_request(json.loads(m), "label", LABELS, {**teacher, **prompt}, 0).as_dict(), 0)
        for m in frame["messages"]
    }


def test_unsure_texts_go_to_the_llama_server_and_into_the_feedback_file(student, llama_url, service_factory, tmp_path):
    texts = TEXTS[40:52]
    confidence = student_probabilities(student, texts).max(axis=1)
    # Halfway across the widest gap between the middle confidences, so no text sits on the threshold.
    ordered = np.sort(confidence)
    gap = int(np.argmax(np.diff(ordered)[3:-3])) + 3
    threshold = float((ordered[gap] + ordered[gap + 1]) / 2)
    unsure = [text for text, c in zip(texts, confidence, strict=True) if c < threshold]
    assert 0 < len(unsure) < len(texts)
    feedback = tmp_path / "feedback.jsonl"
    with FaultProxy(llama_url) as proxy:
        config = write_config(tmp_path, teacher_url=proxy.base_url, teacher_timeout_s=300)
        service = service_factory(
            student, "--configfile", str(config), "--teacher", "smollm2", "--prompt", "label",
            "--threshold", str(threshold), "--feedback", str(feedback), "--max-length", "64",
        )  # fmt: skip
        status, body = service.post({"texts": texts})
        assert status == 200
        by_model = {r["model"] for r, c in zip(body["results"], confidence, strict=True) if c < threshold}
        assert by_model == {"teacher"}, body
        assert all(r["model"] == "student" for r, c in zip(body["results"], confidence, strict=True) if c >= threshold)
        for result in body["results"]:
            assert result["label"] in LABELS
            if result["model"] == "teacher":
                assert result["student_label"] in LABELS and sum(result["probabilities"].values()) == 1
        assert proxy.stats()["ok"] == len(unsure)

        # The same texts again: the teacher's answers come from the response cache, no new request.
        status, again = service.post({"texts": unsure})
        assert status == 200 and proxy.stats()["received"] == len(unsure)
        assert [r["label"] for r in again["results"]] == [
            r["label"] for r, c in zip(body["results"], confidence, strict=True) if c < threshold
        ]

    # The pipeline's own prompt rendering and request for these texts: the very cache entries.
    assert cache_keys(tmp_path / "cache.sqlite") == pipeline_cache_keys(config, unsure)

    lines = [json.loads(line) for line in feedback.read_text().splitlines()]
    assert [line["text"] for line in lines] == unsure * 2
    teacher_labels = {r["label"] for r in body["results"] if r["model"] == "teacher"}
    for line in lines:
        assert set(line) == {"text", "label", "teacher", "prompt", "student", "student_label", "confidence", "time"}
        assert (line["teacher"], line["prompt"], line["student"]) == ("smollm2", "label", "minilm")
        assert line["label"] in teacher_labels and line["confidence"] < threshold
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    metrics = service.metrics()
    assert metrics["synthdistill_deferred_texts_total"] == 2 * len(unsure)
    assert metrics['synthdistill_texts_total{model="teacher"}'] == 2 * len(unsure)
    assert metrics["synthdistill_deferred_share"] == pytest.approx(2 * len(unsure) / (len(texts) + len(unsure)))


def test_teacher_outage_degrades_to_the_student_without_server_errors(student, service_factory, tmp_path):
    """The first teacher call hangs past serve.teacher_timeout_s, then every call gets a 500."""
    feedback = tmp_path / "feedback.jsonl"
    plan = FaultPlan(schedule=["timeout"], slow_s=10.0, server_error=1.0)
    with FaultProxy("fake", plan) as proxy:
        # The breaker kept shut: this is how requests fare while it has not tripped (its own test is below).
        config = write_config(tmp_path, teacher_url=proxy.base_url, teacher_timeout_s=4.0, teacher_breaker_failures=100)
        service = service_factory(
            student, "--configfile", str(config), "--teacher", "smollm2", "--prompt", "label",
            "--threshold", "1.01", "--feedback", str(feedback), "--max-length", "64",
        )  # fmt: skip
        start = time.monotonic()
        status, body = service.post({"texts": TEXTS[:2]})
        assert status == 200 and 4 <= time.monotonic() - start < 8
        assert [r["model"] for r in body["results"]] == ["student-fallback"] * 2
        proxy.wait_idle()
        time.sleep(0.5)  # the timed-out call's feedback is written when it returns

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda text: service.post({"texts": [text]}), TEXTS[2:10]))
    assert [status for status, _ in answers] == [200] * 8
    assert all(body["results"][0]["model"] == "student-fallback" for _, body in answers)
    served = np.array([[body["results"][0]["probabilities"][k] for k in LABELS] for _, body in answers])
    assert np.allclose(served, student_probabilities(student, TEXTS[2:10]), atol=0.01)

    metrics = service.metrics()
    assert metrics['synthdistill_teacher_errors_total{reason="timeout"}'] == 2
    assert metrics['synthdistill_teacher_errors_total{reason="request"}'] == 8
    assert metrics['synthdistill_texts_total{model="student-fallback"}'] == 10
    assert metrics.get('synthdistill_requests_total{status="500"}', 0) == 0
    lines = [json.loads(line) for line in feedback.read_text().splitlines()]
    assert sorted(line["text"] for line in lines) == sorted(TEXTS[:10])
    assert all(line["label"] is None for line in lines)


def test_deferring_needs_a_threshold_and_names_what_is_missing(student, tmp_path, monkeypatch, capsys):
    from synthdistill.serving.cli import main

    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, teacher_url="http://127.0.0.1:9/v1")
    arguments = [str(student), "--configfile", str(config), "--prompt", "label"]
    assert main([*arguments, "--teacher", "smollm2"]) == 2
    assert "results/cascade/minilm/smollm2/label.json does not exist" in capsys.readouterr().err
    assert main([*arguments, "--teacher", "gpt", "--threshold", "0.5"]) == 2
    assert "--teacher gpt: not in teachers of the config (['smollm2'])" in capsys.readouterr().err
    (tmp_path / "summary.json").write_text('{"student": "minilm"}')
    assert main([*arguments, "--cascade", "summary.json"]) == 2
    assert "summary.json: no 'policy' object; is this a cascade file?" in capsys.readouterr().err


MULTI_LABELS = ["billing", "bug", "feature_request", "account", "praise"]


@pytest.fixture(scope="module")
def multi_label_student(tmp_path_factory) -> tuple[Path, list[str]]:
    """A multi_label student folder (sigmoid head, per-label thresholds in config.json) and texts;
    each threshold is the median of its label's scores on those texts, so every label is in some
    sets and out of others."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from synthdistill.data.model_refs import resolve_model_ref
    from synthdistill.students.inference import load_predictor

    folder = tmp_path_factory.mktemp("serve_ml") / "results" / "students" / "minilm" / "smollm2" / "labels_json"
    texts = pd.read_csv(REPO / "data" / "demo" / "support_tickets.csv")["text"].head(8).tolist()
    torch.manual_seed(0)
    source = resolve_model_ref(MINILM)
    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        num_labels=len(MULTI_LABELS),
        problem_type="multi_label_classification",
        id2label=dict(enumerate(MULTI_LABELS)),
        label2id={k: i for i, k in enumerate(MULTI_LABELS)},
    )
    model.save_pretrained(folder / "model")
    AutoTokenizer.from_pretrained(source).save_pretrained(folder / "model")
    probs = load_predictor(folder, "torch", 64, None).predict_proba(texts)
    config_path = folder / "model" / "config.json"
    config = json.loads(config_path.read_text())
    config["label_thresholds"] = dict(zip(MULTI_LABELS, map(float, np.median(probs, axis=0)), strict=True))
    config_path.write_text(json.dumps(config))
    return folder, texts


def test_a_multi_label_student_serves_label_sets_and_refuses_a_teacher(multi_label_student, service_factory, tmp_path):
    from synthdistill.students.inference import load_predictor, predicted_labels

    student, texts = multi_label_student
    config = write_config(tmp_path)
    service = service_factory(student, "--configfile", str(config), "--backend", "torch", "--max-length", "64")
    health = json.loads(urllib.request.urlopen(f"{service.url}/health").read())
    saved = json.loads((student / "model" / "config.json").read_text())["label_thresholds"]
    assert health["task"] == "multi_label" and health["labels"] == MULTI_LABELS
    assert health["thresholds"] == pytest.approx(saved) and health["teacher"] is None

    status, body = service.post({"texts": texts})
    assert status == 200
    predictor = load_predictor(student, "torch", 64, None)
    expected_probs = predictor.predict_proba(texts)
    expected_sets = [json.loads(v) for v in predicted_labels(predictor, expected_probs)]  # what `predict` writes
    served = np.array([[r["probabilities"][k] for k in MULTI_LABELS] for r in body["results"]])
    assert np.allclose(served, expected_probs, atol=1e-4)
    assert [r["labels"] for r in body["results"]] == expected_sets
    assert all(r["model"] == "student" and "label" not in r for r in body["results"])
    members = {label for labels in expected_sets for label in labels}
    assert members == set(MULTI_LABELS) and any(len(s) < len(MULTI_LABELS) for s in expected_sets)
    assert service.metrics()['synthdistill_texts_total{model="student"}'] == len(texts)

    # Deferral is single-label only: the cascade options stop the service at start, before any model loads.
    for option in (["--teacher", "smollm2", "--prompt", "label"], ["--threshold", "0.5"]):
        command = [sys.executable, "-m", "synthdistill.serving.cli", str(student), "--configfile", str(config)]
        result = subprocess.run([*command, *option], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        assert "multi_label student" in result.stderr and "single-label only" in result.stderr


def test_a_text_the_tokenizer_cannot_take_fails_only_its_own_request(student, service_factory, tmp_path):
    """A lone surrogate (half an emoji) is refused at the edge with a 400 naming the item; the 16
    clients batched beside it are all answered. A deeply nested body is a 400 too, not a 500."""
    config = write_config(tmp_path, max_wait_ms=20)
    service = service_factory(student, "--configfile", str(config), "--max-length", "64")

    def client(i: int) -> list[tuple[int, dict]]:
        if i == 0:
            return [service.post({"texts": ["fine", "ok \ud800"]}) for _ in range(10)]
        return [service.post({"texts": [TEXTS[(i * 10 + k) % len(TEXTS)]]}) for k in range(10)]

    with ThreadPoolExecutor(17) as pool:
        answers = list(pool.map(client, range(17)))
    for status, body in answers[0]:
        assert status == 400, body
        assert "texts[1] is not valid Unicode: a lone surrogate ('\\ud800') at character 3" in body["error"]
    assert [status for client_answers in answers[1:] for status, _ in client_answers] == [200] * 160
    # A whole pair of escapes is one character (an emoji), and is answered.
    assert service.post({"text": "Shares soar \ud83d\ude80"})[0] == 200

    for depth, code, message in ((100_000, 400, "nested too deeply"), (50, 422, "texts[0] must be a string")):
        status, body = service.post(None, raw=b'{"texts": ' + b"[" * depth + b"]" * depth + b"}")
        assert (status, message in body["error"]) == (code, True), body
    assert service.metrics().get('synthdistill_requests_total{status="500"}', 0) == 0


def test_a_failed_micro_batch_is_retried_request_by_request(student):
    """Past the edge, a text the student's own tokenizer fails on (the real ONNX predictor) fails only
    its request: the batch it joined runs again one request at a time."""
    import asyncio

    from synthdistill.serving.batcher import MicroBatcher
    from synthdistill.students.inference import load_predictor

    predictor = load_predictor(student, "onnx", 64, batch_size=8)

    async def serve() -> list:
        batcher = MicroBatcher(predictor.predict_proba, 32, 0.2, workers=1, split_on_failure=True)
        batcher.start()
        requests = [[TEXTS[0]], ["ok \ud800"], TEXTS[1:3]]
        answers = await asyncio.gather(*(batcher.submit(r) for r in requests), return_exceptions=True)
        await batcher.stop()
        return answers

    first, bad, rest = asyncio.run(serve())
    assert isinstance(bad, Exception)
    assert np.allclose(np.vstack([first, rest]), predictor.predict_proba(TEXTS[:3]), atol=0.01)


def test_the_body_limit_and_long_texts_cost_what_the_student_reads(student, service_factory, tmp_path):
    """A body over serve.max_body_bytes is a 413 before it is parsed (declared or chunked); a text is
    tokenized only as far as max_length tokens reach, with the very ids of the whole text."""
    import http.client

    from synthdistill.data.text_batches import FIRST_CUT_CHARS_PER_TOKEN
    from synthdistill.serving.service import ClassifierService, ServeSettings
    from synthdistill.students.inference import load_predictor

    config = write_config(tmp_path, max_body_bytes=100_000)
    service = service_factory(student, "--configfile", str(config), "--max-length", "64")
    long_text = " ".join(TEXTS * 20)[:78_000]
    status, body = service.post({"texts": [long_text, long_text]})
    assert status == 413 and "larger than 100000 bytes (serve.max_body_bytes)" in body["error"]
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    chunks = [b'{"texts": ["'] + [b"a" * 10_000] * 20 + [b'"]}']
    connection.request("POST", "/v1/classify", body=iter(chunks), encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and b"serve.max_body_bytes" in response.read()
    connection.close()
    status, body = service.post({"texts": [long_text]})  # under the limit: answered
    assert status == 200 and body["results"][0]["model"] == "student"

    predictor = load_predictor(student, "onnx", 64, batch_size=8)
    texts = [long_text, TEXTS[0], "x" * 5_000 + " tail", " " * 3_000 + TEXTS[1], long_text[:700]]
    assert predictor.batching.encode_prefixes(texts) == predictor.batching.encode(texts)
    seen: list[int] = []
    tokenizer = predictor.batching.tokenizer

    def recording(batch, **kwargs):
        seen.extend(map(len, batch))
        return tokenizer(batch, **kwargs)

    predictor.batching.tokenizer = recording
    served = ClassifierService(predictor, ServeSettings.from_config({}), "minilm", max_chars=None)._predict(
        [long_text] * 2
    )
    assert max(seen) <= 64 * FIRST_CUT_CHARS_PER_TOKEN < len(long_text) / 100
    predictor.batching.tokenizer = tokenizer
    assert np.allclose(served, predictor.predict_proba([long_text] * 2), atol=1e-6)


def test_a_large_request_shares_the_workers_with_the_requests_beside_it(student):
    """96 texts and then one text, on one worker with batches of 16: the one text rides in the next
    batch and is answered long before the 96 are (before, the 96 ran as one batch and it waited)."""
    import asyncio

    from synthdistill.serving.batcher import MicroBatcher
    from synthdistill.students.inference import load_predictor

    predictor = load_predictor(student, "onnx", 64, batch_size=8)
    sizes: list[int] = []

    async def serve() -> tuple[list[str], list]:
        batcher = MicroBatcher(predictor.predict_proba, 16, 0.0, on_batch=sizes.append, workers=1)
        batcher.start()
        order: list[str] = []
        large = batcher.submit(TEXTS[:96])
        large.add_done_callback(lambda _: order.append("large"))
        await asyncio.sleep(0.01)  # the first batch of the 96 is running
        small = batcher.submit([TEXTS[100]])
        small.add_done_callback(lambda _: order.append("small"))
        answers = await asyncio.gather(large, small)
        await batcher.stop()
        return order, answers

    order, (large, small) = asyncio.run(serve())
    assert order == ["small", "large"]
    assert max(sizes) == 16 and sum(sizes) == 97
    assert np.allclose(large, predictor.predict_proba(TEXTS[:96]), atol=0.01)
    assert np.allclose(small, predictor.predict_proba([TEXTS[100]]), atol=0.01)


class StubTeacher:
    """An OpenAI-compatible teacher on loopback that answers as the test says: ``mode`` "ok" (a chat
    completion with a label, after ``delay_s``) or "error" (500); it counts the requests it got."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from .servers import fake_completion

        stub = self
        self.mode, self.delay_s, self.requests = "ok", 0.0, 0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 (signature of the base)
                pass

            def do_POST(self):  # noqa: N802 (name fixed by http.server)
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub.lock:
                    stub.requests += 1
                    n = stub.requests
                if stub.mode == "error":
                    body, status = b'{"error": {"message": "teacher down", "type": "server_error"}}', 500
                else:
                    time.sleep(stub.delay_s)
                    body, status = json.dumps(fake_completion(request, LABELS, n)).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # close() must not wait for a handler told to hang
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_teacher():
    teacher = StubTeacher()
    yield teacher
    teacher.close()


def cascade_args(config: Path, feedback: Path) -> list[str]:
    """Every text defers (threshold above any confidence) to the config's teacher."""
    return ["--configfile", str(config), "--teacher", "smollm2", "--prompt", "label", "--threshold", "1.01",
            "--feedback", str(feedback), "--max-length", "64"]  # fmt: skip


def test_a_circuit_breaker_stops_asking_a_teacher_that_is_down(student, stub_teacher, service_factory, tmp_path):
    """After 3 texts in a row the teacher did not answer (500s), deferrals get the student's answer at
    once, without a request to the teacher, until the cool-down ends; then one request probes it:
    a 500 opens the breaker again, an answer closes it. The same for a teacher on a dead port."""
    stub_teacher.mode = "error"
    breaker = {"teacher_breaker_failures": 3, "teacher_breaker_cooldown_s": 3}
    config = write_config(tmp_path, teacher_url=stub_teacher.base_url, **breaker)
    service = service_factory(student, *cascade_args(config, tmp_path / "feedback.jsonl"))
    assert service.health()["teacher"]["breaker"]["state"] == "closed"
    for text in TEXTS[:3]:
        assert service.post({"text": text})[1]["results"][0]["model"] == "student-fallback"
    asked = stub_teacher.requests
    assert asked >= 3
    assert service.health()["teacher"]["breaker"]["state"] == "open"
    assert service.metrics()['synthdistill_teacher_breaker{synthdistill_teacher_breaker="open"}'] == 1

    with ThreadPoolExecutor(5) as pool:  # while open: answered by the student, the teacher not asked
        answers = list(pool.map(lambda text: service.post({"text": text}), TEXTS[3:8]))
    assert [body["results"][0]["model"] for _, body in answers] == ["student-fallback"] * 5
    assert stub_teacher.requests == asked
    assert service.metrics()['synthdistill_teacher_errors_total{reason="breaker_open"}'] == 5

    time.sleep(3.2)  # the cool-down: one probe, still a 500, opens it again
    assert service.post({"text": TEXTS[8]})[1]["results"][0]["model"] == "student-fallback"
    assert stub_teacher.requests > asked
    health = service.health()["teacher"]["breaker"]
    assert (health["state"], health["trips"]) == ("open", 2)
    asked = stub_teacher.requests
    assert service.post({"text": TEXTS[9]})[1]["results"][0]["model"] == "student-fallback"
    assert stub_teacher.requests == asked

    stub_teacher.mode = "ok"
    time.sleep(3.2)  # the probe is answered: closed, and the teacher answers again
    assert service.post({"text": TEXTS[10]})[1]["results"][0]["model"] == "teacher"
    assert service.post({"text": TEXTS[11]})[1]["results"][0]["model"] == "teacher"
    assert service.health()["teacher"]["breaker"]["state"] == "closed"
    metrics = service.metrics()
    assert metrics['synthdistill_teacher_breaker{synthdistill_teacher_breaker="closed"}'] == 1
    assert metrics['synthdistill_teacher_errors_total{reason="breaker_open"}'] == 6
    service.stop()

    dead = write_config(tmp_path, teacher_url=f"http://127.0.0.1:{free_port()}/v1", **breaker)
    service = service_factory(student, *cascade_args(dead, tmp_path / "feedback.jsonl"))
    for text in TEXTS[:3]:
        assert service.post({"text": text})[1]["results"][0]["model"] == "student-fallback"
    assert service.health()["teacher"]["breaker"]["state"] == "open"
    assert service.post({"texts": TEXTS[3:6]})[0] == 200
    assert service.metrics()['synthdistill_teacher_errors_total{reason="breaker_open"}'] == 3


def test_sigterm_finishes_the_work_in_flight_writes_its_feedback_and_exits(
    student, stub_teacher, service_factory, tmp_path
):
    """SIGTERM while a deferred request waits on a 3 s teacher: new connections are refused, the request
    is answered by the teacher, its feedback line is written, and the process ends. With a teacher
    that hangs, the service still exits by serve.shutdown_timeout_s."""
    import signal

    stub_teacher.delay_s = 3.0
    feedback = tmp_path / "feedback.jsonl"
    config = write_config(tmp_path, teacher_url=stub_teacher.base_url, shutdown_timeout_s=20)
    service = service_factory(student, *cascade_args(config, feedback))
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(service.post, {"text": TEXTS[0]})
        while stub_teacher.requests == 0:
            time.sleep(0.05)
        service.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(0.5)
        with pytest.raises(urllib.error.URLError):  # no longer accepting
            urllib.request.urlopen(f"{service.url}/health", timeout=5)
        status, body = in_flight.result(timeout=30)
    assert status == 200 and body["results"][0]["model"] == "teacher"
    assert service.process.wait(timeout=20) == -signal.SIGTERM  # uvicorn ends by the signal, once shut down
    assert time.monotonic() - signalled < 15
    [line] = [json.loads(line) for line in feedback.read_text().splitlines()]
    assert (line["text"], line["label"]) == (TEXTS[0], body["results"][0]["label"])

    stub_teacher.delay_s = 600.0  # hangs past the request's timeout and the shutdown deadline
    config = write_config(tmp_path, teacher_url=stub_teacher.base_url, shutdown_timeout_s=2, teacher_timeout_s=1)
    service = service_factory(student, *cascade_args(config, feedback))
    asked = stub_teacher.requests
    assert service.post({"text": TEXTS[1]})[1]["results"][0]["model"] == "student-fallback"
    deadline = time.monotonic() + 60
    while stub_teacher.requests == asked and time.monotonic() < deadline:  # the teacher call is on its way
        time.sleep(0.1)
    assert stub_teacher.requests == asked + 1
    service.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert service.process.wait(timeout=30) == -signal.SIGTERM
    assert time.monotonic() - signalled < 12
    assert "a teacher call was still running at the shutdown deadline" in service.log.read_text()


def test_a_bearer_token_guards_the_service_and_a_teacher_is_never_open_without_one(
    student, service_factory, tmp_path, monkeypatch, capsys
):
    """With SYNTHDISTILL_SERVE_TOKEN set, a call without the token (or with a wrong one) gets a 401 and
    a bare /health only its status; the token never reaches the log. --host 0.0.0.0 with a teacher and
    no token stops at start unless --allow-unauthenticated."""
    from synthdistill.serving.cli import TOKEN_ENV, bearer_token, main, parser

    assert TOKEN_ENV == "SYNTHDISTILL_SERVE_TOKEN" and TOKEN_ENV in parser().format_help()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    config = write_config(tmp_path, teacher_url="http://127.0.0.1:9/v1")
    cascade = [str(student), "--configfile", str(config), "--teacher", "smollm2", "--prompt", "label"]
    assert main([*cascade, "--threshold", "0.5", "--host", "0.0.0.0"]) == 2
    assert "--host 0.0.0.0 with --teacher: anyone who reaches this machine" in capsys.readouterr().err
    for host in ("127.0.0.1", "localhost", "::1"):  # loopback: the check lets it pass
        assert bearer_token(parser().parse_args([*cascade, "--host", host])) is None
    assert bearer_token(parser().parse_args([*cascade, "--host", "0.0.0.0", "--allow-unauthenticated"])) is None
    monkeypatch.setenv(TOKEN_ENV, "  ")
    assert main([*cascade, "--threshold", "0.5"]) == 2
    assert f"{TOKEN_ENV} is set but empty" in capsys.readouterr().err
    monkeypatch.setenv(TOKEN_ENV, "s3cret-token")
    assert bearer_token(parser().parse_args([*cascade, "--host", "0.0.0.0"])) == "s3cret-token"

    secret = "correct horse battery staple 42"
    service = service_factory(
        student, "--configfile", str(config), "--max-length", "64", "--log-level", "debug", env={TOKEN_ENV: secret}
    )
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {secret}"}):
        status, body = service.post({"text": TEXTS[0]}, headers=headers)
        assert status == 401 and "bearer token" in body["error"]
        assert service.get("/metrics", headers=headers)[0] == 401
        assert service.get("/health", headers=headers) == (200, b'{"status":"ok"}')
    service.headers = {"Authorization": f"Bearer {secret}"}
    status, body = service.post({"text": TEXTS[0]})
    assert status == 200 and body["results"][0]["model"] == "student"
    assert service.health()["student"] == "minilm"
    assert service.metrics()['synthdistill_requests_total{status="401"}'] == 3
    assert secret not in service.log.read_text() and TOKEN_ENV in service.log.read_text()


def schema_strategy(schema: dict):
    """Values of the JSON Schema subset /openapi.json uses for the classify body (oneOf, object, array,
    string); strings include lone surrogates, which JSON's escapes can carry."""
    from hypothesis import strategies as st

    if "oneOf" in schema:
        return st.one_of([schema_strategy(option) for option in schema["oneOf"]])
    if schema["type"] == "object":
        return st.fixed_dictionaries({k: schema_strategy(v) for k, v in schema["properties"].items()})
    if schema["type"] == "array":
        return st.lists(schema_strategy(schema["items"]), min_size=schema["minItems"], max_size=schema["maxItems"])
    assert schema["type"] == "string", schema
    # Every code point, with lone surrogates (rare among them) drawn often on their own.
    characters = st.characters(exclude_categories=()) | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
    return st.text(characters, min_size=schema["minLength"], max_size=min(schema["maxLength"], 40))


def test_generated_requests_from_the_openapi_schema_get_documented_answers(student, service_factory, tmp_path):
    """Bodies drawn from the service's own /openapi.json, and arbitrary JSON: every answer is a status
    the schema documents for /v1/classify, never a 5xx, its body valid against that status's schema."""
    import jsonschema
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    config = write_config(tmp_path, max_texts_per_request=6, max_text_chars=200)
    service = service_factory(student, "--configfile", str(config), "--max-length", "64")
    operation = json.loads(service.get("/openapi.json")[1])["paths"]["/v1/classify"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["oneOf"][0]["properties"]["texts"]["maxItems"] == 6
    documented = {
        code: answer["content"]["application/json"]["schema"] for code, answer in operation["responses"].items()
    }
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["text", "texts", "x"]), inner),
        max_leaves=12,
    )
    seen: set[int] = set()

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(schema_strategy(schema), json_values))
    @example({"texts": ["ok \ud800"]})  # issue 25: half an emoji
    def answers_as_documented(payload) -> None:
        status, body = service.post(payload)
        seen.add(status)
        assert str(status) in documented and status < 500, (payload, status, body)
        jsonschema.validate(body, documented[str(status)])
        if status == 200:
            texts = [payload["text"]] if "text" in payload else payload["texts"]
            assert len(body["results"]) == len(texts)
            assert all(r["label"] in LABELS for r in body["results"])

    answers_as_documented()
    assert {200, 400, 422} <= seen


@pytest.mark.parametrize("messages", [1, 3])
def test_an_oversized_chunked_body_that_arrived_whole_is_a_413(messages):
    """The server may hand the app a chunked body already complete (one message, no more body): the
    body check drains the same stream it read, so the answer is the 413, never a 500 from a second read
    of a consumed stream (seen once in CI on a loaded machine)."""
    import asyncio

    from starlette.requests import Request

    from synthdistill.serving.app import BadRequest, read_body

    body = b'{"texts": ["' + b"a" * 3_000 + b'"]}'
    parts = [body[i::messages] for i in range(messages)] if messages > 1 else [body]
    queue = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)]

    async def receive() -> dict:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/v1/classify", "headers": [(b"transfer-encoding", b"chunked")]}
    with pytest.raises(BadRequest) as refused:
        asyncio.run(read_body(Request(scope, receive), limit=1_000))
    assert refused.value.status == 413 and "serve.max_body_bytes" in refused.value.message
    assert queue == []  # what was left of the body was drained, not left on the connection
