"""When the student answers and when it defers to the teacher: the cascade's operating point.

The ``cascade`` rule fits the policy on the validation split and writes it into
``results/cascade/{student}/{teacher}/{prompt}.json``; the serving endpoint reads it back with
``CascadePolicy.from_file`` so the threshold it applies is exactly the one the report measured.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthdistill import SynthDistillError

CONFIDENCES = ("max_prob", "margin")

# log(0) would make every temperature give the same -inf; a probability this small is already
# far below anything float32 softmax output distinguishes, so clipping changes no ranking.
_LOG_FLOOR = 1e-12


def _as_matrix(probabilities: np.ndarray | list) -> np.ndarray:
    matrix = np.asarray(probabilities, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise SynthDistillError(
            f"cascade policy: expected probabilities of shape (texts, labels) with at least 2 labels, "
            f"got shape {matrix.shape}"
        )
    return matrix


def temperature_scale(probabilities: np.ndarray | list, temperature: float) -> np.ndarray:
    """Softmax of log-probabilities / temperature: the same as scaling the logits, which we no longer have."""
    logits = np.log(np.clip(_as_matrix(probabilities), _LOG_FLOOR, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def confidence_of(probabilities: np.ndarray, kind: str) -> np.ndarray:
    """max_prob: the top probability; margin: top minus runner-up (low when two labels compete)."""
    if kind == "max_prob":
        return probabilities.max(axis=1)
    if kind == "margin":
        top_two = np.sort(probabilities, axis=1)[:, -2:]
        return top_two[:, 1] - top_two[:, 0]
    raise SynthDistillError(f"cascade.confidence: unknown confidence {kind!r}; choose one of {', '.join(CONFIDENCES)}")


@dataclass(frozen=True)
class CascadePolicy:
    """Defer a text to the teacher when the student's (temperature-scaled) confidence is below threshold."""

    confidence: str  # "max_prob" | "margin"
    temperature: float
    threshold: float

    def __post_init__(self) -> None:
        if self.confidence not in CONFIDENCES:
            raise SynthDistillError(
                f"cascade policy: unknown confidence {self.confidence!r}; choose one of {', '.join(CONFIDENCES)}"
            )
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise SynthDistillError(f"cascade policy: temperature must be a positive number, got {self.temperature!r}")
        if not np.isfinite(self.threshold):
            raise SynthDistillError(f"cascade policy: threshold must be a finite number, got {self.threshold!r}")

    def scaled(self, probabilities: np.ndarray | list) -> np.ndarray:
        return temperature_scale(probabilities, self.temperature)

    def confidences(self, probabilities: np.ndarray | list) -> np.ndarray:
        return confidence_of(self.scaled(probabilities), self.confidence)

    def defer(self, probabilities: np.ndarray | list) -> np.ndarray:
        """True where the teacher should answer."""
        return self.confidences(probabilities) < self.threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "cascade policy") -> CascadePolicy:
        if not isinstance(data, dict):
            raise SynthDistillError(f"{source}: 'policy' must be an object with confidence, temperature, threshold")
        missing = [key for key in ("confidence", "temperature", "threshold") if key not in data]
        if missing:
            raise SynthDistillError(f"{source}: 'policy' lacks {', '.join(missing)}")
        try:
            return cls(str(data["confidence"]), float(data["temperature"]), float(data["threshold"]))
        except (TypeError, ValueError) as error:
            raise SynthDistillError(
                f"{source}: 'policy' has a non-numeric temperature or threshold ({error})"
            ) from None
        except SynthDistillError as error:
            raise SynthDistillError(f"{source}: {error}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> CascadePolicy:
        """Read the ``policy`` object of a cascade artifact (results/cascade/{student}/{teacher}/{prompt}.json)."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise SynthDistillError(f"{path}: cascade file not found (run `snakemake` to build the cascade)") from None
        except json.JSONDecodeError as error:
            raise SynthDistillError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(data, dict) or "policy" not in data:
            raise SynthDistillError(f"{path}: no 'policy' object; is this a cascade file?")
        return cls.from_dict(data["policy"], str(path))
