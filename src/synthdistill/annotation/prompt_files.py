"""The prompts artifact: id, split, text, the chat messages and the exact string the model reads.

A per-label prompt (multi_label ``label_scores``, ``prompt["per_label"]``) and a channel prompt
(``direction: channel``) ask about one label at a time: the ``messages`` cell is a JSON list of chats
and the ``rendered`` cell a JSON list of strings, one per label in the order of ``labels``; still one
row per item, so shards never split an item."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from synthdistill.annotation import channel
from synthdistill.annotation.examples import (
    example_answer,
    examples_block,
    read_examples_file,
    select_examples,
    shots_pool,
)
from synthdistill.annotation.prompts import load_template, messages_for
from synthdistill.annotation.teachers import make_teacher
from synthdistill.tasks.names import CALIBRATION_SPLIT, CONTENT_FREE_TEXT


def example_pool_from(paths: list[str], prompt: dict[str, Any], labels: list[str]) -> pd.DataFrame | None:
    """The example pool a prompt's ``examples`` draw from: its file, or the shots split's file."""
    settings = prompt.get("examples")
    if not settings:
        return None
    where = "prompts examples"
    if settings.get("path"):
        return read_examples_file(paths[0], labels, where)
    return shots_pool(pd.read_parquet(paths[0]), where)


def prompt_messages(
    texts: list[str],
    template: str,
    prompt: dict[str, Any],
    labels: list[str],
    pool: pd.DataFrame | None = None,
) -> tuple[list[Any], list[list[int]]]:
    """The chat messages for each text, and the pool rows each was shown as examples: what
    build_prompts writes and what synthdistill-serve sends a teacher for a deferred text. A channel
    prompt's messages for a text are one chat per label (:mod:`synthdistill.annotation.channel`)."""
    aliases = prompt.get("aliases")
    settings = prompt.get("examples")
    shown: list[list[int]] = [[] for _ in texts]
    if settings:
        if pool is None:
            raise ValueError("build_prompt_frame: a prompt with examples needs the example pool")
        shown = select_examples(texts, settings, pool, labels)
    pool_rows = pool.to_dict("records") if pool is not None else []
    messages: list[Any] = []
    for text, rows in zip(texts, shown, strict=True):
        if channel.is_channel(prompt):
            examples = [(row["text"], row["label"]) for row in (pool_rows[i] for i in rows)]
            messages.append([channel.channel_chat(template, text, labels, x, examples) for x in labels])
            continue
        shots = [
            (row["text"], example_answer(prompt["kind"], row["label"], row.get("reason"), labels, aliases))
            for row in (pool_rows[i] for i in rows)
        ]
        if "{examples}" in template:
            block = examples_block(shots)
            messages.append(messages_for(template, text, labels, prompt.get("system"), aliases, examples=block))
        else:
            messages.append(messages_for(template, text, labels, prompt.get("system"), aliases, shots))
    return messages, shown


def build_prompt_frame(
    items: pd.DataFrame,
    template_path: str,
    teacher: dict[str, Any],
    prompt: dict[str, Any],
    labels: list[str],
    pool: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per item; ``rendered`` has the teacher's chat template applied where it needs one.

    A calibrated ``label_scores`` prompt gets one more row, split ``calibration``: the template
    filled with a content-free text, whose label distribution is the teacher's bias.
    With ``prompt["examples"]`` each item is shown examples from ``pool`` (id, text, label, reason):
    through the template's ``{examples}`` placeholder when it has one, else as prior user/assistant
    turns; the ``examples`` column lists the ids and labels each item was shown.
    """
    per_label = bool(prompt.get("per_label"))
    is_channel = channel.is_channel(prompt)
    template = load_template(template_path, per_label=per_label or is_channel)
    if is_channel:
        channel.check_channel_template(template, f"prompt template {template_path}")
    renderer = make_teacher(teacher, for_rendering=True)
    # The first job that meets both the teacher and the prompt: a teacher that cannot read this prompt
    # (llama_cpp: a GGUF without a chat template, given a chat prompt) stops the run here, naming both.
    check_prompt = getattr(renderer, "check_prompt", None)
    if check_prompt is not None:
        check_prompt(prompt["kind"], prompt)
    if prompt["kind"] == "label_scores" and prompt.get("calibrate"):
        extra = pd.DataFrame({"id": ["__content_free__"], "split": [CALIBRATION_SPLIT], "text": [CONTENT_FREE_TEXT]})
        items = pd.concat([items[["id", "split", "text"]], extra], ignore_index=True)
    texts = items["text"].tolist()
    settings = prompt.get("examples")
    pool_rows = pool.to_dict("records") if pool is not None else []
    if per_label:
        chats = [[messages_for(template, t, labels, prompt.get("system"), label=x) for x in labels] for t in texts]
        messages_column = [json.dumps(c, ensure_ascii=False) for c in chats]
        rendered = [json.dumps([renderer.render(m) for m in c], ensure_ascii=False) for c in chats]
        shown: list[list[int]] = [[] for _ in texts]
    else:
        messages, shown = prompt_messages(texts, template, prompt, labels, pool)
        messages_column = [json.dumps(m, ensure_ascii=False) for m in messages]
        if is_channel:  # plain text, one string per label: no chat template
            rendered = [json.dumps([channel.rendered(c) for c in chats], ensure_ascii=False) for chats in messages]
        else:
            rendered = [renderer.render(m) for m in messages]
    frame = pd.DataFrame(
        {
            "id": items["id"].to_numpy(),
            "split": items["split"].to_numpy(),
            "text": items["text"].to_numpy(),
            "messages": messages_column,
            "rendered": rendered,
        }
    )
    if settings:
        frame["examples"] = [
            json.dumps([{"id": pool_rows[i]["id"], "label": pool_rows[i]["label"]} for i in rows]) for rows in shown
        ]
    return frame
