# Shared by several files in rules/: the run's names, wildcard constraints, and the input functions
# more than one stage uses. A helper one stage uses sits in that stage's file, above its rule.
import json

from synthdistill.metrics.costs import student_hardware, teacher_costing
from synthdistill.settings import (
    annotate_settings,
    check_config,
    ensemble_settings,
    pilot_candidates,
    prompt_settings,
    review_settings,
    settings_iterations,
)
from synthdistill.tasks.names import (
    BEST,
    BEST_PROMPT,
    EXPERT,
    GOLD_DEV_SPLIT,
    PILOT_PROMPT,
)
from synthdistill.labels.feedback import feedback_pairs
from synthdistill.students.active_rounds import check_dollar_budget
from synthdistill.tasks import get_task

RUN = check_config(config)
TASK = RUN["task"]
# What the run's task kind supports: rules and targets it does not support are never asked for.
TASK_KIND = get_task(TASK)
TEACHERS = RUN["teachers"]
# pilot.enabled: the run's prompts are the templates of the pilot's candidates (rules/pilot.smk) and
# each teacher labels the pool once, with its winner, under the prompt name "pilot".
PILOT = config["pilot"]["enabled"]
PROMPTS = [PILOT_PROMPT] if PILOT else RUN["prompts"]
STUDENTS = RUN["students"]
EVALUATED = RUN["has_expert_labels"]
GOLD = "gold"
# The expert-labelled gold dev split (split.gold_dev_size): annotated like the other splits, used
# only to rank the labellers (rules/select.smk).
GOLD_DEV = bool(config["split"].get("gold_dev_size"))
ANNOTATED_SPLITS = ["train", "validation", "test"] + (
    [GOLD_DEV_SPLIT] if GOLD_DEV else []
)
LEARN_FROM_BEST = config["students_learn_from"] == "best"
# annotate.strategy active: the train pool is labelled in rounds (rules/active.smk), each teacher ×
# prompt choosing its own texts with ACTIVE_STUDENT; the annotate jobs then label only those.
ACTIVE = config["annotate"]["strategy"] == "active"
ACTIVE_ROUNDS = config["active"]["max_rounds"]
ACTIVE_STUDENT = config["active"]["student"] or next(iter(config["students"]))
ENSEMBLES = ensemble_settings(config, TEACHERS, PROMPTS)
REVIEW = review_settings(config.get("review"))
# Review scoring settings without the corrections path, so a new corrections file does not rescore
# (export_review in rules/review.smk, vote_ensemble in rules/ensemble.smk).
REVIEW_SCORING = {k: v for k, v in REVIEW.items() if k != "corrections"}
# The hardware the student cost is priced on: a preset's values with explicit keys over them
# (the model card in rules/student.smk, the report in rules/report.smk).
STUDENT_HARDWARE = student_hardware(config["costs"]["student_hardware"])
# How each teacher is costed (tokens × price, or measured time × costs.teacher_hardware), checked
# here so that a bad setting stops the run before any job (the report and ensembles use it).
TEACHER_COSTING = {
    t: teacher_costing(
        t, config["teachers"][t], config["costs"].get("teacher_hardware")
    )
    for t in TEACHERS
}
if ACTIVE and config["active"]["max_usd"] is not None:
    check_dollar_budget(TEACHER_COSTING)
# Teacher × prompts with served feedback (cascade.feedback): only their students retrain on it.
FEEDBACK_FILES = config["cascade"]["feedback"]
FEEDBACK_PAIRS = feedback_pairs(FEEDBACK_FILES)


wildcard_constraints:
    teacher="[A-Za-z0-9_-]+",
    prompt="[A-Za-z0-9_-]+",
    student="[A-Za-z0-9_-]+",
    iteration=r"\d+",
    round=r"\d+",


# Compute nodes often cannot reach the internet: annotate.local keeps LLM calls in the main process.
if config["annotate"]["local"]:

    localrules:
        annotate,
        active_annotate,
        pilot,


def labellers():
    """Every (teacher, prompt) with a vote file: each teacher × prompt, then each ensemble × method."""
    pairs = [(t, p) for t in TEACHERS for p in PROMPTS]
    return pairs + [(name, spec["method"]) for name, spec in ENSEMBLES.items()]


for _teacher, _prompt in sorted(FEEDBACK_PAIRS - set(labellers())):
    print(
        f"cascade.feedback: rows for teacher {_teacher} × prompt {_prompt}, which this run does not "
        "label, are not used",
        file=sys.stderr,
    )


def label_sources():
    """(teacher, prompt) pairs a student learns from: every labeller, or (best, on_gold_dev), the
    one select_labeller ranks first; and the expert baseline when labels exist."""
    pairs = [(BEST, BEST_PROMPT)] if LEARN_FROM_BEST else labellers()
    if EVALUATED and config["evaluation"]["expert_baseline"]:
        pairs.append((EXPERT, GOLD))
    return pairs


def fill(pattern, **wildcards):
    """One concrete path of a rule's output pattern: fill(rules.vote.output.votes, teacher=t, prompt=p)."""
    return expand(pattern, **wildcards)[0]


def data_splits(*names):
    """prepare_data's split files, in the order asked."""
    return [rules.prepare_data.output[name] for name in names]


def annotated_prompts(wildcards):
    """The prompts the annotate jobs label: every one, or with annotate.strategy active the chosen
    train texts and every other split (rules/active.smk)."""
    if ACTIVE:
        return fill(
            rules.active_pool.output.prompts,
            teacher=wildcards.teacher,
            prompt=wildcards.prompt,
        )
    return rules.build_prompts.output[0]


def annotated_splits(wildcards):
    """The split files a teacher × prompt's vote covers: the train split is the chosen texts when active."""
    if ACTIVE:
        train = fill(
            rules.active_pool.output.train,
            teacher=wildcards.teacher,
            prompt=wildcards.prompt,
        )
        return [train] + data_splits(*ANNOTATED_SPLITS[1:])
    return data_splits(*ANNOTATED_SPLITS)


def labeller_prompt(teacher, prompt):
    """A teacher × prompt's prompt settings: the config's, or for prompt pilot the pilot's choice."""
    if prompt == PILOT_PROMPT:
        return pilot_settings(teacher)
    return prompt_settings(config, prompt)


def labeller_iterations(teacher, prompt):
    return settings_iterations(labeller_prompt(teacher, prompt), config)


def pilot_choice(wildcards):
    """For prompt pilot, the pilot's choice: rules whose params read the chosen settings need it
    among their inputs (a checkpoint's output)."""
    if wildcards.prompt != PILOT_PROMPT:
        return []
    return checkpoints.pilot.get(teacher=wildcards.teacher).output.choice


def member_iteration_files(teacher, prompt):
    """The iteration files behind a label set: its own, or every member's for an ensemble."""
    if teacher in ENSEMBLES:
        members = ENSEMBLES[teacher]["members"]
    else:
        members = [(teacher, prompt)]
    return [
        path
        for t, p in members
        for path in expand(
            rules.gather_annotations.output[0],
            teacher=t,
            prompt=p,
            iteration=range(labeller_iterations(t, p)),
        )
    ]


def member_iteration_names(teacher, prompt):
    """``teacher/prompt/iterN`` for each of member_iteration_files, in the same order."""
    members = (
        ENSEMBLES[teacher]["members"] if teacher in ENSEMBLES else [(teacher, prompt)]
    )
    return [
        f"{t}/{p}/iter{i}" for t, p in members for i in range(labeller_iterations(t, p))
    ]


def iteration_names(wildcards):
    return member_iteration_names(wildcards.teacher, wildcards.prompt)


def iteration_files(wildcards):
    """Input of vote, vote_ensemble and export_review."""
    return member_iteration_files(wildcards.teacher, wildcards.prompt)


def student_labels(wildcards):
    """What a student learns from (train_student, learning_curve): the expert splits, or the
    reviewed labels (the votes with the corrections file applied; equal to the votes without one),
    with the served feedback added when cascade.feedback has rows for this teacher × prompt.
    """
    if wildcards.teacher == EXPERT:
        return data_splits("train", "validation")
    if wildcards.teacher == BEST:
        return rules.select_labeller.output.labels
    if (wildcards.teacher, wildcards.prompt) in FEEDBACK_PAIRS:
        return rules.add_feedback.output.labels
    return rules.import_review.output.labels
