"""The pilot: before the pool is paid for, score prompt candidates on the gold dev sample and keep one.

Candidates are built from the run's prompts (their templates) × the kinds that fit each template ×
few-shot settings (``pilot`` in config). They are scored with successive halving (Jamieson and
Talwalkar 2016): every candidate on the first ``first_share`` of the gold dev texts (in an order
drawn with ``pilot.seed``), the best 1/eta of them on eta times as many, and so on, the last rung on
all of it. Rungs score growing prefixes of one order, so a survivor's answers to the earlier texts
are cache hits: each text a candidate sees is paid for once. The winner has the best F1 macro on the
whole gold dev split; ties go to the cheaper per text, then to the order candidates were built in.

Nothing here reads validation or test: the figures that later score the winner did not choose it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from synthdistill import SynthDistillError
from synthdistill.metrics.single_label import score
from synthdistill.metrics.stats import bootstrap_intervals

log = logging.getLogger(__name__)

# The kinds tried on a template, by the kind the run's prompt gives it.
KINDS_BY_TEMPLATE = {
    "label": ("label", "label_scores", "label_scores_calibrated"),
    "label_scores": ("label", "label_scores", "label_scores_calibrated"),
    "cot_json": ("cot_json",),
}
SHORT_KIND = {
    "label": "label",
    "label_scores": "scores",
    "label_scores_calibrated": "calibrated",
    "channel": "channel",
    "cot_json": "cot",
}
# Backends that can score a text's own tokens (direction: channel): settings.CHANNEL_BACKENDS.
TABLE_COLUMNS = [
    "candidate",
    "template",
    "kind",
    "examples",
    "rung",
    "texts",
    "f1_macro",
    "f1_macro_low",
    "f1_macro_high",
    "accuracy",
    "answers",
    "requests_made",
    "usd",
    "usd_per_1m_texts",
    "status",
]


class Scored(NamedTuple):
    """One candidate on the first texts of the pilot's order: its label per text (None: no answer)
    and the annotation stats behind them (labels.vote_files.annotation_stats)."""

    predicted: pd.Series
    annotation: dict[str, Any]


def _examples_setting(shots: str, k: int) -> dict[str, Any] | None:
    if shots == "none":
        return None
    if shots == "nearest":
        return {"source": "nearest", "k": k}
    return {"source": "nearest", "k": 1, "per_label": True}


def _shots_name(shots: str, k: int) -> str:
    return {"none": "zero", "nearest": f"nearest{k}", "per_label": "perlabel"}[shots]


def candidates(
    prompts: dict[str, dict[str, Any]],
    pilot: dict[str, Any],
    has_shots: bool,
    channel_backend: bool,
) -> dict[str, dict[str, Any]]:
    """name -> prompt settings (as config writes a prompt) of every candidate, in a fixed order.

    ``prompts``: the run's prompts (name -> settings); ``has_shots``: whether the shots split exists
    (few-shot candidates need it); ``channel_backend``: whether the teacher can score a channel
    prompt. A channel candidate comes from each channel prompt of the run, or from
    ``pilot.channel_template`` when there is none.
    """
    kinds = pilot["kinds"]
    shot_settings = [s for s in pilot["examples"] if s == "none" or has_shots]
    bases: list[tuple[str, dict[str, Any], str]] = []  # (source name, base settings, kind)
    for name, prompt in prompts.items():
        if prompt.get("direction") == "channel":
            if "channel" in kinds and channel_backend:
                bases.append((name, prompt, "channel"))
            continue
        for kind in KINDS_BY_TEMPLATE.get(prompt["kind"], ()):
            if kind in kinds:
                bases.append((name, prompt, kind))
    has_channel = any(kind == "channel" for _, _, kind in bases)
    if "channel" in kinds and channel_backend and not has_channel and pilot.get("channel_template"):
        bases.append(("channel", {"template": pilot["channel_template"], "kind": "label_scores"}, "channel"))
    out: dict[str, dict[str, Any]] = {}
    for source, prompt, kind in bases:
        for shots in shot_settings:
            settings = _candidate_settings(prompt, kind, _examples_setting(shots, pilot["k"]))
            out[f"{source}-{SHORT_KIND[kind]}-{_shots_name(shots, pilot['k'])}"] = settings
    return out


def _candidate_settings(prompt: dict[str, Any], kind: str, examples: dict[str, Any] | None) -> dict[str, Any]:
    settings = {key: value for key, value in prompt.items() if key not in ("examples", "calibrate", "direction")}
    if kind == "label_scores_calibrated":
        settings |= {"kind": "label_scores", "calibrate": True}
    elif kind == "label_scores":
        settings |= {"kind": "label_scores", "calibrate": False}
    elif kind == "channel":
        settings |= {"kind": "label_scores", "direction": "channel"}
    else:
        settings["kind"] = kind
    if kind == "label":
        settings.pop("aliases", None)  # letters are for scoring the first token, not for sampled answers
    if examples:
        settings["examples"] = examples
    return settings


def rungs(texts: int, candidates: int, first_share: float, eta: int) -> list[tuple[int, int]]:
    """(texts, candidates) of each rung: every candidate on ``first_share`` of the texts (at least
    one), then 1/eta of the candidates (rounded up) on eta times as many texts, the last rung on
    all the texts; a rung with one candidate goes straight to all the texts."""
    size = min(texts, max(1, math.ceil(first_share * texts)))
    out = [(size, candidates)]
    while size < texts:
        survivors = math.ceil(out[-1][1] / eta)
        size = texts if survivors == 1 else min(texts, size * eta)
        out.append((size, survivors))
    return out


def baselines(gold: pd.Series, labels: list[str]) -> dict[str, dict[str, Any]]:
    """The two trivial answers' F1 macro and accuracy on the gold dev labels themselves: always the
    majority class (ties to the label listed first), and guessing with the label shares p, whose
    expected per-label F1 is 2pp / (p + p) = p and accuracy sum p²."""
    shares = gold.value_counts(normalize=True).reindex(labels, fill_value=0.0)
    majority = max(labels, key=lambda label: (shares[label], -labels.index(label)))
    figures = score(gold, pd.Series(majority, index=gold.index), labels)
    return {
        "majority": {"label": majority, "f1_macro": figures["f1_macro"], "accuracy": figures["accuracy"]},
        "prior_random": {"f1_macro": float(shares.mean()), "accuracy": float((shares**2).sum())},
    }


def _row(name: str, settings: dict[str, Any], rung: int, gold: pd.Series, scored: Scored, labels: list[str], usd):
    figures = score(gold, scored.predicted, labels)
    interval = bootstrap_intervals(gold, scored.predicted, labels)["f1_macro"]
    usd_value = usd([scored.annotation])
    examples = settings.get("examples")
    return {
        "candidate": name,
        "template": settings["template"],
        "kind": ("channel" if settings.get("direction") == "channel" else settings["kind"])
        + (" calibrated" if settings.get("calibrate") else ""),
        "examples": "none"
        if not examples
        else ("per label" if examples.get("per_label") else f"nearest {examples['k']}"),
        "rung": rung,
        "texts": len(gold),
        "f1_macro": figures["f1_macro"],
        "f1_macro_low": interval[0],
        "f1_macro_high": interval[1],
        "accuracy": figures["accuracy"],
        "answers": scored.annotation["answers"],
        "requests_made": scored.annotation["requests_made"],
        "usd": usd_value,
        "usd_per_1m_texts": usd_value / len(gold) * 1e6 if usd_value is not None else None,
        "status": "",
    }


def run_pilot(
    gold_dev: pd.DataFrame,
    candidate_settings: dict[str, dict[str, Any]],
    evaluate: Callable[[str, dict[str, Any], pd.DataFrame], Scored],
    labels: list[str],
    pilot: dict[str, Any],
    usd: Callable[[list[dict[str, Any]]], float | None],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Successive halving over the candidates on the gold dev split (id, text, expert_label).

    ``evaluate(name, settings, items)`` labels ``items`` with one candidate through the engine;
    ``usd`` costs annotation stats (metrics.costs.annotations_usd with the teacher's costing). A
    candidate whose evaluation fails (a kind this teacher cannot answer) is recorded with the error
    and left out. Returns one row per candidate and rung (TABLE_COLUMNS) and the choice.
    """
    if not candidate_settings:
        raise SynthDistillError("pilot: no candidate fits this teacher and config (pilot.kinds, pilot.examples)")
    order = gold_dev.sample(frac=1.0, random_state=pilot["seed"]).reset_index(drop=True)
    plan = rungs(len(order), len(candidate_settings), pilot["first_share"], pilot["eta"])
    alive = list(candidate_settings)
    rows: list[dict[str, Any]] = []
    for rung, (size, _) in enumerate(plan):
        items = order.iloc[:size]
        gold = items.set_index("id")["expert_label"]
        scored_rows = []
        for name in alive:
            try:
                scored = evaluate(name, candidate_settings[name], items)
            except SynthDistillError as exc:
                rows.append({"candidate": name, "rung": rung, "texts": size, "status": f"failed: {exc}"})
                continue
            scored_rows.append(_row(name, candidate_settings[name], rung, gold, scored, labels, usd))
        ranked = _ranked(scored_rows, list(candidate_settings))
        last = rung == len(plan) - 1
        keep = 1 if last else plan[rung + 1][1]
        for position, row in enumerate(ranked):
            if position < keep:
                row["status"] = "won" if last else "kept"
            else:
                row["status"] = f"dropped at rung {rung}"
        rows.extend(ranked)
        alive = [row["candidate"] for row in ranked[:keep]]
        if not alive:
            raise SynthDistillError(f"pilot: every candidate failed on rung {rung}: {_failures(rows)}")
    table = pd.DataFrame(rows).reindex(columns=TABLE_COLUMNS)
    return table, _choice(table, candidate_settings, order, labels, pilot, usd)


def _ranked(rows: list[dict[str, Any]], order: list[str]) -> list[dict[str, Any]]:
    """Best F1 macro first; ties by cost per text (unpriced last), then the candidates' order."""

    def key(row: dict[str, Any]) -> tuple[float, float, int]:
        cost = row["usd_per_1m_texts"]
        return (-row["f1_macro"], cost if cost is not None else math.inf, order.index(row["candidate"]))

    return sorted(rows, key=key)


def _failures(rows: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r['candidate']}: {r['status']}" for r in rows if str(r.get("status", "")).startswith("failed"))


def _choice(
    table: pd.DataFrame,
    candidate_settings: dict[str, dict[str, Any]],
    order: pd.DataFrame,
    labels: list[str],
    pilot: dict[str, Any],
    usd: Callable[[list[dict[str, Any]]], float | None],
) -> dict[str, Any]:
    final = table.loc[(table["rung"] == table["rung"].max()) & table["f1_macro"].notna()].iloc[0]
    scored = table.loc[table["f1_macro"].notna()]
    last_per_candidate = scored.sort_values("rung").groupby("candidate").tail(1)
    trivial = baselines(order.set_index("id")["expert_label"], labels)
    bar = max(trivial["majority"]["f1_macro"], trivial["prior_random"]["f1_macro"])
    total_usd = last_per_candidate["usd"].sum(min_count=1)
    finalists = int((scored["rung"] == final["rung"]).sum())
    choice = {
        "candidate": final["candidate"],
        "settings": dict(candidate_settings[final["candidate"]]),
        "why": f"the best F1 macro among the {finalists} candidates of the last rung; ties go to the cheaper per "
        "text, then to config order",
        "gold_dev_texts": len(order),
        "f1_macro": float(final["f1_macro"]),
        "f1_macro_interval": [float(final["f1_macro_low"]), float(final["f1_macro_high"])],
        "accuracy": float(final["accuracy"]),
        "usd_per_1m_texts": None if pd.isna(final["usd_per_1m_texts"]) else float(final["usd_per_1m_texts"]),
        "baselines": trivial,
        "candidates": len(candidate_settings),
        "tried": list(candidate_settings),
        "rungs": int(table["rung"].max()) + 1,
        "answers": int(last_per_candidate["answers"].sum()),
        # Calls this run made (a rerun's are cache hits); "answers": every answer the pilot read, each paid once.
        "requests_made": int(scored["requests_made"].sum()),
        "usd": None if pd.isna(total_usd) else float(total_usd),
        "require": pilot["require"],
        "min_f1_macro": pilot.get("min_f1_macro"),
    }
    choice["passed"], choice["verdict"] = verdict(choice, bar, pilot)
    return choice


def verdict(choice: dict[str, Any], bar: float, pilot: dict[str, Any]) -> tuple[bool, str]:
    """Whether the winner is worth paying the pool for, and why, in words."""
    low = choice["f1_macro_interval"][0]
    floor = pilot.get("min_f1_macro")
    if pilot["require"] == "baselines" and not low > bar:
        return False, (
            f"the lower end of its F1 macro interval, {low:.3f}, is not above the better trivial baseline's "
            f"{bar:.3f} (always {choice['baselines']['majority']['label']!r}: "
            f"{choice['baselines']['majority']['f1_macro']:.3f}; guessing with the label shares: "
            f"{choice['baselines']['prior_random']['f1_macro']:.3f}): on this sample it is not better than guessing"
        )
    if floor is not None and choice["f1_macro"] < floor:
        return False, f"its F1 macro {choice['f1_macro']:.3f} is below pilot.min_f1_macro {floor}"
    if pilot["require"] == "none":
        return True, "not checked"
    return True, f"the lower end of its F1 macro interval, {low:.3f}, is above the trivial baselines' {bar:.3f}"


def stop_message(teacher: str, choice: dict[str, Any]) -> str:
    """Why the run stops before the pool is labelled, what was tried and what to do."""
    tried = choice["tried"]
    return (
        f"pilot: teacher {teacher}: no candidate is worth paying the pool for. Tried {len(tried)} candidates "
        f"({', '.join(tried)}) on {choice['gold_dev_texts']} gold dev texts; the best, {choice['candidate']}, "
        f"scored F1 macro {choice['f1_macro']:.3f} {_interval(choice)}, but {choice['verdict']}. Nothing of the pool "
        "was labelled; every pilot answer is in the response cache, so a rerun pays only for what changed. "
        "What to do: a stronger teacher (config/examples/), label descriptions in the template, few-shot "
        "examples (split.shots_per_label), a larger gold dev sample (split.gold_dev_size) for a narrower "
        "interval, or pilot.require: none to go on anyway."
    )


def _interval(choice: dict[str, Any]) -> str:
    low, high = choice["f1_macro_interval"]
    return f"[{low:.3f}, {high:.3f}]"


def write_pilot(table: pd.DataFrame, choice: dict[str, Any], outputs: dict[str, str]) -> None:
    table.to_csv(outputs["table"], index=False)
    Path(outputs["choice"]).write_text(json.dumps(choice, indent=2) + "\n")


def predicted_labels(votes: pd.DataFrame, items: pd.DataFrame) -> pd.Series:
    """The voted label of each item, by id in the items' order (None: abstained or no answer)."""
    labelled = votes.set_index("id")["label"].reindex(items["id"])
    return labelled.where(labelled.notna(), None).astype(object)


# What the teacher is asked for a rewrite of a label prompt's instruction (pilot.rewrites).
REWRITE_REQUEST = (
    "Rewrite the instruction below so that a language model following it classifies texts more accurately: "
    "clearer and more specific, the same task and the same answers. Keep each placeholder in curly braces "
    "exactly as written ({placeholders}). Answer with the rewritten instruction only.\n\nInstruction:\n{template}"
)
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def rewritable(settings: dict[str, Any]) -> bool:
    """Label and label_scores templates are rewritten; channel and cot_json ones keep their exact format."""
    return settings["kind"] in ("label", "label_scores") and settings.get("direction") != "channel"


def clean_rewrite(answer: str | None) -> str:
    """The instruction in an answer: code fences and surrounding quotes taken off."""
    text = (answer or "").strip()
    text = re.sub(r"^```[a-z]*\n?|\n?```$", "", text).strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text + "\n" if text else ""


def rewrite_templates(
    templates: dict[str, str], count: int, ask: Callable[[str, int], str | None], folder: Path
) -> list[dict[str, Any]]:
    """``count`` rewrites by the teacher of each template (source name -> path), each written to
    ``folder`` and kept when it keeps every placeholder of the original as often and passes the
    template checks; ``ask(request, number)`` is the teacher's answer (None: it failed)."""
    from synthdistill.annotation.prompts import load_template

    rows = []
    for source, path in templates.items():
        original = Path(path).read_text()
        placeholders = sorted(set(PLACEHOLDER.findall(original)))
        request = REWRITE_REQUEST.format(placeholders=", ".join(placeholders), template=original)
        for number in range(1, count + 1):
            row = {"source": source, "rewrite": number, "name": f"{source}_r{number}", "path": None}
            try:
                text = clean_rewrite(ask(request, number))
            except SynthDistillError as exc:
                rows.append({**row, "text": "", "status": f"dropped: {exc}"})
                continue
            lost = [p for p in placeholders if text.count(p) != original.count(p)]
            status = (
                "kept" if text and not lost else f"dropped: {'no answer' if not text else 'changed ' + ', '.join(lost)}"
            )
            if status == "kept":
                target = folder / f"{row['name']}.txt"
                target.write_text(text)
                try:
                    load_template(target)
                    row["path"] = str(target)
                except SynthDistillError as exc:
                    status = f"dropped: {exc}"
            rows.append({**row, "text": text, "status": status})
    return rows


def with_rewrites(
    candidate_settings: dict[str, dict[str, Any]], rewrites: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The candidates, and each rewritable one again with every kept rewrite of its template."""
    out = dict(candidate_settings)
    for name, settings in candidate_settings.items():
        if not rewritable(settings):
            continue
        source, kind, shots = name.rsplit("-", 2)
        for row in rewrites:
            if row["source"] == source and row["path"]:
                out[f"{row['name']}-{kind}-{shots}"] = {**settings, "template": row["path"]}
    return out


def teacher_writer(
    model: Any, cache: Any, teacher: dict[str, Any], engine: dict[str, Any]
) -> Callable[[str, int], str | None]:
    """``ask(request, number)``: one free-text answer of the teacher, through the response cache."""
    from synthdistill.annotation.cache import cache_key
    from synthdistill.annotation.requests import item_seed
    from synthdistill.annotation.runner import collect_answers
    from synthdistill.annotation.teachers.base import Request

    check_prompt = getattr(model, "check_prompt", None)

    def ask(text: str, number: int) -> str | None:
        if check_prompt is not None:
            check_prompt("label", {})  # a model that cannot read a chat cannot be asked to write
        messages = [{"role": "user", "content": text}]
        seed = teacher.get("seed")
        request = Request(
            messages=messages,
            max_tokens=256,
            temperature=float(teacher.get("temperature", 0.7)),
            top_p=float(teacher.get("top_p", 1.0)),
            seed=None if seed is None else item_seed(int(seed), number, messages),
        )
        outcome = collect_answers(
            [request],
            [cache_key(model.identity, request.as_dict(), number)],
            model,
            cache,
            max_consecutive_failures=engine.get("max_consecutive_failures"),
            batch_missing=engine.get("batch_missing"),
        )[0]
        if outcome[0] is None:
            raise SynthDistillError(f"the teacher did not answer: {outcome[3]}")
        return outcome[0].text

    return ask


def candidate_evaluator(
    *,
    model: Any,
    cache: Any,
    teacher: dict[str, Any],
    labels: list[str],
    iterations: int,
    engine: dict[str, Any],
    shots_path: str | None,
    tie_policy: str,
) -> Callable[[str, dict[str, Any], pd.DataFrame], Scored]:
    """``evaluate(name, settings, items)`` for run_pilot: the items (id, text, and split, default
    gold_dev) labelled with one candidate's prompt settings by ``model`` (annotation.teachers) through
    the engine and the response ``cache``, every self-consistency iteration it takes, and voted as the
    vote job votes."""
    from synthdistill.annotation.engine import annotate
    from synthdistill.annotation.prompt_files import build_prompt_frame, example_pool_from
    from synthdistill.labels.vote import vote
    from synthdistill.labels.vote_files import annotation_stats
    from synthdistill.tasks.names import GOLD_DEV_SPLIT

    def evaluate(name: str, settings: dict[str, Any], items: pd.DataFrame) -> Scored:
        pool = example_pool_from([shots_path] if shots_path else [], settings, labels)
        if "split" not in items:
            items = items.assign(split=GOLD_DEV_SPLIT)
        prompts = build_prompt_frame(items, settings["template"], teacher, settings, labels, pool)
        frames = [
            annotate(
                prompts,
                model,
                cache,
                kind=settings["kind"],
                labels=labels,
                generation={**teacher, **settings},
                iteration=i,
                **engine,
            )
            for i in range(1 if settings["kind"] == "label_scores" else iterations)
        ]
        votes = vote(frames, items, labels, tie_policy)
        return Scored(predicted_labels(votes, items), annotation_stats(frames))

    return evaluate


def pilot_teacher(
    *,
    gold_dev_path: str,
    shots_path: str | None,
    teacher_name: str,
    teacher: dict[str, Any],
    candidate_settings: dict[str, dict[str, Any]],
    labels: list[str],
    pilot: dict[str, Any],
    iterations: int,
    engine: dict[str, Any],
    cache_path: str,
    costing: dict[str, Any] | None,
    tie_policy: str,
    outputs: dict[str, str],
) -> dict[str, Any]:
    """The pilot job of one teacher: every candidate through the engine and the response cache,
    successive halving, the table and the choice written; stops the run (SynthDistillError, after
    writing the table to the log) when the winner does not meet pilot.require."""
    from synthdistill.annotation.cache import ResponseCache
    from synthdistill.annotation.teachers import make_teacher
    from synthdistill.metrics.costs import annotations_usd

    model, cache = make_teacher(teacher, teacher_name), ResponseCache(cache_path)
    evaluate = candidate_evaluator(
        model=model,
        cache=cache,
        teacher=teacher,
        labels=labels,
        iterations=iterations,
        engine=engine,
        shots_path=shots_path,
        tie_policy=tie_policy,
    )

    def usd(annotations: list[dict[str, Any]]) -> float | None:
        return annotations_usd(annotations, costing) if costing else None

    with tempfile.TemporaryDirectory() as scratch:
        rewrites: list[dict[str, Any]] = []
        if pilot["rewrites"]:
            sources = {n.rsplit("-", 2)[0]: c["template"] for n, c in candidate_settings.items() if rewritable(c)}
            ask = teacher_writer(model, cache, teacher, engine)
            rewrites = rewrite_templates(sources, pilot["rewrites"], ask, Path(scratch))
        settings = with_rewrites(candidate_settings, rewrites)
        table, choice = run_pilot(pd.read_parquet(gold_dev_path), settings, evaluate, labels, pilot, usd)
        shown = {row["path"]: f"{row['source']} rewrite {row['rewrite']}" for row in rewrites if row["path"]}
        table["template"] = table["template"].replace(shown)
        log.info("pilot of teacher %s:\n%s", teacher_name, table.to_string(index=False))
        if rewrites:
            log.info("rewrites:\n%s", pd.DataFrame(rewrites).drop(columns="path").to_string(index=False))
        if not choice["passed"]:
            raise SynthDistillError(stop_message(teacher_name, choice))
        # The pool's jobs read the winner's template from a file of this job's own (a rewrite lives only here).
        winner = settings[choice["candidate"]]["template"]
        choice["template_source"] = shown.get(winner, winner)
        choice["settings"]["template"] = outputs["template"]
        Path(outputs["template"]).write_text(Path(winner).read_text())
    pd.DataFrame(rewrites, columns=["source", "rewrite", "name", "status", "text"]).to_csv(
        outputs["rewrites"], index=False
    )
    write_pilot(table, choice, outputs)
    return choice
