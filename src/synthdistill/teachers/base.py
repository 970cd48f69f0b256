"""The one interface every teacher backend implements."""

from __future__ import annotations

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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        """One generation; raises on a failed request."""
