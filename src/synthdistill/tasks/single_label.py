"""``single_label``: one label per text; the default kind, and the one every feature exists for."""

from synthdistill.tasks.base import FEATURES, StudentCard, Task

TASK = Task(
    name="single_label",
    description="one label per text",
    prompt_kinds=("label", "cot_json", "label_scores"),
    steps={
        "vote": "synthdistill.labels.vote_files:write_votes",
        "export_review": "synthdistill.labels.review:export_review",
        "import_review": "synthdistill.labels.corrections:import_review",
        "train_student": "synthdistill.students.files:train_from_files",
        "export_onnx": "synthdistill.students.inference:write_onnx_export",
        "evaluate_teacher": "synthdistill.evaluation.scoring:evaluate_teacher",
        "evaluate_student": "synthdistill.evaluation.scoring:evaluate_student",
        "compare_models": "synthdistill.evaluation.scoring:write_paired_tests",
        "report": "synthdistill.reporting.report:write_report",
        "expert_answers": "synthdistill.data:expert_single_labels",
        "label_counts": "synthdistill.data:single_label_counts",
    },
    features=FEATURES - {"bio_tags", "text_offsets"},
    review_files=("csv", "xlsx", "argilla", "label_studio", "label_studio_config"),
    card=StudentCard("text-classification", (), "F1 macro", "accuracy_difference_points"),
    report_files=(
        "figure_quality",
        "figure_agreement",
        "figure_accuracy_by_agreement",
        "figure_confusion",
        "figure_pareto",
        "figure_cascade",
        "table_quality",
        "table_label_quality",
        "table_teacher_cost",
        "table_student_cost",
        "table_break_even",
        "table_cascade",
        "table_stages",
    ),
)
