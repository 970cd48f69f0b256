import os
import sys

# Jobs run in their own Python (a conda env, a cluster node): let them import the library from
# the workflow folder even where it was not pip-installed.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
)

from synthdistill.costs import resolve_price, student_hardware
from synthdistill.run_facts import config_hash
from synthdistill.settings import check_config, prompt_settings, teacher_settings
from synthdistill.names import EXPERT
from synthdistill.labels.ensemble import ensemble_settings
from synthdistill.labels.review import review_settings

RUN = check_config(config)
TEACHERS = RUN["teachers"]
PROMPTS = RUN["prompts"]
STUDENTS = RUN["students"]
ITERATIONS = list(range(RUN["iterations"]))
EVALUATED = RUN["has_expert_labels"]
GOLD = "gold"
# Each iteration's prompts are annotated as SHARDS jobs, gathered before the vote.
SHARDS = config["annotate"]["shards"]
ENSEMBLES = ensemble_settings(config, TEACHERS, PROMPTS)
REVIEW = review_settings(config.get("review"))


wildcard_constraints:
    teacher="[A-Za-z0-9_-]+",
    prompt="[A-Za-z0-9_-]+",
    student="[A-Za-z0-9_-]+",
    iteration=r"\d+",
    shard=r"\d+",
    shards=r"\d+",


# Compute nodes often cannot reach the internet: annotate.local keeps LLM calls in the main process.
if config["annotate"]["local"]:

    localrules:
        annotate,


def labellers():
    """Every (teacher, prompt) with a vote file: each teacher × prompt, then each ensemble × method."""
    pairs = [(t, p) for t in TEACHERS for p in PROMPTS]
    return pairs + [(name, spec["method"]) for name, spec in ENSEMBLES.items()]


def label_sources():
    """(teacher, prompt) pairs a student learns from; the expert baseline when labels exist."""
    pairs = labellers()
    if EVALUATED and config["evaluation"]["expert_baseline"]:
        pairs.append((EXPERT, GOLD))
    return pairs


def dataset_input(wildcards):
    return [config["dataset"]["path"]] if config["dataset"].get("path") else []


def prompt_template(wildcards):
    return config["prompts"][wildcards.prompt]["template"]


def member_iteration_files(teacher, prompt):
    """The iteration files behind a label set: its own, or every member's for an ensemble."""
    if teacher in ENSEMBLES:
        members = ENSEMBLES[teacher]["members"]
    else:
        members = [(teacher, prompt)]
    return [
        f"results/annotations/{t}/{p}/iter{i}.parquet"
        for t, p in members
        for i in ITERATIONS
    ]


def iteration_files(wildcards):
    return member_iteration_files(wildcards.teacher, wildcards.prompt)


def shard_files(wildcards):
    return expand(
        "results/annotations/{teacher}/{prompt}/iter{iteration}/shard{shard}-of-{shards}.parquet",
        teacher=wildcards.teacher,
        prompt=wildcards.prompt,
        iteration=wildcards.iteration,
        shard=range(SHARDS),
        shards=SHARDS,
    )


def student_labels(wildcards):
    if wildcards.teacher == EXPERT:
        return expand("results/data/{split}.parquet", split=["train", "validation"])
    # Reviewed labels: the votes with the corrections file applied (equal to the votes without one).
    return f"results/review/{wildcards.teacher}/{wildcards.prompt}.labels.parquet"


def teacher_params(wildcards):
    return teacher_settings(config, wildcards.teacher)


def prompt_params(wildcards):
    return prompt_settings(config, wildcards.prompt)


def report_entries():
    teachers = [
        {
            "teacher": t,
            "prompt": p,
            "stats": f"results/votes/{t}/{p}.stats.json",
            "votes": f"results/votes/{t}/{p}.parquet",
            "metrics": (
                f"results/evaluation/teachers/{t}/{p}.json" if EVALUATED else None
            ),
            # An ensemble's stats carry its members' summed cost.
            "price": (
                resolve_price(
                    config["teachers"][t].get("price", {}),
                    config["teachers"][t]["backend"],
                )
                if t in TEACHERS
                else {}
            ),
        }
        for t, p in labellers()
    ]
    students = [
        {
            "student": s,
            "teacher": t,
            "prompt": p,
            "metadata": f"results/students/{s}/{t}/{p}/metadata.json",
            "benchmark": f"results/costs/students/{s}/{t}/{p}.json",
            "metrics": (
                f"results/evaluation/students/{s}/{t}/{p}.json" if EVALUATED else None
            ),
        }
        for s in STUDENTS
        for t, p in label_sources()
    ]
    return {"teachers": teachers, "students": students}


def paired_test_models():
    """name -> test predictions file, and which teacher each student learned from."""
    models, students = {}, {}
    for t, p in labellers():
        models[f"{t}/{p}"] = f"results/votes/{t}/{p}.parquet"
    for s in STUDENTS:
        for t, p in label_sources():
            name = f"{s}/{t}/{p}"
            models[name] = (
                f"results/evaluation/students/{s}/{t}/{p}.predictions.parquet"
            )
            students[name] = f"{t}/{p}"
    teachers = [f"{t}/{p}" for t, p in labellers()]
    return {"models": models, "teachers": teachers, "students": students}


def report_files(entries):
    return [
        path
        for group in entries.values()
        for entry in group
        for key, path in entry.items()
        if key in ("stats", "votes", "metrics", "metadata", "benchmark") and path
    ]


REPORT_ENTRIES = report_entries()
# The hardware the student cost is priced on: a preset's values with explicit keys over them.
STUDENT_HARDWARE = student_hardware(config["costs"]["student_hardware"])
# Printed in the report so two reports can be told apart; taken before any rule changes config.
CONFIG_HASH = config_hash(config)
PAIRED = paired_test_models()


def model_card_inputs(wildcards):
    folder = (
        f"results/students/{wildcards.student}/{wildcards.teacher}/{wildcards.prompt}"
    )
    inputs = {"metadata": f"{folder}/metadata.json"}
    if EVALUATED:
        inputs["metrics"] = (
            f"results/evaluation/students/{wildcards.student}/{wildcards.teacher}/{wildcards.prompt}.json"
        )
    if config["inference"]["onnx"]:
        inputs["onnx_check"] = f"{folder}/onnx_check.json"
    return inputs


def student_model_files(wildcards):
    """The student folder's model and, when exported, its ONNX int8 model (the fast CPU path)."""
    folder = (
        f"results/students/{wildcards.student}/{wildcards.teacher}/{wildcards.prompt}"
    )
    files = {"model": f"{folder}/model"}
    if config["inference"]["onnx"]:
        files["onnx"] = f"{folder}/onnx"
    return files


def hub_repo_id(wildcards):
    namespace = config["hub"]["namespace"]
    if not namespace:
        raise ValueError(
            "hub.namespace: set it (your user or organisation) to push students"
        )
    return f"{namespace}/{wildcards.student}-{wildcards.teacher}-{wildcards.prompt}"


def student_release_files():
    """What every trained student ships with: its card and, when enabled, its ONNX export."""
    files = []
    for s in STUDENTS:
        for t, p in label_sources():
            files.append(f"results/students/{s}/{t}/{p}/README.md")
    return files


def predict_student_dir():
    """The student folder `predict` uses: predict.student, else the first student on the first label source."""
    chosen = config["predict"]["student"]
    if chosen is None:
        teacher, prompt = label_sources()[0]
        chosen = f"{STUDENTS[0]}/{teacher}/{prompt}"
    return f"results/students/{chosen}"


def predict_max_length():
    student = predict_student_dir().split("/")[2]
    return config["students"][student]["max_length"]


def predict_student_files(wildcards):
    folder = predict_student_dir()
    files = [f"{folder}/model"]
    if config["inference"]["onnx"]:
        files.append(f"{folder}/onnx")
    return files


# Review loop (rules/review.smk) and ensemble teachers (rules/ensemble.smk).
REVIEW_SCORING = {k: v for k, v in REVIEW.items() if k != "corrections"}


def annotator_files(wildcards):
    """CROWDLAB annotators: every iteration of every teacher × prompt in the run."""
    return [
        path for t in TEACHERS for p in PROMPTS for path in member_iteration_files(t, p)
    ]


def corrections_input(wildcards):
    # An input only when configured: editing or adding the file reruns import_review and downstream.
    return [REVIEW["corrections"]] if REVIEW["corrections"] else []


def review_files():
    return [f"results/review/{t}/{p}.review.csv" for t, p in labellers()]


def ensemble_stats_files(wildcards):
    return [
        f"results/votes/{t}/{p}.stats.json"
        for t, p in ENSEMBLES[wildcards.teacher]["members"]
    ]


def ensemble_prices(wildcards):
    return [
        resolve_price(
            config["teachers"][t].get("price", {}), config["teachers"][t]["backend"]
        )
        for t, p in ENSEMBLES[wildcards.teacher]["members"]
    ]
