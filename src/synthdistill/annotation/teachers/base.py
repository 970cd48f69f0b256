"""The one interface every teacher backend implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Request:
    """Everything that determines a teacher's answer; all of it goes into the cache key."""

    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    # Constrained decoding: a JSON schema the answer must follow, or a closed list of answers.
    json_schema: dict[str, Any] | None = None
    choices: list[str] | None = None
    # label_scores prompts: return the log-probability of each of these labels as the answer.
    score_labels: list[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        # Unset options are left out so that adding an option never changes existing cache keys.
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Completion:
    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Teacher(Protocol):
    """A labelling LLM. ``identity`` names backend and model for the response cache."""

    identity: dict[str, Any]
    max_concurrency: int

    def render(self, messages: list[dict[str, str]]) -> str:
        """The exact text the model reads for these messages (what users inspect in prompts/)."""

    def complete(self, request: Request) -> Completion:
        """One generation; raises on a failed request.

        For a request with ``score_labels`` the completion's ``extra["label_logprobs"]`` maps
        each label to its log-probability as the first answer token, from one forward pass.
        Backends that generate in batches also offer ``complete_batch(requests)`` and
        ``batch_size``; the engine then sends them batches instead of single requests.
        """


def label_first_tokens(labels: list[str], tokenize: Callable[[str], list[int]]) -> dict[str, list[int]]:
    """First token ids of each label's spellings ("positive", "Positive", " positive", ...).

    A label's score sums over these tokens; two labels that share a first token could not be told
    apart from one forward pass, so that is an error.
    """
    ids: dict[str, list[int]] = {}
    for label in labels:
        spellings = {label, label.capitalize(), label.upper(), f" {label}", f" {label.capitalize()}"}
        ids[label] = sorted({tokens[0] for tokens in map(tokenize, spellings) if tokens})
    seen: dict[int, str] = {}
    for label, tokens in ids.items():
        for token in tokens:
            if token in seen:
                raise ValueError(f"labels {seen[token]!r} and {label!r} start with the same token; rename one")
            seen[token] = label
    return ids
