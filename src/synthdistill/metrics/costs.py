"""What a text costs: an API teacher from tokens × price, a self-hosted teacher and the student from
measured time × hardware.

Every figure comes with the method that produced it, so the report can print it next to the number;
a figure that cannot be estimated is None with a method that says why, never a silent 0.
"""

from __future__ import annotations

import math
from typing import Any

from synthdistill import SynthDistillError

# Presets for costs.student_hardware, costs.teacher_hardware and teachers.<name>.hardware. Prices
# are on-demand list prices, power a device's board power (TDP) or an assumed share of a host:
# assumptions to compare setups by, printed beside every figure they produce.
HARDWARE_PRESETS: dict[str, dict[str, Any]] = {
    # The reference case's own assumptions for its RoBERTa-base endpoint, so users can compare.
    "t4_reference": {
        "name": "NVIDIA T4 (the reference case's assumptions)",
        "price_per_hour_usd": 0.6,
        "power_w": 70.0,
        "grid_kg_co2_per_kwh": 0.37,
    },
    # AWS c6i.large (2 vCPU, 4 GiB), on-demand us-east-1 list price; 25 W is an assumed share of
    # the host's power for two busy vCPUs. The default for self-hosted teachers: the embedded
    # teacher runs in-process on a machine like this one.
    "cpu_2vcpu_cloud": {
        "name": "2-vCPU cloud VM (AWS c6i.large list price, assumed 25 W)",
        "price_per_hour_usd": 0.085,
        "power_w": 25.0,
        "grid_kg_co2_per_kwh": 0.37,
    },
    # AWS g5.xlarge (one NVIDIA A10G, 4 vCPU), on-demand us-east-1 list price; the A10G's 150 W board power.
    "a10g_cloud": {
        "name": "NVIDIA A10G cloud GPU (AWS g5.xlarge list price, 150 W board power)",
        "price_per_hour_usd": 1.006,
        "power_w": 150.0,
        "grid_kg_co2_per_kwh": 0.37,
    },
}

HARDWARE_KEYS = ("name", "price_per_hour_usd", "power_w", "grid_kg_co2_per_kwh")


def resolve_hardware(settings: dict[str, Any] | None, where: str = "costs.student_hardware") -> dict[str, Any]:
    """The hardware settings in force: a preset's values, overridden by every key set explicitly.
    ``source`` says where they came from (``where`` and the preset), for the methods printed."""
    settings = dict(settings or {})
    preset = settings.pop("preset", None)
    resolved: dict[str, Any] = dict.fromkeys(HARDWARE_KEYS)
    if preset is not None:
        if preset not in HARDWARE_PRESETS:
            raise SynthDistillError(f"{where}.preset: unknown preset {preset!r}; known: {', '.join(HARDWARE_PRESETS)}")
        resolved.update(HARDWARE_PRESETS[preset])
    resolved.update({key: value for key, value in settings.items() if value is not None})
    resolved["preset"] = preset
    resolved["source"] = f"{where}, preset {preset}" if preset else where
    return resolved


def student_hardware(settings: dict[str, Any] | None) -> dict[str, Any]:
    """costs.student_hardware in force (see :func:`resolve_hardware`)."""
    return resolve_hardware(settings, "costs.student_hardware")


# Backends that run on hardware the user pays for by the hour, whatever their tokens.
IN_PROCESS_BACKENDS = ("llama_cpp", "transformers")
TIME_BASIS, TOKEN_BASIS = "measured time", "tokens"


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


def teacher_hardware(costs_settings: dict[str, Any] | None, name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The hardware a teacher runs on: ``costs.teacher_hardware``, with ``teachers.<name>.hardware``
    over it (a preset there starts from that preset instead)."""
    own = {k: v for k, v in (settings.get("hardware") or {}).items() if v is not None}
    if own.get("preset"):
        return resolve_hardware(own, f"teachers.{name}.hardware")
    where = "costs.teacher_hardware" + (f" with teachers.{name}.hardware" if own else "")
    return resolve_hardware({**(costs_settings or {}), **own}, where)


def energy_per_1k_tokens(value: float | dict[str, float] | None) -> dict[str, float] | None:
    """``energy_wh_per_1k_tokens`` as {input, output}: one number applies to both kinds of token."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {"input": float(value["input"]), "output": float(value["output"])}
    return {"input": float(value), "output": float(value)}


def is_self_hosted(settings: dict[str, Any]) -> bool:
    """``self_hosted`` as set, else by backend: in-process backends run on your hardware, HTTP ones
    are APIs that bill tokens."""
    flag = settings.get("self_hosted")
    return settings["backend"] in IN_PROCESS_BACKENDS if flag is None else bool(flag)


def teacher_costing(name: str, settings: dict[str, Any], costs_settings: dict[str, Any] | None) -> dict[str, Any]:
    """How one teacher is costed, resolved from its settings and ``costs.teacher_hardware``.

    A self-hosted teacher (``llama_cpp``, ``transformers``, or ``self_hosted: true`` on an HTTP backend
    pointed at your own server) is charged its measured busy time × its hardware's price and power;
    an API teacher its reported tokens × ``price``, with energy from ``energy_wh_per_1k_tokens`` when set.
    """
    backend = settings["backend"]
    self_hosted = is_self_hosted(settings)
    price = settings.get("price")
    if self_hosted and backend in BATCH_BACKENDS:
        raise SynthDistillError(
            f"teachers.{name}.self_hosted: {backend} is a provider's batch API, billed by tokens; "
            "remove self_hosted and give its price"
        )
    if self_hosted and price and any(price.values()):
        why = f"backend {backend}" if settings.get("self_hosted") is None else "self_hosted: true"
        raise SynthDistillError(
            f"teachers.{name}.price: this teacher runs on hardware you pay for by the hour ({why}), so it is "
            "costed by its measured time × its hardware (costs.teacher_hardware, teachers.<name>.hardware); "
            "remove price, or set self_hosted: false to charge its tokens at the price table instead"
        )
    return {
        "teacher": name,
        "basis": TIME_BASIS if self_hosted else TOKEN_BASIS,
        # None: no price table, so an API teacher's dollars are not estimated (never a silent $0).
        "price": resolve_price(price, backend) if price is not None and not self_hosted else None,
        "hardware": teacher_hardware(costs_settings, name, settings),
        "energy_wh_per_1k_tokens": energy_per_1k_tokens(settings.get("energy_wh_per_1k_tokens")),
    }


def teacher_cost(annotation: dict[str, Any], price: dict[str, Any]) -> float:
    """Dollars for the tokens the API reported (every iteration, CoT included), per the price table."""
    return (
        annotation["input_tokens"] * price.get("input_per_1m_tokens", 0.0)
        + annotation["output_tokens"] * price.get("output_per_1m_tokens", 0.0)
    ) / 1e6


def _token_energy(annotation: dict[str, Any], costing: dict[str, Any]) -> tuple[float | None, str]:
    """kWh for the reported tokens at the teacher's ``energy_wh_per_1k_tokens``, with its method."""
    energy = costing.get("energy_wh_per_1k_tokens")
    if energy is None:
        return None, (
            f"not estimated: teachers.{costing.get('teacher', '<name>')}.energy_wh_per_1k_tokens is not set "
            "(an API does not report energy; give a published estimate)"
        )
    wh = (annotation["input_tokens"] * energy["input"] + annotation["output_tokens"] * energy["output"]) / 1000
    return wh / 1000, (
        f"estimate: reported tokens × {energy['input']:g} Wh per 1k input / {energy['output']:g} Wh per 1k output "
        f"tokens (teachers.{costing.get('teacher', '<name>')}.energy_wh_per_1k_tokens)"
    )


def _time_cost(annotation: dict[str, Any], costing: dict[str, Any]) -> dict[str, Any]:
    """Dollars and kWh of a self-hosted teacher: its measured busy seconds × its hardware."""
    hardware = costing["hardware"]
    seconds = annotation.get("compute_s")
    if seconds is None:
        reason = "not estimated: these vote stats predate measured teacher time; rerun the vote (snakemake -R vote)"
        return {"usd": None, "cost_method": reason, "kwh": None, "energy_method": reason}
    measured = (
        f"{seconds:.4g} s of teacher busy time over {annotation['iterations']} iteration(s) "
        f"({annotation.get('compute_source', 'measured')}; cache hits count the time measured when they were paid)"
    )
    where = f"{hardware.get('name') or 'unnamed hardware'}, {hardware['source']}"
    price = hardware.get("price_per_hour_usd")
    out: dict[str, Any] = {
        "usd": price * seconds / 3600 if price is not None else None,
        "cost_method": (
            f"measured time × ${price:g}/h ({where}): {measured}"
            if price is not None
            else f"not estimated: {hardware['source']} has no price_per_hour_usd"
        ),
    }
    power = hardware.get("power_w")
    if power:
        out["kwh"] = power * seconds / 3600 / 1000
        out["energy_method"] = f"power × time: {power:g} W ({where}) × {seconds:.4g} s of teacher busy time"
    else:
        out["kwh"], out["energy_method"] = _token_energy(annotation, costing)
        if out["kwh"] is None:
            out["energy_method"] = (
                f"not estimated: {hardware['source']} has no power_w and "
                f"teachers.{costing.get('teacher', '<name>')}.energy_wh_per_1k_tokens is not set"
            )
    return out


def teacher_totals(annotation: dict[str, Any], costing: dict[str, Any]) -> dict[str, Any]:
    """Dollars, kWh and kg CO2 for everything one teacher × prompt was paid for, with their methods.

    An ensemble's stats carry its members' totals (``cost_usd`` and the rest), each member costed its own way.
    """
    if "cost_usd" in annotation:
        return {
            "usd": annotation["cost_usd"],
            "kwh": annotation.get("kwh"),
            "kg_co2": annotation.get("kg_co2"),
            "cost_method": annotation.get("cost_method", "its members' costs added up"),
            "energy_method": annotation.get("energy_method", "not estimated for this ensemble"),
            "co2_method": annotation.get("co2_method", "not estimated for this ensemble"),
            "basis": "members",
        }
    if costing.get("basis") == TIME_BASIS:
        out = _time_cost(annotation, costing)
    else:
        price = costing.get("price")
        out = {
            "usd": teacher_cost(annotation, price) if price is not None else None,
            "cost_method": (
                f"measured tokens over {annotation['iterations']} iteration(s) × price table "
                f"(${price.get('input_per_1m_tokens', 0.0):g} in / ${price.get('output_per_1m_tokens', 0.0):g} out "
                f"per 1M tokens, {price.get('pricing_note', 'real-time prices')})"
                if price is not None
                else f"not estimated: teachers.{costing.get('teacher', '<name>')}.price is not set (give the API's "
                "prices, or self_hosted: true to cost your own server by its measured time)"
            ),
        }
        out["kwh"], out["energy_method"] = _token_energy(annotation, costing)
    hardware = costing.get("hardware") or {}
    intensity = hardware.get("grid_kg_co2_per_kwh")
    out["kg_co2"] = out["kwh"] * intensity if out["kwh"] is not None and intensity is not None else None
    if out["kg_co2"] is not None:
        out["co2_method"] = f"energy × {intensity:g} kg CO2/kWh (grid intensity of {hardware['source']})"
    elif out["kwh"] is None:
        out["co2_method"] = "not estimated: no energy figure"
    else:
        out["co2_method"] = (
            f"not estimated: {hardware.get('source', 'costs.teacher_hardware')} has no grid_kg_co2_per_kwh"
        )
    out["basis"] = costing.get("basis", TOKEN_BASIS)
    return out


def annotations_usd(annotations: list[dict[str, Any]], costing: dict[str, Any]) -> float | None:
    """Dollars for every call in ``annotations`` (annotation stats, e.g. one per active round), costed
    as teacher_totals costs a whole annotation (tokens × price, or busy time × hardware); None: not priced."""
    total = {
        key: sum(a.get(key) or 0 for a in annotations)
        for key in ("answers", "input_tokens", "output_tokens", "compute_s")
    }
    total["iterations"] = max([a.get("iterations") or 1 for a in annotations], default=1)
    total["compute_source"] = "busy-time shares measured when each answer was paid for"
    return teacher_totals(total, costing)["usd"] if costing else None


def _per_1m(total: float | None, items: int) -> float | None:
    return total / items * 1e6 if total is not None else None


def teacher_cost_row(stats: dict[str, Any], costing: dict[str, Any]) -> dict[str, Any]:
    """Tokens, latency, dollars, kWh and kg CO2 per 1M texts of one teacher × prompt, with their methods."""
    annotation, items = stats["annotation"], stats["vote"]["items"]
    totals = teacher_totals(annotation, costing)
    price = costing.get("price") or {}
    if totals["basis"] == TOKEN_BASIS and costing.get("price") is not None:
        real_time = {
            "input_per_1m_tokens": price.get("real_time_input_per_1m_tokens", price.get("input_per_1m_tokens", 0.0)),
            "output_per_1m_tokens": price.get("real_time_output_per_1m_tokens", price.get("output_per_1m_tokens", 0.0)),
        }
        at_real_time: float | None = teacher_cost(annotation, real_time)
        pricing = price.get("pricing", "real-time")
    else:
        at_real_time = totals["usd"]
        pricing = {"members": "members' costs", TIME_BASIS: "hardware time"}.get(totals["basis"], "not priced")
    hardware = costing.get("hardware") or {}
    timed = totals["basis"] == TIME_BASIS and annotation.get("compute_s") is not None
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
        # Busy time is what a self-hosted teacher is charged for; an API's latency share is not its cost.
        "compute_s": annotation.get("compute_s") if timed else None,
        "compute_s_per_text": annotation["compute_s"] / items if timed else None,
        "basis": totals["basis"],
        "hardware": hardware.get("name") if totals["basis"] == TIME_BASIS else None,
        "price_input_per_1m_tokens": price.get("input_per_1m_tokens"),
        "price_output_per_1m_tokens": price.get("output_per_1m_tokens"),
        "pricing": pricing,
        "cost_usd": totals["usd"],
        "cost_usd_at_real_time_prices": at_real_time,
        "usd_per_1m_texts": _per_1m(totals["usd"], items),
        "method": totals["cost_method"],
        "kwh": totals["kwh"],
        "kwh_per_1m_texts": _per_1m(totals["kwh"], items),
        "energy_method": totals["energy_method"],
        "kg_co2": totals["kg_co2"],
        "kg_co2_per_1m_texts": _per_1m(totals["kg_co2"], items),
        "co2_method": totals["co2_method"],
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
    fixed_usd: float | None, teacher_usd_per_text: float | None, student_usd_per_text: float | None
) -> dict[str, Any]:
    """After how many texts the student, fixed costs included, is cheaper than calling the teacher.

    The student pays ``fixed_usd`` once (the teacher's annotation of its training data and its
    training run) and then ``student_usd_per_text``; the teacher pays ``teacher_usd_per_text`` per text.
    """
    if teacher_usd_per_text is None:
        return {"texts": None, "note": "not computed: the teacher's cost is not estimated (see the teacher cost table)"}
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
