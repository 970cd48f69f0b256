"""Several generations at once on one llama.cpp model: every prompt in its own sequence, then one
``llama_decode`` per step for all unfinished sequences, each sampled by its own sampler chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What create_completion uses besides temperature and top_p; kept so that a request sampled in a batch
# draws from the same distribution as the one-at-a-time path (batch_size 1).
TOP_K = 40
MIN_P = 0.05
TYPICAL_P = 1.0
# Cells and batch tokens are rounded up to this step, so that similar batches reuse one context.
CELL_STEP = 256


@dataclass
class Generation:
    """One request's part of a batch: its prompt tokens and settings in, its answer out."""

    prompt: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    grammar: Any = None  # a LlamaGrammar, or None for free text
    tokens: list[int] | None = None
    text: str = ""


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def sampler_chain(generation: Generation, vocab: Any) -> Any:
    """The sampler chain create_completion builds for these settings (its repeat penalty of 1.0 is a
    no-op and left out): the grammar first, so that only tokens it allows are candidates, then greedy
    at temperature 0, else top-k, typical, top-p, min-p, temperature and a draw seeded per request."""
    import llama_cpp

    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = lambda sampler: llama_cpp.llama_sampler_chain_add(chain, sampler)  # noqa: E731
    if generation.grammar is not None:
        grammar = generation.grammar
        add(llama_cpp.llama_sampler_init_grammar(vocab, grammar._grammar.encode(), grammar._root.encode()))
    if generation.temperature == 0:
        add(llama_cpp.llama_sampler_init_greedy())
        return chain
    add(llama_cpp.llama_sampler_init_top_k(TOP_K))
    add(llama_cpp.llama_sampler_init_typical(TYPICAL_P, 1))
    add(llama_cpp.llama_sampler_init_top_p(generation.top_p, 1))
    add(llama_cpp.llama_sampler_init_min_p(MIN_P, 1))
    add(llama_cpp.llama_sampler_init_temp(generation.temperature))
    seed = llama_cpp.LLAMA_DEFAULT_SEED if generation.seed is None else generation.seed
    add(llama_cpp.llama_sampler_init_dist(seed))
    return chain


class MultiSequenceContext:
    """A llama.cpp context for several sequences, next to the model's own one-sequence context.

    Each sequence has its own KV stream (``kv_unified`` off), filled from cell 0 as in the
    one-sequence context, and each prompt is decoded in a call of its own: so a request gets the
    logits the one-at-a-time path computes, bit for bit, and the same answer from the same seed.
    (Measured with llama-cpp-python 0.3.36: in a unified cache, or with several prompts in one call,
    a sequence's logits moved by up to 1 nat with the other sequences' lengths.) The prompts of a
    batch share the template's head (system prompt, instructions): it is decoded once and copied to
    every stream, so each sequence decodes only its own tail, as the one-at-a-time path does by
    reusing the previous prompt's prefix. The context grows (rebuilt) when a batch needs more
    sequences, or longer ones, than it holds.
    """

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.ctx: Any = None
        self.n_seq = self.n_cells = 0
        # The template head left in the streams by the last batch, and how many streams hold it: the next
        # batch (same template) decodes none of it again, as the one-at-a-time path reuses its prefix.
        self.head: list[int] = []
        self.head_streams = 0

    def _ensure(self, n_seq: int, n_cells: int) -> None:
        """A context for ``n_seq`` sequences of up to ``n_cells`` tokens each."""
        import llama_cpp
        from llama_cpp import _internals

        if self.ctx is not None and n_seq <= self.n_seq and n_cells <= self.n_cells:
            return
        most = llama_cpp.llama_max_parallel_sequences()
        if n_seq > most:
            raise ValueError(f"batch_size {n_seq} is more than the {most} sequences llama.cpp decodes together")
        n_seq = max(n_seq, self.n_seq)
        n_cells = max(_round_up(n_cells, CELL_STEP), self.n_cells)
        if self.ctx is not None:
            self.ctx.close()
            self.ctx = None
        own = self.llm.context_params
        params = llama_cpp.llama_context_default_params()
        for name in ("n_threads", "n_threads_batch", "flash_attn_type", "type_k", "type_v"):
            setattr(params, name, getattr(own, name))
        params.n_seq_max = n_seq
        params.kv_unified = False
        params.n_ctx = n_seq * n_cells  # one stream of n_cells per sequence
        params.n_batch = max(n_cells, n_seq)  # a whole prompt, or one token of every sequence, per call
        params.n_ubatch = min(params.n_batch, own.n_ubatch)
        self.ctx = _internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        self.n_seq, self.n_cells = n_seq, n_cells
        self.head, self.head_streams = [], 0

    def generate(self, generations: list[Generation], stop: list[str]) -> None:
        """Fill in each generation's ``tokens`` (end-of-generation excluded, as create_completion counts
        them) and ``text``: sampled until end of generation, a stop string or its ``max_tokens``."""
        import llama_cpp

        if not generations:
            return
        prompts = [g.prompt for g in generations]
        # At least one token of each prompt is its own, so that its first answer token has logits. A lone
        # prompt shares no more than the head already decoded, so that its tail is decoded in one call as
        # the one-at-a-time path does: decoding its last token in a call of its own was seen to change the
        # logits (and an answer; tests/test_llama_batch.py).
        together = prompts if len(prompts) > 1 else [self.head, prompts[0]]
        shared = min(_common_prefix(together), min(len(p) for p in prompts) - 1)
        self._ensure(len(generations), max(len(g.prompt) + g.max_tokens for g in generations))
        ctx = self.ctx.ctx
        memory = llama_cpp.llama_get_memory(ctx)
        keep = _common_prefix([self.head, prompts[0][:shared]])
        # Every stream keeps no more than the head this batch shares with the last one.
        llama_cpp.llama_memory_seq_rm(memory, -1, keep, -1)
        vocab = self.llm._model.vocab
        chains = [sampler_chain(g, vocab) for g in generations]
        batch = llama_cpp.llama_batch_init(max(self.n_cells, len(generations)), 0, 1)
        try:
            if shared > keep:
                _fill(batch, [(prompts[0][pos], pos, 0, False) for pos in range(keep, shared)])
                _decode(ctx, batch)
                self.head_streams = 1
            self.head = prompts[0][:shared]
            for seq in range(self.head_streams, len(generations)):
                llama_cpp.llama_memory_seq_rm(memory, seq, -1, -1)
                llama_cpp.llama_memory_seq_cp(memory, 0, seq, -1, -1)
            self.head_streams = max(self.head_streams, len(generations))
            last: dict[int, int] = {}  # sequence -> the token to decode next
            for seq, prompt in enumerate(prompts):
                _fill(batch, [(prompt[pos], pos, seq, pos == len(prompt) - 1) for pos in range(shared, len(prompt))])
                _decode(ctx, batch)
                generations[seq].tokens = []
                token = llama_cpp.llama_sampler_sample(chains[seq], ctx, -1)
                if self._take(generations[seq], token, stop):
                    last[seq] = token
            # One token of every unfinished sequence per call: the step that batching makes cheaper.
            while last:
                active = list(last)
                positions = [len(prompts[seq]) + len(generations[seq].tokens or []) - 1 for seq in active]
                _fill(batch, [(last[seq], pos, seq, True) for seq, pos in zip(active, positions, strict=True)])
                _decode(ctx, batch)
                for index, seq in enumerate(active):
                    token = llama_cpp.llama_sampler_sample(chains[seq], ctx, index)
                    if self._take(generations[seq], token, stop):
                        last[seq] = token
                    else:
                        del last[seq]
        except BaseException:
            self.head, self.head_streams = [], 0  # the streams' contents are unknown: the next batch starts afresh
            raise
        finally:
            llama_cpp.llama_batch_free(batch)
            for chain in chains:
                llama_cpp.llama_sampler_free(chain)
        for generation in generations:
            generation.text = self._text(generation, stop)

    def _take(self, generation: Generation, token: int, stop: list[str]) -> bool:
        """Add a sampled token; False when the sequence is finished (the end token is not added)."""
        import llama_cpp

        assert generation.tokens is not None
        if llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token):
            return False
        generation.tokens.append(token)
        if stop and any(s in self._text(generation, []) for s in stop):
            return False
        return len(generation.tokens) < generation.max_tokens

    def _text(self, generation: Generation, stop: list[str]) -> str:
        raw = self.llm.detokenize(generation.tokens or [], prev_tokens=generation.prompt)
        text = raw.decode("utf-8", errors="ignore")
        for s in stop:
            if s in text:
                text = text[: text.index(s)]
        return text


def _common_prefix(prompts: list[list[int]]) -> int:
    first = prompts[0]
    n = min(len(p) for p in prompts)
    for other in prompts[1:]:
        n = next((i for i in range(n) if other[i] != first[i]), n)
    return n


def _fill(batch: Any, tokens: list[tuple[int, int, int, bool]]) -> None:
    """Put (token, position, sequence, wants logits) entries into a llama_batch."""
    batch.n_tokens = len(tokens)
    for i, (token, pos, seq, logits) in enumerate(tokens):
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
        batch.logits[i] = logits


def _decode(ctx: Any, batch: Any) -> None:
    import llama_cpp

    code = llama_cpp.llama_decode(ctx, batch)
    if code != 0:
        raise RuntimeError(f"llama_decode returned {code} for a batch of {batch.n_tokens} tokens")
