"""Channel label scores: how likely the text is after each label, P(text | label), instead of how likely
each label is after the text (Min et al. 2022, "Noisy Channel Language Model Prompting for Few-Shot
Text Classification").

A small model asked for a label leans on the label it likes best whatever the text (SmolLM2-135M
answers "positive" for nearly every FPB sentence); asked how well the text follows each label, it has
to explain every token of the text, and no label gets a head start. The model reads plain text, no
chat template: a channel template such as ``Sentiment: {label}\\nSentence: {text}`` ends with
``{text}``, and the score of a label is the summed log-probability of the text's tokens after the
template's beginning filled with that label (a few-shot example is the whole template filled with its
own label and text, before it).

Each label is one request (a chat of two messages: the context as the user turn, the scored text as
the assistant turn), cached on its own; an item's label scores are the texts' log-probabilities per
label, so everything after the teacher (probabilities, calibration, votes, students) is as for any
``label_scores`` prompt.
"""

from __future__ import annotations

from typing import Any

from synthdistill import SynthDistillError
from synthdistill.annotation.prompts import render
from synthdistill.annotation.teachers.base import CHANNEL, Completion, channel_parts

__all__ = ["CHANNEL", "channel_chat", "channel_completion", "check_channel_template", "is_channel"]
# The backends that can score a given text (teacher-forced log-probabilities): the in-process ones.
CHANNEL_BACKENDS = ("llama_cpp", "transformers")


def is_channel(prompt: dict[str, Any]) -> bool:
    return prompt.get("direction") == CHANNEL


def check_channel_template(template: str, where: str) -> None:
    """A channel template scores the text as the model's continuation: ``{text}`` ends it, after ``{label}``."""
    if template.count("{text}") != 1 or not template.rstrip().endswith("{text}") or "{label}" not in template:
        raise SynthDistillError(
            f"{where}: a channel template has {{label}} and ends with {{text}} (once): the text is what is scored "
            "after the template's beginning, filled with each label in turn"
        )
    if "{examples}" in template:
        raise SynthDistillError(
            f"{where}: a channel template has no {{examples}}: each example is shown before it, as the template "
            "filled with the example's own label and text"
        )


def channel_chat(template: str, text: str, labels: list[str], label: str, shots: list[tuple[str, str]]) -> list:
    """One label's request: the context (examples, then the template up to ``{text}`` with this label)
    as the user turn, the text as the assistant turn. The space before the text moves into the text,
    so that it is tokenized as the text would be in running prose (`` The``, not `` `` + ``The``)."""
    before = template.rstrip()[: -len("{text}")]
    context = render(before, "", labels, label=label)
    space = context[len(context.rstrip(" ")) :]
    demos = "".join(
        render(template.rstrip(), shot_text, labels, label=shot_label) + "\n\n" for shot_text, shot_label in shots
    )
    return [
        {"role": "user", "content": demos + context[: len(context) - len(space)]},
        {"role": "assistant", "content": space + text},
    ]


def rendered(messages: list[dict[str, str]]) -> str:
    """What the model reads for one label: the context and the text, as plain text."""
    context, text = channel_parts(messages)
    return context + text


def channel_completion(completions: list[Completion], labels: list[str]) -> Completion:
    """An item's label scores from its per-label requests: each label's score is the text's
    log-probability after it. Tokens are summed, as they are computed."""
    scores = {label: float(c.extra["text_logprob"]) for label, c in zip(labels, completions, strict=True)}
    inputs = [c.input_tokens for c in completions]
    return Completion(
        text=max(scores, key=lambda label: scores[label]),
        input_tokens=None if any(n is None for n in inputs) else sum(n for n in inputs if n is not None),
        output_tokens=0,
        extra={"label_logprobs": scores},
    )
