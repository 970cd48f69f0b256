"""Serve one student over HTTP, optionally as a cascade that defers unsure texts to the teacher.

    synthdistill-serve results/students/minilm/smollm2/scores             # the student alone
    synthdistill-serve results/students/minilm/smollm2/scores \\
        --teacher smollm2 --prompt scores                                 # the cascade

Run it from the workflow folder: the config (``--configfile``, default config/config.yaml, merged in
order like Snakemake's) gives the teacher, the prompt template, the response cache and the ``serve``
settings; the cascade's threshold is read from results/cascade/<student>/<teacher>/<prompt>.json
unless ``--cascade FILE`` or ``--threshold`` says otherwise.

Authentication: put a secret in the environment variable SYNTHDISTILL_SERVE_TOKEN (never on the
command line, where ps and shell history show it) and every call to /v1/classify and /metrics
must send the header ``Authorization: Bearer <secret>``; a bare ``GET /health`` (a load balancer's
check) then answers only its status. Listening beyond loopback (``--host 0.0.0.0``) with ``--teacher`` lets any caller
spend teacher money, so it needs the token, or ``--allow-unauthenticated`` where a reverse proxy in
front of the service authenticates. SIGTERM stops it gracefully (serve.shutdown_timeout_s).
See docs/serving.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from synthdistill import SynthDistillError
from synthdistill.logs import QUIET_LOGGERS
from synthdistill.schema import defaults, with_defaults
from synthdistill.students.cascade_policy import CONFIDENCES, CascadePolicy
from synthdistill.tasks import MULTI_LABEL

log = logging.getLogger("synthdistill.serve")
DEFAULT_CONFIG = "config/config.yaml"
# An ONNX run of this many tokens (8 texts of 128) or more shrinks the arena back after it: the usual
# short texts keep it warm (shrinking after every run cost 15% of throughput), long ones return it.
RELEASE_ARENA_AFTER_TOKENS = 1024
INTERRUPTED = 130  # the shell's status for a process Ctrl-C stopped
# The bearer token's environment variable: a flag's value would show in ps and shell history.
TOKEN_ENV = "SYNTHDISTILL_SERVE_TOKEN"


def student_facts(student_dir: Path) -> dict[str, Any]:
    """Name, teacher, prompt and max_length of a student folder (results/students/<s>/<t>/<p>)."""
    facts: dict[str, Any] = {"student": student_dir.resolve().name, "teacher": None, "prompt": None}
    parts = student_dir.resolve().parts
    if len(parts) >= 3 and "students" in parts[:-3]:
        facts.update(student=parts[-3], teacher=parts[-2], prompt=parts[-1])
    metadata = student_dir / "metadata.json"
    if metadata.exists():
        data = json.loads(metadata.read_text())
        facts["teacher"] = data.get("teacher", facts["teacher"])
        facts["prompt"] = data.get("prompt", facts["prompt"])
        facts["max_length"] = (data.get("hyperparameters") or {}).get("max_length")
    return facts


def cascade_policy(args: argparse.Namespace, facts: dict[str, Any]) -> CascadePolicy | None:
    if args.threshold is not None:
        return CascadePolicy(args.confidence, args.temperature, args.threshold)
    if args.cascade:
        return CascadePolicy.from_file(args.cascade)
    if args.teacher:
        path = Path("results/cascade") / facts["student"] / str(facts["teacher"]) / f"{facts['prompt']}.json"
        if not path.exists():
            raise SynthDistillError(
                f"--teacher {args.teacher}: deferring needs the cascade's threshold, and {path} does not exist; "
                "build it (snakemake), or give --cascade FILE or --threshold"
            )
        return CascadePolicy.from_file(path)
    return None


def is_loopback(host: str) -> bool:
    """Whether ``--host`` listens on this machine only (a name other than localhost may resolve anywhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_token(args: argparse.Namespace) -> str | None:
    """The token every caller must send, from the environment; refuses a teacher open to the network
    without one, unless --allow-unauthenticated says something in front authenticates."""
    token = os.environ.get(TOKEN_ENV)
    if token is not None and not token.strip():
        raise SynthDistillError(f"{TOKEN_ENV} is set but empty; set it to a secret, or unset it")
    if token is None and not is_loopback(args.host):
        if args.teacher and not args.allow_unauthenticated:
            raise SynthDistillError(
                f"--host {args.host} with --teacher: anyone who reaches this machine could spend teacher money. "
                f"Set {TOKEN_ENV} (callers then send 'Authorization: Bearer <token>'), listen on 127.0.0.1 "
                "behind a reverse proxy, or pass --allow-unauthenticated if something in front authenticates"
            )
        log.warning("listening on %s without %s: every caller is served", args.host, TOKEN_ENV)
    return token.strip() if token is not None else None


def default_workers(on_gpu: bool) -> int:
    """One micro-batch at a time on a GPU; on a CPU, one per two cores (at least two)."""
    return 1 if on_gpu else max(2, (os.cpu_count() or 1) // 2)


def build_service(args: argparse.Namespace):
    from synthdistill.serving.deferral import TeacherDeferral, load_config
    from synthdistill.serving.service import ClassifierService, ServeSettings
    from synthdistill.students.inference import load_predictor, student_task

    student_dir = Path(args.student_dir)
    if not student_dir.exists():
        raise SynthDistillError(f"{student_dir}: no such student folder")
    facts = student_facts(student_dir)
    if student_task(student_dir) == MULTI_LABEL and (args.teacher or args.cascade or args.threshold is not None):
        raise SynthDistillError(
            f"{student_dir}: a multi_label student answers label sets on its own; deferral to a teacher "
            "(--teacher, --cascade, --threshold: the cascade) is single-label only. Serve it without them."
        )
    student = args.student_name or facts["student"]
    config_files = args.configfile or ([DEFAULT_CONFIG] if Path(DEFAULT_CONFIG).exists() else [])
    if args.teacher and not config_files:
        raise SynthDistillError("--teacher needs the pipeline's config (--configfile): it defines the teacher")
    config = load_config(config_files) if config_files else {}
    overrides = {
        "max_batch_size": args.max_batch_size,
        "inner_batch_size": args.inner_batch_size,
        "workers": args.workers,
        "max_wait_ms": args.max_wait_ms,
        "teacher_timeout_s": args.teacher_timeout_s,
        "teacher_max_pending": args.teacher_max_pending,
    }
    settings = ServeSettings.from_config(config.get("serve"), **overrides)
    if args.teacher and not args.prompt:
        raise SynthDistillError("--teacher needs --prompt: the prompt (from the config) the teacher is asked with")
    policy = cascade_policy(args, facts)
    deferral = None
    if args.teacher:
        feedback = args.feedback or with_defaults(config.get("serve"), "serve")["feedback_path"]
        deferral = TeacherDeferral(config, args.teacher, args.prompt, student, feedback)
    max_length = args.max_length or facts.get("max_length") or defaults("students", "*")["max_length"]
    import torch

    # Chunks of inner_batch_size save padding on a CPU; a GPU wants the whole micro-batch in one call.
    on_gpu = args.backend != "onnx" and torch.cuda.is_available()
    inner = settings.max_batch_size if on_gpu else settings.inner_batch_size
    workers = settings.workers or default_workers(on_gpu)
    settings = dataclasses.replace(settings, workers=workers)
    # The cores are shared out between the workers' runs, so that two runs do not fight over them.
    threads = args.threads or max(1, (os.cpu_count() or 1) // workers)
    predictor = load_predictor(student_dir, args.backend, int(max_length), inner, threads, spinning=args.spinning)
    if hasattr(predictor, "release_arena_after_tokens"):  # ONNX: long texts' memory goes back after their run
        predictor.release_arena_after_tokens = RELEASE_ARENA_AFTER_TOKENS
    max_chars = config.get("dataset", {}).get("max_chars") if config else None
    service = ClassifierService(predictor, settings, student, policy, deferral, max_chars=max_chars)
    predictor.predict_proba(["warm-up"])  # the first call allocates; no client should pay for it
    return service


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="synthdistill-serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("student_dir", help="a trained student folder (results/students/<student>/<teacher>/<prompt>)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (0.0.0.0: every interface, so every machine that reaches this one can call "
        f"it; with --teacher that needs a token in {TOKEN_ENV}, or --allow-unauthenticated)",
    )
    p.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help=f"serve a teacher on a non-loopback --host without {TOKEN_ENV} (say, behind a proxy that authenticates)",
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto")
    p.add_argument(
        "--threads", type=int, default=None, help="ONNX intra-op threads per worker (default: the cores / workers)"
    )
    p.add_argument(
        "--spinning", action="store_true", help="ONNX threads busy-wait between batches (default: they sleep)"
    )
    p.add_argument("--max-length", type=int, default=None, help="tokens per text (default: the student's)")
    p.add_argument("--student-name", default=None, help="the name in feedback and /health (default: from the path)")
    p.add_argument("--configfile", action="append", help=f"pipeline config, repeatable (default {DEFAULT_CONFIG})")
    p.add_argument("--teacher", default=None, help="defer unsure texts to this teacher of the config")
    p.add_argument("--prompt", default=None, help="with the prompt of this name from the config")
    p.add_argument("--cascade", default=None, help="cascade artifact whose policy to apply")
    p.add_argument("--threshold", type=float, default=None, help="defer below this confidence (instead of --cascade)")
    p.add_argument("--confidence", choices=CONFIDENCES, default="max_prob", help="with --threshold")
    p.add_argument("--temperature", type=float, default=1.0, help="with --threshold")
    p.add_argument("--feedback", default=None, help="feedback file (default serve.feedback_path)")
    p.add_argument("--max-batch-size", type=int, default=None, help="default serve.max_batch_size")
    p.add_argument("--inner-batch-size", type=int, default=None, help="default serve.inner_batch_size")
    p.add_argument("--workers", type=int, default=None, help="default serve.workers")
    p.add_argument("--max-wait-ms", type=float, default=None, help="default serve.max_wait_ms")
    p.add_argument("--teacher-timeout-s", type=float, default=None, help="default serve.teacher_timeout_s")
    p.add_argument("--teacher-max-pending", type=int, default=None, help="default serve.teacher_max_pending")
    p.add_argument("--log-level", default="info")
    return p


def serve(app: Any, service: Any, host: str, port: int) -> None:
    """Run uvicorn until SIGTERM or SIGINT; then it stops accepting connections, lets requests in
    flight finish, and the service its batches, all by one deadline (serve.shutdown_timeout_s)."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            service.begin_shutdown()  # the deadline runs from the signal, not from the app's shutdown
            super().handle_exit(sig, frame)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=service.settings.shutdown_timeout_s,
    )
    Server(config).run()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        token = bearer_token(args)
        service = build_service(args)
    except SynthDistillError as exc:
        print(f"synthdistill-serve: {exc}", file=sys.stderr)
        return 2
    from synthdistill.serving.app import create_app

    log.info("serving %s", json.dumps(service.describe()))
    if token is not None:
        log.info("every call needs the bearer token of %s", TOKEN_ENV)  # the name, never the value
    try:
        # After a graceful shutdown uvicorn raises the signal again: SIGTERM then ends the process
        # (status 143, as for any process SIGTERM stops), Ctrl-C arrives here as KeyboardInterrupt.
        serve(create_app(service, token), service, args.host, args.port)
    except KeyboardInterrupt:
        if not service.stopped_cleanly:
            # A teacher call hangs past the shutdown deadline on a worker thread, which the
            # interpreter would wait for at exit (up to the teacher's own timeout): leave without it.
            logging.shutdown()
            os._exit(INTERRUPTED)
        return INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
