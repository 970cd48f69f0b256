"""``multi_label``: any subset of the labels per text, stored as a JSON list in label order
(``["billing", "bug"]``; ``[]`` is a valid answer). docs/multi_label.md."""

from synthdistill.tasks.base import Task

TASK = Task(
    name="multi_label",
    description="any subset of the labels per text",
    # label_scores: one yes/no question per label (settings.is_per_label).
    prompt_kinds=("labels_json", "label_scores"),
    steps={
        "vote": "synthdistill.labels.multi_label_vote:write_votes",
        "export_review": "synthdistill.labels.multi_label_review:export_review",
        "import_review": "synthdistill.labels.multi_label_corrections:import_review",
        "train_student": "synthdistill.students.multi_label_training:train_from_files",
        # The same export as single_label: the int8 model's config.json carries the thresholds.
        "export_onnx": "synthdistill.students.inference:write_onnx_export",
        "evaluate_teacher": "synthdistill.evaluation.multi_label_metrics:evaluate_teacher",
        "evaluate_student": "synthdistill.evaluation.multi_label_metrics:evaluate_student",
        "compare_models": "synthdistill.evaluation.multi_label_metrics:write_paired_tests",
        "report": "synthdistill.reporting.multi_label_report:write_report",
    },
    features=frozenset({"paired_tests"}),
    review_files=("csv", "xlsx", "argilla", "label_studio", "label_studio_config"),
)
