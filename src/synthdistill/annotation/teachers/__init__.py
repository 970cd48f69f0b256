"""Teacher backends behind one interface, chosen by the ``backend`` key of a teacher's config."""

from __future__ import annotations

from typing import Any

from synthdistill import SynthDistillError
from synthdistill.annotation.teachers.base import Completion, Request, Teacher

BACKENDS = ("llama_cpp", "openai", "transformers", "hf_inference", "openai_batch", "anthropic_batch")


def make_teacher(settings: dict[str, Any], name: str = "teacher", for_rendering: bool = False) -> Teacher:
    """Build the backend a teacher's config names. ``for_rendering`` loads only the tokenizer."""
    backend = settings.get("backend")
    if backend == "llama_cpp":
        from synthdistill.annotation.teachers.llama_cpp import LlamaCppTeacher

        return LlamaCppTeacher(settings, vocab_only=for_rendering)
    if backend == "openai":
        from synthdistill.annotation.teachers.openai_compat import OpenAICompatTeacher

        return OpenAICompatTeacher(settings)
    if backend == "transformers":
        from synthdistill.annotation.teachers.transformers_local import TransformersTeacher

        return TransformersTeacher(settings, vocab_only=for_rendering)
    if backend == "hf_inference":
        from synthdistill.annotation.teachers.hf_inference import HFInferenceTeacher

        return HFInferenceTeacher(settings)
    if backend == "openai_batch":
        from synthdistill.annotation.teachers.batch import OpenAIBatchTeacher

        return OpenAIBatchTeacher(settings)
    if backend == "anthropic_batch":
        from synthdistill.annotation.teachers.batch import AnthropicBatchTeacher

        return AnthropicBatchTeacher(settings)
    raise SynthDistillError(f"teachers.{name}.backend: unknown backend {backend!r}; use one of {BACKENDS}")


__all__ = ["Completion", "Request", "Teacher", "make_teacher", "BACKENDS"]
