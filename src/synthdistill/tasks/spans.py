"""``spans``: labelled character spans per text, stored as a JSON list of ``{"start", "end", "label"}``
sorted by position. docs/spans.md."""

from synthdistill.tasks.base import Task

TASK = Task(
    name="spans",
    description="labelled character spans per text",
    prompt_kinds=("spans_json",),
    steps={
        "vote": "synthdistill.labels.span_vote:write_votes",
        "export_review": "synthdistill.labels.span_review:export_review",
        "import_review": "synthdistill.labels.span_corrections:import_review",
        "train_student": "synthdistill.students.span_files:train_from_files",
        "export_onnx": "synthdistill.students.span_onnx:write_span_onnx_export",
        "evaluate_teacher": "synthdistill.evaluation.span_scoring:evaluate_teacher",
        "evaluate_student": "synthdistill.evaluation.span_scoring:evaluate_student",
        "report": "synthdistill.reporting.span_report:write_report",
    },
    features=frozenset({"bio_tags"}),
    review_files=("label_studio", "label_studio_config", "argilla"),
)
