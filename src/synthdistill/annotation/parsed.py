"""What every parser of a teacher's answer returns, and the words they share: the statuses, ``Parsed``
and ``match_label``. Apart from the dispatcher (``parsing.parse``) so each task's parser can import
these without importing the dispatcher that imports it."""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"
NOT_A_LABEL = "not_a_label"
INVALID_JSON = "invalid_json"
EMPTY = "empty"
ERROR = "request_error"

# Markup a chat model wraps around a bare word (``**neutral**``, ``"neutral".``, ``(neutral)``).
_WRAPPING = frozenset(" \t\r\n\"'`*_.:;!()[]")


@dataclass(frozen=True)
class Parsed:
    label: str | None
    reason: str | None
    status: str


def _wrapped_in_markup(answer: str, label: str) -> bool:
    """Whether ``answer`` is ``label`` with only markup characters before and after it (both lower-cased).
    The label itself is never stripped, so a label that begins or ends with those characters
    (``U.S.``, ``Other (specify)``) still matches: the markup is what the answer has beyond it."""
    start = answer.find(label)
    while start != -1:
        before, after = answer[:start], answer[start + len(label) :]
        if _WRAPPING.issuperset(before) and _WRAPPING.issuperset(after):
            return True
        if not _WRAPPING.issuperset(before):
            return False  # a later occurrence has even more in front of it
        start = answer.find(label, start + 1)
    return False


def match_label(answer: str, labels: list[str]) -> str | None:
    """The label the answer names, else None: the label exactly as written first (so an exact answer
    always parses to itself, whatever its punctuation), then ignoring case (labels that differ only in
    case are refused by settings.check_labels), then the one label the answer wraps in markup. When
    markup could be read two ways (labels ``U.S`` and ``U.S.``, answer ``**U.S.**``) nothing is guessed."""
    stripped = answer.strip()
    if stripped in labels:
        return stripped
    lowered = stripped.lower()
    for label in labels:
        if label.lower() == lowered:
            return label
    wrapped = [label for label in labels if _wrapped_in_markup(lowered, label.lower())]
    return wrapped[0] if len(wrapped) == 1 else None
