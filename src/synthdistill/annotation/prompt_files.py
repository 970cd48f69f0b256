"""The prompts artifact: id, split, text, the chat messages and the exact string the model reads."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.teachers import make_teacher
from synthdistill.names import CALIBRATION_SPLIT, CONTENT_FREE_TEXT


def build_prompt_frame(
    items: pd.DataFrame,
    template_path: str,
    teacher: dict[str, Any],
    prompt: dict[str, Any],
    labels: list[str],
) -> pd.DataFrame:
    """One row per item; ``rendered`` has the teacher's chat template applied where it needs one.

    A calibrated ``label_scores`` prompt gets one more row, split ``calibration``: the template
    filled with a content-free text, whose label distribution is the teacher's bias.
    """
    template = load_template(template_path)
    renderer = make_teacher(teacher, for_rendering=True)
    if prompt["kind"] == "label_scores" and prompt.get("calibrate"):
        extra = pd.DataFrame({"id": ["__content_free__"], "split": [CALIBRATION_SPLIT], "text": [CONTENT_FREE_TEXT]})
        items = pd.concat([items[["id", "split", "text"]], extra], ignore_index=True)
    messages = [messages_for(template, text, labels, prompt.get("system")) for text in items["text"]]
    return pd.DataFrame(
        {
            "id": items["id"].to_numpy(),
            "split": items["split"].to_numpy(),
            "text": items["text"].to_numpy(),
            "messages": [json.dumps(m, ensure_ascii=False) for m in messages],
            "rendered": [renderer.render(m) for m in messages],
        }
    )
