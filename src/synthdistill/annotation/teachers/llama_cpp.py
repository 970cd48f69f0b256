"""In-process GGUF models through llama-cpp-python (the embedded offline default)."""

from __future__ import annotations

import json
import threading
from typing import Any, cast

from synthdistill import SynthDistillError
from synthdistill.annotation.teachers.base import (
    CHANNEL,
    Completion,
    LabelScorer,
    Request,
    channel_parts,
)
from synthdistill.annotation.teachers.llama_cpp_batch import Generation, MultiSequenceContext
from synthdistill.data.model_refs import resolve_model_ref


def _log_softmax(logits: Any) -> Any:
    import numpy as np

    top = logits.max()
    return logits - (top + np.log(np.exp(logits - top).sum()))


# Measured on 2 cores with SmolLM2 (bench/teacher_speed.py): see bench/README.md.
DEFAULT_BATCH_SIZE = 1


def _gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal. Not json.dumps: it writes a character beyond U+FFFF as two
    UTF-16 surrogate escapes, which GBNF reads as two code points no text has, so a label with an
    emoji could never be generated. Every non-ASCII character is written as its code point."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(f"\\U{ord(char):08X}")
    return '"' + "".join(out) + '"'


def _choice_grammar(choices: list[str]) -> str:
    """A grammar whose only sentences are the choices, exactly as written."""
    return "root ::= " + " | ".join(_gbnf_literal(choice) for choice in choices)


def _enum_strings(schema: Any) -> list[str]:
    """Every string a JSON schema's ``enum`` lists (the labels of a cot_json, labels_json or spans_json schema)."""
    if isinstance(schema, dict):
        found = [value for value in schema.get("enum", []) if isinstance(value, str)]
        return found + [text for value in schema.values() for text in _enum_strings(value)]
    if isinstance(schema, list):
        return [text for value in schema for text in _enum_strings(value)]
    return []


class LlamaCppTeacher:
    """A local GGUF file (or one from the Hub via ``repo_id`` + ``filename``), run in-process.

    The chat template stored in the GGUF is applied here, so the prompt artifact shows the
    exact string the model reads; generation is a plain completion of that string.
    With ``batch_size`` > 1 the engine hands over that many requests at a time
    (:meth:`complete_batch`), generated together in one multi-sequence context; each request keeps
    its own seed, so its answer does not depend on the batch it is in. ``n_ctx`` is the context of
    one request (prompt and answer), batched or not.
    """

    max_concurrency = 1  # one llama.cpp context is not thread-safe; batching happens in complete_batch
    label_scoring = "sequence"

    def __init__(self, settings: dict[str, Any], vocab_only: bool = False) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.batch_size = int(settings.get("batch_size") or DEFAULT_BATCH_SIZE)
        if self.batch_size < 1:
            raise SynthDistillError("teacher backend llama_cpp: batch_size must be >= 1")
        self.n_ctx = int(settings.get("n_ctx", 2048))
        common: dict[str, Any] = dict(
            n_ctx=self.n_ctx,
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
        tokenize = lambda text: self.llm.tokenize(text.encode(), add_bos=False, special=False)  # noqa: E731
        self._labels = LabelScorer(tokenize, [self.llm.token_eos()], model)
        self._multi = MultiSequenceContext(self.llm)

    def render(self, messages: list[dict[str, str]]) -> str:
        return self._formatter(messages=cast(Any, messages)).prompt

    def _grammar(self, request: Request):
        """The compiled grammar for a request's constraint, built once per constraint."""
        from llama_cpp import LlamaGrammar

        if request.choices:
            source = _choice_grammar(request.choices)
        elif request.json_schema:
            # Not sort_keys: llama.cpp writes properties in the schema's order, and a chain of thought
            # must come before its label (sorted, "label" came before "reason").
            source = json.dumps(request.json_schema)
        else:
            return None
        if source not in self._grammars:
            self._check_writable(request.choices or _enum_strings(request.json_schema))
            build = LlamaGrammar.from_string if request.choices else LlamaGrammar.from_json_schema
            self._grammars[source] = build(source, verbose=False)
        return self._grammars[source]

    def _check_writable(self, texts: list[str]) -> None:
        """Refuse a constraint to a text that this model's vocabulary cannot spell. SmolLM2's has no token
        for some bytes (the first of U+4E3C2's, for one): grammar-constrained sampling then has no token to
        choose, and llama.cpp aborts the whole process."""
        for text in texts:
            tokens = self.llm.tokenize(text.encode(), add_bos=False, special=False)
            # A SentencePiece vocabulary may put a space before the first word: that still spells the text.
            if self.llm.detokenize(tokens) not in (text.encode(), b" " + text.encode()):
                raise SynthDistillError(
                    f"teacher {self.identity['model']}: label {text!r} cannot be written with this model's "
                    "vocabulary (it has no token for some of its bytes), so constrained decoding could never "
                    "produce it. Rename the label, or set structured: false"
                )

    def _logits_row(self, index: int) -> Any:
        import numpy as np

        row = np.ctypeslib.as_array(self.llm._ctx.get_logits_ith(index), shape=(self.llm.n_vocab(),))
        return _log_softmax(row.astype(np.float64))

    def score_labels(self, request: Request) -> Completion:
        """Each label's log-probability as the whole answer (its tokens, then end of turn), teacher-forced
        after the rendered prompt: the prompt is evaluated once, then each spelling's tokens in one batch
        from the prompt's cached state, with logits at every position."""
        labels = request.score_labels or []
        prefixes = self._labels.prefixes(labels)
        prompt = self._formatter(messages=cast(Any, request.messages)).prompt
        tokens = self.llm.tokenize(prompt.encode(), add_bos=True, special=True)
        n_prompt = len(tokens)
        after: dict[tuple[int, ...], Any] = {}
        with self._lock:
            self.llm.reset()
            self.llm.eval(tokens)
            after[()] = self._logits_row(-1)
            # The longest continuations first, so that a shorter one that is their prefix costs nothing.
            for prefix in sorted(prefixes, key=len, reverse=True):
                if prefix in after:
                    continue
                self.llm._ctx.kv_cache_seq_rm(0, n_prompt, -1)
                self.llm._batch.set_batch(batch=list(prefix), n_past=n_prompt, logits_all=True)
                self.llm._ctx.decode(self.llm._batch)
                for end in range(1, len(prefix) + 1):
                    after.setdefault(prefix[:end], self._logits_row(end - 1))
            self.llm._ctx.kv_cache_seq_rm(0, n_prompt, -1)  # the state is the prompt's again, as n_tokens says
        return self._labels.completion(labels, after.__getitem__, n_prompt)

    def score_text(self, request: Request) -> Completion:
        """The log-probability of the last message's text after the others, read as plain text from
        the beginning of a sequence (channel label scores): the context is evaluated, then the text's
        tokens with logits at every position, in batches of ``n_batch``."""
        context, text = channel_parts(request.messages)
        # special=False: a text that spells a special token is read as the characters it is.
        first = self.llm.tokenize(context.encode(), add_bos=True, special=False)
        tokens = self.llm.tokenize(text.encode(), add_bos=False, special=False)
        if not tokens:
            raise SynthDistillError("channel scores: the text to score is empty")
        if len(first) + len(tokens) > self.n_ctx:
            raise ValueError(f"Requested tokens ({len(first) + len(tokens)}) exceed context window of {self.n_ctx}")
        with self._lock:
            self.llm.reset()
            self.llm.eval(first)
            total = float(self._logits_row(-1)[tokens[0]])
            n_past, step = len(first), self.llm.n_batch
            # Each token but the last predicts the next one.
            for start in range(0, len(tokens) - 1, step):
                chunk = tokens[start : min(start + step, len(tokens) - 1)]
                self.llm._batch.set_batch(batch=chunk, n_past=n_past, logits_all=True)
                self.llm._ctx.decode(self.llm._batch)
                total += sum(float(self._logits_row(i)[tokens[start + i + 1]]) for i in range(len(chunk)))
                n_past += len(chunk)
            self.llm._ctx.kv_cache_seq_rm(0, len(first), -1)  # the state is the context's again, as n_tokens says
        return Completion(
            text="", input_tokens=len(first) + len(tokens), output_tokens=0, extra={"text_logprob": total}
        )

    def complete(self, request: Request) -> Completion:
        if request.label_scoring == CHANNEL:
            return self.score_text(request)
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

    def complete_batch(self, requests: list[Request]) -> list[Completion | Exception]:
        """Answers in the order of ``requests``; a request that cannot run (its prompt does not fit
        ``n_ctx``) gets its exception in its place, and the others are answered. label_scores requests
        are scored one by one as in :meth:`complete`; the rest are generated together."""
        answers: list[Completion | Exception | None] = [None] * len(requests)
        batch: list[tuple[int, Generation]] = []
        stop: list[str] = []
        for index, request in enumerate(requests):
            try:
                if request.label_scoring == CHANNEL:
                    answers[index] = self.score_text(request)
                    continue
                if request.score_labels:
                    answers[index] = self.score_labels(request)
                    continue
                formatted = self._formatter(messages=cast(Any, request.messages))
                stop = _stop_list(formatted.stop)
                prompt = self.llm.tokenize(formatted.prompt.encode(), add_bos=True, special=True)
                if len(prompt) >= self.n_ctx:
                    raise ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {self.n_ctx}")
                with self._lock:
                    grammar = self._grammar(request)
                # As create_completion: the answer is cut to what fits the context.
                max_tokens = min(request.max_tokens, self.n_ctx - len(prompt))
                generation = Generation(prompt, max_tokens, request.temperature, request.top_p, request.seed, grammar)
                batch.append((index, generation))
            except Exception as exc:  # this request's failure, recorded by the engine for its item alone
                answers[index] = exc
        with self._lock:
            self._multi.generate([generation for _, generation in batch], stop)
        for index, generation in batch:
            answers[index] = Completion(
                text=generation.text, input_tokens=len(generation.prompt), output_tokens=len(generation.tokens or [])
            )
        return cast(list[Completion | Exception], answers)


def _stop_list(stop: Any) -> list[str]:
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else list(stop)
