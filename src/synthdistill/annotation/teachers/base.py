"""The one interface every teacher backend implements."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from synthdistill import SynthDistillError

CHANNEL = "channel"


def channel_parts(messages: list[dict[str, str]]) -> tuple[str, str]:
    """A channel request's context and the text scored after it (annotation/channel.py)."""
    if len(messages) != 2 or messages[1].get("role") != "assistant":
        raise SynthDistillError("a channel request is a context and the scored text (two messages)")
    return messages[0]["content"], messages[1]["content"]


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
    # How label scores are computed, when not from the first answer token's alternatives (the
    # HTTP backends' way): "sequence" for in-process backends. In the key, because the same
    # messages scored another way give other answers. CHANNEL: no labels are scored; the answer
    # is the log-probability of the last message's text after the others, read as plain text
    # (``extra["text_logprob"]``; annotation/channel.py).
    label_scoring: str | None = None

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
        each label to its log-probability as the answer: in-process backends score each label's
        whole token sequence (``request.label_scoring == "sequence"``), HTTP backends read the
        first answer token's alternatives.
        Backends that generate in batches also offer ``complete_batch(requests)`` and
        ``batch_size``; the engine then sends them batches instead of single requests.
        ``complete_batch`` returns one answer per request, in order; an exception in a request's
        place records that request as failed and keeps the others' answers.
        """


def label_spellings(label: str) -> list[str]:
    """The answers that count for a label: as written and capitalised. Upper-case and
    leading-space spellings were measured to carry under 1% of a label's probability for SmolLM2
    on FPB (each costs a forward pass per item), so they are left out."""
    return list(dict.fromkeys([label, label.capitalize()]))


def label_sequences(
    labels: list[str], tokenize: Callable[[str], list[int]], end: list[int]
) -> dict[str, list[tuple[int, ...]]]:
    """Each label's spellings as token sequences, each followed by ``end`` (the end-of-turn token).

    A label's score is the probability of the whole answer ``spelling + end`` given the prompt,
    summed over its spellings, so labels that share a first token (``Bearish``/``Bullish``) or
    where one is a prefix of another (``neg``/``negative``) are told apart. Only two labels with
    an identical token sequence could not be, and labels that differ only in case are refused
    earlier (settings.check_labels); a label with no tokens at all is an error.
    """
    sequences: dict[str, list[tuple[int, ...]]] = {}
    owner: dict[tuple[int, ...], str] = {}
    for label in labels:
        found = []
        for spelling in label_spellings(label):
            tokens = tuple(tokenize(spelling))
            if not tokens:
                continue
            sequence = tokens + tuple(end)
            other = owner.setdefault(sequence, label)
            if other != label:
                raise ValueError(
                    f"labels {other!r} and {label!r} tokenize to the same tokens {list(tokens)}, so no score "
                    "can tell them apart; rename one"
                )
            if sequence not in found:
                found.append(sequence)
        if not found:
            raise ValueError(f"label {label!r} has no tokens for this model's tokenizer, so it cannot be scored")
        sequences[label] = found
    return sequences


def prefixes_to_score(sequences: dict[str, list[tuple[int, ...]]]) -> list[tuple[int, ...]]:
    """The distinct proper prefixes of every sequence (the empty one included): the model's
    next-token distribution after each of them is all that scoring the sequences needs. Labels that
    share a first token share the work after it."""
    prefixes = {seq[:n] for seqs in sequences.values() for seq in seqs for n in range(len(seq))}
    return sorted(prefixes, key=lambda prefix: (len(prefix), prefix))


def sequence_scores(
    sequences: dict[str, list[tuple[int, ...]]], next_logprobs: Callable[[tuple[int, ...]], Any]
) -> dict[str, float]:
    """Each label's log-probability: per spelling the sum of its tokens' teacher-forced
    log-probabilities, and the spellings' probabilities added. ``next_logprobs(prefix)`` gives the
    log-softmax over the vocabulary after the prompt followed by ``prefix``."""
    scores = {}
    for label, seqs in sequences.items():
        totals = [sum(float(next_logprobs(seq[:n])[token]) for n, token in enumerate(seq)) for seq in seqs]
        top = max(totals)
        scores[label] = top + math.log(sum(math.exp(t - top) for t in totals))
    return scores


# An answer's stand-in when a chat template is rendered to see what it writes after an answer.
_ANSWER_MARK = "SYNTHDISTILL_ANSWER_MARK"


def text_after_answer(render: Callable[[list[dict[str, str]]], str]) -> str | None:
    """What a chat template writes right after an assistant's answer (its end-of-turn token, a newline),
    read by rendering one exchange with ``render``; None when the template will not render the exchange
    or leaves the answer out: it tells nothing then."""
    turns = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": _ANSWER_MARK}]
    try:
        rendered = render(turns)
    except Exception:
        return None
    if _ANSWER_MARK not in rendered:
        return None
    return rendered[rendered.rindex(_ANSWER_MARK) + len(_ANSWER_MARK) :]


class LabelScorer:
    """How an in-process backend scores labels as whole answers: each label list's spellings as token
    sequences (``label_sequences`` with ``tokenize`` and ``end``, kept per list), the prefixes whose
    next-token log-probabilities that takes, and the answer they give. Labels this model cannot tell
    apart are teacher ``model``'s error."""

    def __init__(self, tokenize: Callable[[str], list[int]], end: list[int], model: str) -> None:
        self.tokenize, self.end, self.model = tokenize, end, model
        self._sequences: dict[tuple[str, ...], dict[str, list[tuple[int, ...]]]] = {}

    def sequences(self, labels: list[str]) -> dict[str, list[tuple[int, ...]]]:
        key = tuple(labels)
        if key not in self._sequences:
            try:
                self._sequences[key] = label_sequences(labels, self.tokenize, self.end)
            except ValueError as exc:
                raise SynthDistillError(f"teacher {self.model}: {exc}") from None
        return self._sequences[key]

    def prefixes(self, labels: list[str]) -> list[tuple[int, ...]]:
        return prefixes_to_score(self.sequences(labels))

    def completion(
        self, labels: list[str], next_logprobs: Callable[[tuple[int, ...]], Any], input_tokens: int
    ) -> Completion:
        """The best label, with every label's ``sequence_scores`` in ``extra["label_logprobs"]``."""
        scores = sequence_scores(self.sequences(labels), next_logprobs)
        best = max(scores, key=lambda label: scores[label])
        return Completion(text=best, input_tokens=input_tokens, output_tokens=0, extra={"label_logprobs": scores})
