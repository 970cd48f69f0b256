import os
import sys

# Jobs run in their own Python (a conda env, a cluster node): let them import the library from
# the workflow folder even where it was not pip-installed.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))
)

from synthdistill.settings import check_config, prompt_settings, teacher_settings
from synthdistill.student_files import EXPERT

RUN = check_config(config)
TEACHERS = RUN["teachers"]
PROMPTS = RUN["prompts"]
STUDENTS = RUN["students"]
ITERATIONS = list(range(RUN["iterations"]))
EVALUATED = RUN["has_expert_labels"]
GOLD = "gold"
# Each iteration's prompts are annotated as SHARDS jobs, gathered before the vote.
SHARDS = config["annotate"]["shards"]


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


def label_sources():
    """(teacher, prompt) pairs a student learns from; the expert baseline when labels exist."""
    pairs = [(t, p) for t in TEACHERS for p in PROMPTS]
    if EVALUATED and config["evaluation"]["expert_baseline"]:
        pairs.append((EXPERT, GOLD))
    return pairs


def dataset_input(wildcards):
    return [config["dataset"]["path"]] if config["dataset"].get("path") else []


def prompt_template(wildcards):
    return config["prompts"][wildcards.prompt]["template"]


def iteration_files(wildcards):
    return expand(
        "results/annotations/{teacher}/{prompt}/iter{iteration}.parquet",
        teacher=wildcards.teacher,
        prompt=wildcards.prompt,
        iteration=ITERATIONS,
    )


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
    return f"results/votes/{wildcards.teacher}/{wildcards.prompt}.parquet"


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
            "metrics": (
                f"results/evaluation/teachers/{t}/{p}.json" if EVALUATED else None
            ),
            "price": config["teachers"][t].get("price", {}),
        }
        for t in TEACHERS
        for p in PROMPTS
    ]
    students = [
        {
            "student": s,
            "teacher": t,
            "prompt": p,
            "metadata": f"results/students/{s}/{t}/{p}/metadata.json",
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
    for t in TEACHERS:
        for p in PROMPTS:
            models[f"{t}/{p}"] = f"results/votes/{t}/{p}.parquet"
    for s in STUDENTS:
        for t, p in label_sources():
            name = f"{s}/{t}/{p}"
            models[name] = (
                f"results/evaluation/students/{s}/{t}/{p}.predictions.parquet"
            )
            students[name] = f"{t}/{p}"
    teachers = [f"{t}/{p}" for t in TEACHERS for p in PROMPTS]
    return {"models": models, "teachers": teachers, "students": students}


def report_files(entries):
    return [
        path
        for group in entries.values()
        for entry in group
        for key, path in entry.items()
        if key in ("stats", "metrics", "metadata") and path
    ]


REPORT_ENTRIES = report_entries()
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
    return config["students"][student].get("max_length", 256)


def predict_student_files(wildcards):
    folder = predict_student_dir()
    files = [f"{folder}/model"]
    if config["inference"]["onnx"]:
        files.append(f"{folder}/onnx")
    return files
