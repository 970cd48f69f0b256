"""The prompts artifact: id, split, text, the chat messages and the exact string the model reads."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from synthdistill.prompts import load_template, messages_for
from synthdistill.teachers import make_teacher


def build_prompt_frame(
    items: pd.DataFrame,
    template_path: str,
    teacher: dict[str, Any],
    prompt: dict[str, Any],
    labels: list[str],
) -> pd.DataFrame:
    """One row per item; ``rendered`` has the teacher's chat template applied where it needs one."""
    template = load_template(template_path)
    renderer = make_teacher(teacher, for_rendering=True)
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
