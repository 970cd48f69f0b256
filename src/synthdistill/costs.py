"""What a text costs: the teacher from tokens × price, the student from measured time × hardware.

Every figure comes with the method that produced it, so the report can print it next to the number.
"""

from __future__ import annotations

import math
from typing import Any

from synthdistill.errors import SynthDistillError

# The reference case's own assumptions for its RoBERTa-base endpoint, so users can compare
# (a T4 at $0.6 per hour drawing 70 W, on a grid emitting 0.37 kg CO2 per kWh).
HARDWARE_PRESETS: dict[str, dict[str, Any]] = {
    "t4_reference": {
        "name": "NVIDIA T4 (the reference case's assumptions)",
        "price_per_hour_usd": 0.6,
        "power_w": 70.0,
        "grid_kg_co2_per_kwh": 0.37,
    },
}

HARDWARE_KEYS = ("name", "price_per_hour_usd", "power_w", "grid_kg_co2_per_kwh")


def student_hardware(settings: dict[str, Any] | None) -> dict[str, Any]:
    """The hardware settings in force: a preset's values, overridden by every key set explicitly."""
    settings = dict(settings or {})
    preset = settings.pop("preset", None)
    resolved: dict[str, Any] = dict.fromkeys(HARDWARE_KEYS)
    if preset is not None:
        if preset not in HARDWARE_PRESETS:
            raise SynthDistillError(
                f"costs.student_hardware.preset: unknown preset {preset!r}; known: {', '.join(HARDWARE_PRESETS)}"
            )
        resolved.update(HARDWARE_PRESETS[preset])
    resolved.update({key: value for key, value in settings.items() if value is not None})
    resolved["preset"] = preset
    return resolved


BATCH_BACKENDS = ("openai_batch", "anthropic_batch")
# OpenAI's Batch API and Anthropic's Message Batches both cost half of real-time calls.
DEFAULT_BATCH_DISCOUNT = 0.5


def resolve_price(price: dict[str, Any] | None, backend: str | None) -> dict[str, Any]:
    """The prices a teacher's tokens are charged at, and which ones: ``pricing`` is ``batch`` for a batch
    backend (``batch_input_per_1m_tokens`` / ``batch_output_per_1m_tokens`` when set, else the real-time
    prices × (1 − ``batch_discount``, default 0.5)), ``real-time`` otherwise. The real-time prices stay
    in ``real_time_input_per_1m_tokens`` / ``real_time_output_per_1m_tokens`` for comparison."""
    price = dict(price or {})
    real_in = float(price.get("input_per_1m_tokens", 0.0))
    real_out = float(price.get("output_per_1m_tokens", 0.0))
    resolved: dict[str, Any] = {
        "input_per_1m_tokens": real_in,
        "output_per_1m_tokens": real_out,
        "real_time_input_per_1m_tokens": real_in,
        "real_time_output_per_1m_tokens": real_out,
        "pricing": "real-time",
        "pricing_note": "real-time prices",
    }
    if backend not in BATCH_BACKENDS:
        return resolved
    discount = float(price.get("batch_discount", DEFAULT_BATCH_DISCOUNT))
    explicit = [k for k in ("batch_input_per_1m_tokens", "batch_output_per_1m_tokens") if k in price]
    resolved["input_per_1m_tokens"] = float(price.get("batch_input_per_1m_tokens", real_in * (1 - discount)))
    resolved["output_per_1m_tokens"] = float(price.get("batch_output_per_1m_tokens", real_out * (1 - discount)))
    resolved["pricing"] = "batch"
    if len(explicit) == 2:
        resolved["pricing_note"] = "batch prices from the price table"
    else:
        source = "configured" if "batch_discount" in price else "provider default"
        resolved["pricing_note"] = f"batch prices: real-time prices − {discount:.0%} batch discount ({source})"
        if explicit:
            resolved["pricing_note"] += f"; {', '.join(explicit)} as configured"
    return resolved


def teacher_cost(annotation: dict[str, Any], price: dict[str, float]) -> float:
    """Dollars for the tokens the API reported (every iteration, CoT included), per the price table."""
    if "cost_usd" in annotation:  # an ensemble: its members' tokens, each at its own price
        return annotation["cost_usd"]
    return (
        annotation["input_tokens"] * price.get("input_per_1m_tokens", 0.0)
        + annotation["output_tokens"] * price.get("output_per_1m_tokens", 0.0)
    ) / 1e6


def teacher_cost_row(stats: dict[str, Any], price: dict[str, float]) -> dict[str, Any]:
    """Tokens, latency and dollars per 1M texts of one teacher × prompt, from its vote stats."""
    annotation, items = stats["annotation"], stats["vote"]["items"]
    total = teacher_cost(annotation, price)
    real_time = {
        "input_per_1m_tokens": price.get("real_time_input_per_1m_tokens", price.get("input_per_1m_tokens", 0.0)),
        "output_per_1m_tokens": price.get("real_time_output_per_1m_tokens", price.get("output_per_1m_tokens", 0.0)),
    }
    pricing = price.get("pricing", "real-time")
    return {
        "texts": items,
        "iterations": annotation["iterations"],
        "calls": annotation["answers"],
        "input_tokens": annotation["input_tokens"],
        "output_tokens": annotation["output_tokens"],
        "input_tokens_per_text": annotation["input_tokens"] / items,
        "output_tokens_per_text": annotation["output_tokens"] / items,
        "latency_p50_s": annotation["latency_p50_s"],
        "latency_p95_s": annotation["latency_p95_s"],
        "price_input_per_1m_tokens": price.get("input_per_1m_tokens", 0.0),
        "price_output_per_1m_tokens": price.get("output_per_1m_tokens", 0.0),
        "pricing": "members' prices" if "cost_usd" in annotation else pricing,
        "cost_usd": total,
        "cost_usd_at_real_time_prices": total if "cost_usd" in annotation else teacher_cost(annotation, real_time),
        "usd_per_1m_texts": total / items * 1e6,
        "method": (
            f"measured tokens over {annotation['iterations']} member iteration(s), each at its member's price"
            if "cost_usd" in annotation
            else f"measured tokens over {annotation['iterations']} iteration(s) × price table "
            f"(${price.get('input_per_1m_tokens', 0.0):g} in / ${price.get('output_per_1m_tokens', 0.0):g} out "
            f"per 1M tokens, {price.get('pricing_note', 'real-time prices')})"
        ),
    }


def student_cost_row(benchmark: dict[str, Any], hardware: dict[str, Any]) -> dict[str, Any]:
    """Latency, throughput, dollars, energy and CO2 per 1M texts of one student, with their methods.

    Dollars are the configured price per hour over the measured best-batch throughput. Energy is
    CodeCarbon's measurement when it could read the device's power, else the configured device
    power × the time 1M texts take at that throughput; CO2 is energy × the configured grid intensity.
    """
    throughput = benchmark["throughput"]["best_texts_per_second"]
    seconds_per_1m = 1e6 / throughput
    price = hardware.get("price_per_hour_usd")
    where = f"on {benchmark['device']['name']}"
    row: dict[str, Any] = {
        "backend": benchmark["backend"],
        "device": benchmark["device"]["name"],
        "latency_batch1_p50_ms": benchmark["latency"]["p50_ms"],
        "latency_batch1_p95_ms": benchmark["latency"]["p95_ms"],
        "throughput_texts_per_s": throughput,
        "best_batch_size": benchmark["throughput"]["best_batch_size"],
        "usd_per_1m_texts": price * seconds_per_1m / 3600 if price is not None else None,
        "cost_method": (
            f"${price}/h ({_hardware_source(hardware)}) × measured time for 1M texts at best batch {where}"
            if price is not None
            else "not estimated: costs.student_hardware.price_per_hour_usd is not set"
        ),
    }
    measured = benchmark.get("energy") or {}
    if measured.get("measured"):
        kwh_per_1m = measured["kwh"] / measured["texts"] * 1e6
        energy_method = f"measured with CodeCarbon ({measured['source']}) over {measured['texts']} texts {where}"
    elif hardware.get("power_w"):
        kwh_per_1m = hardware["power_w"] * seconds_per_1m / 3600 / 1000
        why = measured.get("reason") or "CodeCarbon was off"
        energy_method = (
            f"power × time: {hardware['power_w']} W ({_hardware_source(hardware)}) × measured time "
            f"for 1M texts {where}; CodeCarbon could not read power ({why})"
        )
    else:
        kwh_per_1m = None
        energy_method = "not estimated: no measured power and costs.student_hardware.power_w is not set"
    intensity = hardware.get("grid_kg_co2_per_kwh")
    row["kwh_per_1m_texts"] = kwh_per_1m
    row["energy_method"] = energy_method
    row["kg_co2_per_1m_texts"] = kwh_per_1m * intensity if kwh_per_1m is not None and intensity is not None else None
    row["co2_method"] = (
        f"energy × {intensity} kg CO2/kWh ({_hardware_source(hardware)})"
        if row["kg_co2_per_1m_texts"] is not None
        else "not estimated: no energy figure or costs.student_hardware.grid_kg_co2_per_kwh is not set"
    )
    return row


def _hardware_source(hardware: dict[str, Any]) -> str:
    return f"preset {hardware['preset']}" if hardware.get("preset") else "configured"


def training_cost(train_seconds: float, hardware: dict[str, Any]) -> float | None:
    """Dollars for a training run at the configured price per hour, or None without a price."""
    price = hardware.get("price_per_hour_usd")
    return price * train_seconds / 3600 if price is not None else None


def training_energy(train_seconds: float, hardware: dict[str, Any]) -> dict[str, Any] | None:
    """kWh and kg CO2 for a training run as power × time, or None without a configured power."""
    power_w = hardware.get("power_w")
    if not power_w:
        return None
    kwh = power_w * train_seconds / 3600 / 1000
    intensity = hardware.get("grid_kg_co2_per_kwh")
    return {
        "kwh": kwh,
        "kg_co2": kwh * intensity if intensity is not None else None,
        "method": f"power × time: {power_w} W × {train_seconds:.0f} s"
        + (f", {intensity} kg CO2/kWh" if intensity is not None else ""),
    }


def break_even(
    fixed_usd: float | None, teacher_usd_per_text: float, student_usd_per_text: float | None
) -> dict[str, Any]:
    """After how many texts the student, fixed costs included, is cheaper than calling the teacher.

    The student pays ``fixed_usd`` once (the teacher's annotation of its training data and its
    training run) and then ``student_usd_per_text``; the teacher pays ``teacher_usd_per_text`` per text.
    """
    if fixed_usd is None or student_usd_per_text is None:
        return {"texts": None, "note": "not computed: the student's price per hour is not configured"}
    saving = teacher_usd_per_text - student_usd_per_text
    if saving <= 0:
        return {"texts": None, "note": "never: the teacher costs no more per text than the student at these prices"}
    texts = math.ceil(fixed_usd / saving)
    return {
        "texts": texts,
        "note": f"${fixed_usd:.4g} fixed / (${teacher_usd_per_text:.3g} − ${student_usd_per_text:.3g} per text)",
    }
