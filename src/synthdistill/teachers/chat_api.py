"""Settings and request arguments shared by the chat-completion backends (openai, hf_inference)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthdistill.errors import SynthDistillError
from synthdistill.teachers.base import Request

STRUCTURED_OUTPUT_MODES = ("response_format", "json_object", "none")
DEFAULT_TOP_LOGPROBS = 20


@dataclass(frozen=True)
class ChatApiSettings:
    """Concurrency, timeout, retry and decoding settings of an HTTP teacher, validated once."""

    concurrency: int
    timeout_s: float
    max_retries: int
    retry_initial_s: float
    retry_max_wait_s: float
    max_retry_after_s: float
    send_seed: bool
    structured_output: str
    top_logprobs: int

    @classmethod
    def parse(cls, settings: dict[str, Any], backend: str) -> ChatApiSettings:
        parsed = cls(
            concurrency=int(settings.get("concurrency", 8)),
            timeout_s=float(settings.get("timeout_s", 60.0)),
            max_retries=int(settings.get("max_retries", 6)),
            retry_initial_s=float(settings.get("retry_initial_s", 1.0)),
            retry_max_wait_s=float(settings.get("retry_max_wait_s", 60.0)),
            max_retry_after_s=float(settings.get("max_retry_after_s", 300.0)),
            send_seed=settings.get("send_seed", True) is not False,
            structured_output=settings.get("structured_output") or "response_format",
            top_logprobs=int(settings.get("top_logprobs", DEFAULT_TOP_LOGPROBS)),
        )
        if parsed.structured_output not in STRUCTURED_OUTPUT_MODES:
            raise SynthDistillError(
                f"teacher backend {backend}: structured_output {parsed.structured_output!r} is not one of "
                f"{', '.join(STRUCTURED_OUTPUT_MODES)}"
            )
        if parsed.max_retries < 0 or parsed.timeout_s <= 0 or parsed.concurrency < 1 or parsed.top_logprobs < 1:
            raise SynthDistillError(
                f"teacher backend {backend}: max_retries must be >= 0, timeout_s > 0, concurrency >= 1 and "
                "top_logprobs >= 1"
            )
        return parsed

    def identity_extras(self) -> dict[str, Any]:
        """Settings that change answers, for the cache key; defaults are left out so that
        existing cache keys stay valid."""
        extras: dict[str, Any] = {}
        if self.structured_output != "response_format":
            extras["structured_output"] = self.structured_output
        if self.top_logprobs != DEFAULT_TOP_LOGPROBS:
            extras["top_logprobs"] = self.top_logprobs
        return extras

    def chat_kwargs(self, request: Request, model: str) -> dict[str, Any]:
        return chat_completion_kwargs(request, model, self.structured_output, self.top_logprobs, self.send_seed)


def chat_completion_kwargs(
    request: Request, model: str, structured_output: str, top_logprobs: int, send_seed: bool
) -> dict[str, Any]:
    """OpenAI-style chat-completion arguments; huggingface_hub's chat_completion takes the same."""
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": request.messages,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
    }
    schema: dict[str, Any] | None = None
    if request.json_schema:
        schema = request.json_schema
    elif request.choices:
        # An enum inside a JSON schema is the portable way to force one of a closed set.
        schema = {"type": "string", "enum": list(request.choices)}
    if schema is not None and structured_output == "response_format":
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        }
    elif schema is not None and structured_output == "json_object":
        kwargs["response_format"] = {"type": "json_object", "schema": schema}
    if request.score_labels:
        # One greedy token: the labels' probabilities are read from its alternatives.
        kwargs.update(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=top_logprobs)
    if send_seed and request.seed is not None:
        kwargs["seed"] = request.seed
    return kwargs
