"""In-process GGUF models through llama-cpp-python (the embedded offline default)."""

from __future__ import annotations

import json
import threading
from typing import Any, cast

from synthdistill.annotation.teachers.base import Completion, Request, label_first_tokens
from synthdistill.paths import resolve_model_ref


def _choice_grammar(choices: list[str]) -> str:
    return "root ::= " + " | ".join(json.dumps(choice) for choice in choices)


class LlamaCppTeacher:
    """A local GGUF file (or one from the Hub via ``repo_id`` + ``filename``), run in-process.

    The chat template stored in the GGUF is applied here, so the prompt artifact shows the
    exact string the model reads; generation is a plain completion of that string.
    """

    max_concurrency = 1  # one llama.cpp context is not thread-safe

    def __init__(self, settings: dict[str, Any], vocab_only: bool = False) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        common = dict(
            n_ctx=settings.get("n_ctx", 2048),
            n_threads=settings.get("n_threads") or None,
            # llama.cpp defaults batch threads to every core; two jobs would then fight over them.
            n_threads_batch=settings.get("n_threads") or None,
            verbose=False,
            vocab_only=vocab_only,
        )
        if settings.get("repo_id"):
            self.llm = Llama.from_pretrained(settings["repo_id"], settings["filename"], **common)
            model = f"{settings['repo_id']}/{settings['filename']}"
        else:
            model = settings["model_path"]
            self.llm = Llama(model_path=resolve_model_ref(model), **common)
        self.identity = {"backend": "llama_cpp", "model": model}
        metadata = self.llm.metadata
        template = metadata.get("tokenizer.chat_template")
        if template is None:
            raise ValueError(f"GGUF {model} has no chat template (tokenizer.chat_template)")
        # Special tokens detokenize to nothing; their text form is what the template needs.
        eos = self.llm._model.token_get_text(self.llm.token_eos())
        bos = self.llm._model.token_get_text(self.llm.token_bos())
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}

    def render(self, messages: list[dict[str, str]]) -> str:
        return self._formatter(messages=cast(Any, messages)).prompt

    def _grammar(self, request: Request):
        """The compiled grammar for a request's constraint, built once per constraint."""
        from llama_cpp import LlamaGrammar

        if request.choices:
            source = _choice_grammar(request.choices)
        elif request.json_schema:
            source = json.dumps(request.json_schema, sort_keys=True)
        else:
            return None
        if source not in self._grammars:
            build = LlamaGrammar.from_string if request.choices else LlamaGrammar.from_json_schema
            self._grammars[source] = build(source, verbose=False)
        return self._grammars[source]

    def _label_token_ids(self, labels: list[str]) -> dict[str, list[int]]:
        return label_first_tokens(labels, lambda text: self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def score_labels(self, request: Request) -> Completion:
        """Log-probabilities of each label as the first answer token, from one forward pass."""
        import numpy as np

        prompt = self._formatter(messages=cast(Any, request.messages)).prompt
        tokens = self.llm.tokenize(prompt.encode(), add_bos=True, special=True)
        with self._lock:
            self.llm.reset()
            self.llm.eval(tokens)
            logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),)).copy()
        logprobs = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        label_ids = self._label_token_ids(request.score_labels or [])
        scores = {label: float(np.logaddexp.reduce(logprobs[ids])) for label, ids in label_ids.items()}
        best = max(scores, key=lambda label: scores[label])
        return Completion(text=best, input_tokens=len(tokens), output_tokens=0, extra={"label_logprobs": scores})

    def complete(self, request: Request) -> Completion:
        if request.score_labels:
            return self.score_labels(request)
        formatted = self._formatter(messages=cast(Any, request.messages))
        with self._lock:
            grammar = self._grammar(request)
            # Not streamed: one response dict.
            response = cast(
                dict[str, Any],
                self.llm.create_completion(
                    prompt=formatted.prompt,
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    top_p=request.top_p,
                    seed=request.seed,
                    stop=formatted.stop,
                    grammar=grammar,
                ),
            )
        usage = response.get("usage", {})
        return Completion(
            text=response["choices"][0]["text"],
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
        )
