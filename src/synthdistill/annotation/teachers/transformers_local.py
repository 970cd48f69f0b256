"""A local causal LM through Hugging Face ``transformers``: a hub id, a local folder, or a GGUF file.

Settings (a teacher's config block), all optional except ``model``:

``model``              hub id, local folder or ``package://module/path``; with ``gguf_file``, the folder
                       (or hub repo) that holds the GGUF file
``gguf_file``          a GGUF file name inside ``model`` (or an absolute path), loaded through transformers'
                       GGUF loader (dequantized; needs the ``gguf`` and ``accelerate`` packages)
``batch_size``         prompts generated together (default 8)
``trust_remote_code``  run model code shipped with the checkpoint (default false)
``use_safetensors``    force (true) or forbid (false) safetensors weights; default: true for a local folder
                       that has ``*.safetensors`` files, otherwise transformers' own preference for them
``device``             ``cuda``, ``cpu``, ... (default: CUDA with bf16 when available, else CPU with fp32)
``n_threads``          torch CPU threads for this process (default: torch's own)
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
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
from synthdistill.data.model_refs import resolve_model_ref

log = logging.getLogger(__name__)

# What a chat request's prompt is, for a refusal: the request does not say which of these it is.
GENERATED = "label, label_scores (direct), cot_json, labels_json or spans_json"

SEED_MASK = 2**63 - 1  # torch seeds are unsigned 64-bit; keep any config integer in range


def _as_id_set(value: Any) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    return {int(v) for v in value}


def _device_and_dtype(requested: str | None) -> tuple[Any, Any]:
    import torch

    device = torch.device(requested) if requested else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return device, torch.float32


def _per_row_sampler(requests: list[Request], device: Any) -> Any:
    """A logits processor that makes the sampling decision for each row of a batch on its own.

    Generation runs greedy; for a row whose request samples (temperature > 0), this processor
    applies that request's temperature and top-p, draws one token with the request's own
    ``torch.Generator`` (seeded with ``request.seed``), and leaves only that token possible, so the
    greedy step picks it. A row's random stream therefore depends on its seed alone, not on which
    other requests share its batch, and greedy and sampled requests can share a batch.
    """
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    rows: list[tuple[Any, Any] | None] = []
    for request in requests:
        if request.temperature <= 0:
            rows.append(None)
            continue
        warpers: list[LogitsProcessor] = [TemperatureLogitsWarper(float(request.temperature))]
        if request.top_p < 1:
            warpers.append(TopPLogitsWarper(float(request.top_p)))
        generator = None
        if request.seed is not None:
            generator = torch.Generator(device=device)
            generator.manual_seed(int(request.seed) & SEED_MASK)
        rows.append((LogitsProcessorList(warpers), generator))

    class PerRowSampler(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            if all(row is None for row in rows):
                return scores
            scores = cast(torch.FloatTensor, scores.clone())
            for index, row in enumerate(rows):
                if row is None:
                    continue
                warpers, generator = row
                warped = warpers(input_ids[index : index + 1], scores[index : index + 1])
                probs = torch.softmax(warped[0].float(), dim=-1)
                token = torch.multinomial(probs, num_samples=1, generator=generator)
                scores[index] = -float("inf")
                scores[index, token] = 0.0
            return scores

    return PerRowSampler()


class TransformersTeacher:
    """A causal LM run in-process with ``transformers``, prompted through its own chat template.

    Requests are generated in batches of ``batch_size`` (:meth:`complete_batch`): prompts are sorted
    by length inside the call so similar lengths share a batch, left-padded, and the results come
    back in the input order. ``max_new_tokens`` is the largest ``max_tokens`` of the batch; each
    answer is cut at its own request's ``max_tokens``.

    Decoding follows the request only: temperature 0 is greedy; temperature > 0 samples with the
    request's temperature and top-p. The model's ``generation_config.json`` sampling defaults
    (top-k, repetition penalty, ...) are not applied; only its EOS token ids are kept. Each sampled
    request draws from its own random generator seeded with ``request.seed`` (torch's global
    generator when the seed is None), so a seeded answer does not depend on the batch it is in,
    up to floating-point differences between padded batch shapes, which on GPU can occasionally
    change a token.

    A request with ``score_labels`` (``label_scores`` prompts) is answered from forward passes:
    ``extra["label_logprobs"]`` holds each label's log-probability as the whole answer, teacher-forced
    (its tokens then the end-of-turn token, summed over its spellings, as in the llama.cpp backend).

    Constrained decoding is not supported by this backend: ``request.choices`` and
    ``request.json_schema`` are ignored (a warning is logged once), and the answer is parsed
    strictly downstream like any free-text answer.
    """

    max_concurrency = 1  # one model per process; batching happens inside complete_batch
    label_scoring = "sequence"

    def __init__(self, settings: dict[str, Any], vocab_only: bool = False) -> None:
        from transformers import AutoTokenizer

        if not settings.get("model"):
            raise SynthDistillError("teacher backend transformers: config key model is missing")
        self.model_ref = str(settings["model"])
        self.gguf_file = settings.get("gguf_file") or None
        self.batch_size = int(settings.get("batch_size", 8))
        if self.batch_size < 1:
            raise SynthDistillError("teacher backend transformers: batch_size must be >= 1")
        self.identity: dict[str, Any] = {
            "backend": "transformers",
            "model": self.model_ref,
            "gguf_file": self.gguf_file,
        }
        path = resolve_model_ref(self.model_ref)
        common: dict[str, Any] = {"trust_remote_code": settings.get("trust_remote_code", False) is True}
        if self.gguf_file:
            common["gguf_file"] = self.gguf_file

        self.tokenizer = AutoTokenizer.from_pretrained(path, **common)
        self.tokenizer.padding_side = "left"
        # No chat template (a base model): it can still read plain text (channel prompts); chat prompts
        # are refused when they come (check_prompt, render), naming the prompt kind.
        self.has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token_id is None:
                raise SynthDistillError(f"teacher backend transformers: {self.model_ref} has no pad or EOS token")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model: Any = None
        self._lock = threading.Lock()
        self._warned_constraints = False
        tokenize = lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        self.end_of_turn = self._end_of_turn()
        self._labels = LabelScorer(tokenize, self.end_of_turn, self.model_ref)
        if vocab_only:
            return

        import torch
        from transformers import AutoModelForCausalLM, GenerationConfig

        if settings.get("n_threads"):
            torch.set_num_threads(int(settings["n_threads"]))
        self.device, dtype = _device_and_dtype(settings.get("device"))
        load: dict[str, Any] = {**common, "dtype": dtype}
        use_safetensors = settings.get("use_safetensors")
        if use_safetensors is None and not self.gguf_file and os.path.isdir(path):
            use_safetensors = True if any(Path(path).glob("*.safetensors")) else None
        if use_safetensors is not None and not self.gguf_file:
            load["use_safetensors"] = bool(use_safetensors)
        model = AutoModelForCausalLM.from_pretrained(path, **load)
        self.model = model.to(self.device).eval()

        # Generation stops where an answer ends: the end of the turn, or of the sequence.
        self.eos_ids = (
            _as_id_set(model.generation_config.eos_token_id)
            | _as_id_set(self.tokenizer.eos_token_id)
            | set(self.end_of_turn)
        )
        if not self.eos_ids:
            raise SynthDistillError(f"teacher backend transformers: {self.model_ref} defines no EOS token")
        # Only what the request says decides the answer: drop the checkpoint's sampling defaults.
        self.model.generation_config = GenerationConfig(
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=model.generation_config.bos_token_id,
        )

    def __repr__(self) -> str:
        return f"TransformersTeacher(model={self.model_ref!r}, gguf_file={self.gguf_file!r})"

    def _end_of_turn(self) -> list[int]:
        """The token label sequences end with (score_labels): the one the chat template writes right
        after an assistant answer when the tokenizer counts it special (``<|im_end|>``, ``<end_of_turn>``,
        ``<|eot_id|>``: a chat model ends its turn there, and its sequence only after it, if ever); else
        the end-of-sequence token (a template that closes answers with it, or none to read)."""
        eos = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []
        if not self.has_template:
            return eos
        after = text_after_answer(lambda turns: str(self.tokenizer.apply_chat_template(turns, tokenize=False)))
        if after is None:
            return eos
        tokens = self.tokenizer(after, add_special_tokens=False)["input_ids"]
        if tokens and tokens[0] in set(self.tokenizer.all_special_ids):
            return [int(tokens[0])]
        return eos

    def _no_chat_template(self, kind: str) -> SynthDistillError:
        return SynthDistillError(
            f"teacher transformers: the model {self.model_ref}{f' ({self.gguf_file})' if self.gguf_file else ''} "
            f"has no chat template, and a {kind} prompt is sent to the model as chat messages, which need one. "
            "Only a channel prompt (kind: label_scores, direction: channel) is read as plain text: use one, or "
            "a model with a chat template (an instruct model's, or chat_template set in its tokenizer_config.json)"
        )

    def check_prompt(self, kind: str, prompt: dict[str, Any]) -> None:
        """Refuse, before any request, a chat prompt (every kind but a channel ``label_scores`` prompt)
        when the model has no chat template."""
        if not self.has_template and not is_channel(prompt):
            raise self._no_chat_template(kind)

    def render(self, messages: list[dict[str, str]]) -> str:
        if not self.has_template:
            raise self._no_chat_template(GENERATED)
        return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

    def complete(self, request: Request) -> Completion:
        return self.complete_batch([request])[0]

    def complete_batch(self, requests: list[Request]) -> list[Completion]:
        """Answer every request, ``batch_size`` at a time; results in the order of ``requests``.

        Requests with ``score_labels`` are scored (one forward pass) in batches of their own.
        """
        if self.model is None:
            raise SynthDistillError("teacher backend transformers: loaded for rendering only (vocab_only)")
        if not requests:
            return []
        if not self._warned_constraints and any(r.choices or r.json_schema for r in requests):
            self._warned_constraints = True
            log.warning("teacher %s: constrained decoding is not supported by this backend; ignored", self.model_ref)
        results: list[Completion | None] = [None] * len(requests)
        channel = [i for i, r in enumerate(requests) if r.label_scoring == CHANNEL]
        if channel:
            with self._lock:
                for i in channel:
                    results[i] = self._score_text(requests[i])
            rest = [i for i in range(len(requests)) if results[i] is None]
            for i, completion in zip(rest, self.complete_batch([requests[i] for i in rest]), strict=True):
                results[i] = completion
            return results  # type: ignore[return-value]
        # The template already holds any BOS the model expects; adding special tokens would double it.
        prompts = [self.tokenizer(self.render(r.messages), add_special_tokens=False)["input_ids"] for r in requests]
        order = sorted(range(len(requests)), key=lambda i: len(prompts[i]), reverse=True)
        with self._lock:
            for scoring in (True, False):
                group = [i for i in order if bool(requests[i].score_labels) == scoring]
                run = self._score if scoring else self._generate
                for start in range(0, len(group), self.batch_size):
                    chunk = group[start : start + self.batch_size]
                    completions = run([requests[i] for i in chunk], [prompts[i] for i in chunk])
                    for index, completion in zip(chunk, completions, strict=True):
                        results[index] = completion
        return results  # type: ignore[return-value]

    def _score_text(self, request: Request) -> Completion:
        """The log-probability of the last message's text after the others, read as plain text from
        the beginning of a sequence (channel label scores): one forward pass over both."""
        import torch

        context, text = channel_parts(request.messages)
        first = self.tokenizer(context, add_special_tokens=True)["input_ids"]
        tokens = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not tokens:
            raise SynthDistillError("channel scores: the text to score is empty")
        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([first + tokens], device=self.device)).logits[0].float()
        # Position i predicts token i + 1: the text's tokens are predicted from len(first) - 1 on.
        logprobs = torch.log_softmax(logits[len(first) - 1 : -1], dim=-1)
        total = logprobs.gather(1, torch.tensor(tokens, device=logprobs.device).unsqueeze(1)).sum().item()
        return Completion(
            text="", input_tokens=len(first) + len(tokens), output_tokens=0, extra={"text_logprob": total}
        )

    def _left_padded(self, prompts: list[list[int]]) -> tuple[Any, Any]:
        """Input ids and attention mask, padded on the left: every prompt ends at the last column."""
        import torch

        width = max(len(ids) for ids in prompts)
        input_ids = torch.full((len(prompts), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
        return input_ids.to(self.device), attention_mask.to(self.device)

    def _score(self, requests: list[Request], prompts: list[list[int]]) -> list[Completion]:
        """Each label's log-probability as the whole answer (its tokens, then end of turn), teacher-forced:
        one forward pass over the prompts, then one over every continuation (the longest spellings,
        whose prefixes the shorter ones are) from the prompts' key-value cache, repeated per continuation."""
        import torch

        continuations = []
        for request in requests:
            needed = self._labels.prefixes(request.score_labels or [])
            continuations.append([p for p in needed if p and not any(q[: len(p)] == p != q for q in needed)])
        per = max(len(c) for c in continuations)
        # Every prompt gets ``per`` continuation rows (the last one repeated), so the cache repeats evenly.
        rows = [(i, c) for i, conts in enumerate(continuations) for c in conts + [conts[-1]] * (per - len(conts))]
        length = max(len(c) for _, c in rows)
        input_ids, attention_mask = self._left_padded(prompts)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        # Continuations are right-padded: padding after a row's tokens cannot change their logits.
        tokens = torch.full((len(rows), length), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for row, (_, continuation) in enumerate(rows):
            tokens[row, : len(continuation)] = torch.tensor(continuation, dtype=torch.long)
            mask[row, : len(continuation)] = 1
        with torch.inference_mode():
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=True
            )
            first = torch.log_softmax(out.logits[:, -1].float(), dim=-1).cpu()
            cache = out.past_key_values
            cache.batch_repeat_interleave(per)
            prompt_mask = attention_mask.repeat_interleave(per, dim=0)
            positions = prompt_mask.sum(-1, keepdim=True) + torch.arange(length, device=self.device)[None, :]
            logits = self.model(
                input_ids=tokens.to(self.device),
                attention_mask=torch.cat([prompt_mask, mask.to(self.device)], dim=1),
                position_ids=positions,
                past_key_values=cache,
            ).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
        after: list[dict[tuple[int, ...], Any]] = [{(): first[i]} for i in range(len(requests))]
        for row, (index, continuation) in enumerate(rows):
            for end in range(1, len(continuation) + 1):
                after[index].setdefault(continuation[:end], logprobs[row, end - 1])
        completions = []
        for index, (request, ids) in enumerate(zip(requests, prompts, strict=True)):
            completions.append(self._labels.completion(request.score_labels or [], after[index].__getitem__, len(ids)))
        return completions

    def _generate(self, requests: list[Request], prompts: list[list[int]]) -> list[Completion]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        input_ids, attention_mask = self._left_padded(prompts)
        width = input_ids.shape[1]
        max_new = max(r.max_tokens for r in requests)
        config = GenerationConfig(
            do_sample=False,  # sampling, where asked for, happens per row in the logits processor
            max_new_tokens=max_new,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.tokenizer.pad_token_id,
        )
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=config,
                logits_processor=LogitsProcessorList([_per_row_sampler(requests, self.device)]),
            )
        generated = output[:, width:].tolist()
        completions = []
        for request, ids, tokens in zip(requests, prompts, generated, strict=True):
            eos_at = next((k for k, token in enumerate(tokens) if token in self.eos_ids), None)
            if eos_at is not None and eos_at < request.max_tokens:
                length, finish = eos_at + 1, "stop"  # the EOS token counts as generated
            else:
                length, finish = min(len(tokens), request.max_tokens), "length"
            completions.append(
                Completion(
                    text=str(self.tokenizer.decode(tokens[:length], skip_special_tokens=True)),
                    input_tokens=len(ids),
                    output_tokens=length,
                    extra={"finish_reason": finish},
                )
            )
        return completions
