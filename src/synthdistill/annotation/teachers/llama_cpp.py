"""In-process GGUF models through llama-cpp-python (the embedded offline default)."""

from __future__ import annotations

import json
import threading
from typing import Any, cast

from synthdistill import SynthDistillError
from synthdistill.annotation.channel import is_channel
from synthdistill.annotation.teachers.base import (
    CHANNEL,
    Completion,
    LabelScorer,
    Request,
    channel_parts,
    text_after_answer,
)
from synthdistill.annotation.teachers.llama_cpp_batch import Generation, MultiSequenceContext
from synthdistill.data.model_refs import resolve_model_ref


def _log_softmax(logits: Any) -> Any:
    import numpy as np

    top = logits.max()
    return logits - (top + np.log(np.exp(logits - top).sum()))


CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
# The end-of-turn token a GGUF may declare (llama.cpp's LLM_KV_TOKENIZER_EOT_ID).
EOT_KEY = "tokenizer.ggml.eot_token_id"
# What a generated answer's prompt is, for a refusal: the request does not say which of these it is.
GENERATED = "label, cot_json, labels_json or spans_json"

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
    exact string the model reads (one BOS where the model wants one: :meth:`_chat_prompt`);
    generation is a plain completion of its tokens. A GGUF without a chat template reads plain text
    only: channel prompts run, chat prompts are refused (:meth:`check_prompt`).
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
        # Special tokens detokenize to nothing; their text form is what the template needs.
        bos_id, eos_id = self.llm.token_bos(), self.llm.token_eos()
        bos = self.llm._model.token_get_text(bos_id) if bos_id != -1 else ""
        eos = self.llm._model.token_get_text(eos_id) if eos_id != -1 else ""
        # No chat template: the model can still read plain text (channel prompts); chat prompts are
        # refused when they come (check_prompt, render, complete), naming the prompt kind.
        template = self.llm.metadata.get(CHAT_TEMPLATE_KEY)
        self._formatter = (
            None if template is None else Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        )
        # The BOS the tokenizer adds to a text (add_bos_token), written into the rendered prompt when the
        # template leaves it out (_chat_prompt).
        self._bos_text = bos if bos and self.llm._model.add_bos_token() else ""
        self.end_of_turn = self._end_of_turn(template, eos=eos, bos=bos)
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        tokenize = lambda text: self.llm.tokenize(text.encode(), add_bos=False, special=False)  # noqa: E731
        self._labels = LabelScorer(tokenize, [self.end_of_turn], model)
        self._multi = MultiSequenceContext(self.llm)

    def _end_of_turn(self, template: str | None, eos: str, bos: str) -> int:
        """The token that closes an answer, which label sequences end with (score_labels).

        Not the end-of-sequence token as such: a chat model ends its turn with its template's end-of-turn
        token (``<end_of_turn>`` for Gemma, ``<|eot_id|>`` for Llama 3, ``<|im_end|>`` for ChatML), and
        ends the sequence (``<eos>``, ``<|end_of_text|>``) only after it, if ever. In order:

        1. the end-of-turn token the GGUF declares (``tokenizer.ggml.eot_token_id``): its author's word;
        2. the token the chat template writes right after an assistant answer, if the vocabulary counts it
           as an end of generation (``llama_vocab_is_eog``: what generation stops on, so a label is scored
           as a complete answer exactly when generating it would end there). Not llama.cpp's own guess
           (``token_eot`` without a declared id): it takes the first token whose text is on a list of
           known end-of-turn texts, ``<|endoftext|>`` included, and that is SmolLM2's first token where
           its template closes turns with ``<|im_end|>``;
        3. the end-of-sequence token (a template that closes answers with ``eos_token``, or none to read).
        """
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        declared = self.llm.metadata.get(EOT_KEY)
        if declared is not None:
            return int(declared)
        if template is not None:
            closing = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, add_generation_prompt=False)
            after = text_after_answer(lambda turns: closing(messages=cast(Any, turns)).prompt)
            if after is not None:
                tokens = self.llm.tokenize(after.encode(), add_bos=False, special=True)
                if tokens and llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, tokens[0]):
                    return int(tokens[0])
        return int(self.llm.token_eos())

    def _no_chat_template(self, kind: str) -> SynthDistillError:
        return SynthDistillError(
            f"teacher llama_cpp: the GGUF {self.identity['model']} has no chat template (no {CHAT_TEMPLATE_KEY} "
            f"in its metadata), and a {kind} prompt is sent to the model as chat messages, which need one. "
            "Only a channel prompt (kind: label_scores, direction: channel) is read as plain text: use one, or "
            "a GGUF with a chat template (an instruct model's, or this file copied with one written in by the "
            "gguf package's gguf_new_metadata.py --chat-template-file)"
        )

    def check_prompt(self, kind: str, prompt: dict[str, Any]) -> None:
        """Refuse, before any request, a prompt of this kind (and settings) that this model cannot read: a
        chat prompt (every kind but a channel ``label_scores`` prompt) when the GGUF has no chat template."""
        if self._formatter is None and not is_channel(prompt):
            raise self._no_chat_template(kind)

    def _chat_prompt(self, messages: list[dict[str, str]], kind: str) -> tuple[str, Any]:
        """The chat template's text for these messages, with exactly one BOS where the model wants one,
        and the template's stop strings.

        Read as it is (tokenised with ``special=True`` and no BOS added: :meth:`_tokens`). A template
        that writes the BOS itself (``{{ bos_token }}``: Gemma, Llama 3, Mistral) keeps it, and no
        second one is added, as llama-cpp-python's create_chat_completion tokenises a template's text
        without adding a BOS (``ChatFormatterResponse.added_special``) and transformers'
        apply_chat_template without special tokens. Where the vocabulary adds a BOS to a text
        (``add_bos_token``) and the template leaves it out, it is written before the text, as the
        llama.cpp server does, so that the rendered prompt is still exactly what the model reads.
        """
        if self._formatter is None:
            raise self._no_chat_template(kind)
        formatted = self._formatter(messages=cast(Any, messages))
        prompt = formatted.prompt
        if self._bos_text and not prompt.startswith(self._bos_text):
            prompt = self._bos_text + prompt
        return prompt, formatted.stop

    def _tokens(self, prompt: str) -> list[int]:
        """A rendered chat prompt's tokens: special tokens read as such, no BOS added (_chat_prompt)."""
        return self.llm.tokenize(prompt.encode(), add_bos=False, special=True)

    def render(self, messages: list[dict[str, str]]) -> str:
        return self._chat_prompt(messages, "chat")[0]

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
        tokens = self._tokens(self._chat_prompt(request.messages, "label_scores")[0])
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
        prompt, stop = self._chat_prompt(request.messages, GENERATED)
        with self._lock:
            grammar = self._grammar(request)
            # Not streamed: one response dict. Tokens, not the text: create_completion would add a BOS to a
            # text whose vocabulary asks for one, a second one when the template writes its own.
            response = cast(
                dict[str, Any],
                self.llm.create_completion(
                    prompt=self._tokens(prompt),
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    top_p=request.top_p,
                    seed=request.seed,
                    stop=stop,
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
                text, template_stop = self._chat_prompt(request.messages, GENERATED)
                stop = _stop_list(template_stop)
                prompt = self._tokens(text)
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
