"""The review round trip through a real Label Studio server (SQLite, one process, no network).

Our export (tasks JSON and labelling config) goes into a Label Studio project, a reviewer's
annotations are submitted through its REST API, and the project's JSON export comes back through
the same reader and apply step that ``import_review`` runs.

Label Studio lives in its own virtual environment, ``<repo>/.venv-labelstudio`` (its pins clash
with ours); see ``.ci/run`` for the install lines.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from synthdistill.labels.corrections import import_review
from synthdistill.labels.review import review_table, write_review_files

from .conftest import REPO

LABEL_STUDIO = REPO / ".venv-labelstudio" / "bin" / "label-studio"
LABELS = ["no opinion", "R&D", "bullish"]
USER, PASSWORD, TOKEN = "reviewer@example.org", "synthdistill-pw", "synthdistill-test-token"
START_TIMEOUT_S = 180  # the first start runs every migration into a new SQLite file


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(base: str, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
    """One REST call with the user's (legacy) token; the decoded JSON answer."""
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:2000]!r}") from exc


def wait_until_ready(process: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Label Studio exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass  # not listening yet
        time.sleep(1)
    pytest.fail(f"Label Studio did not answer /health within {START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen) -> None:
    """Stop the server and whatever it started (it runs in its own process group)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    """Base URL of a fresh Label Studio with one user whose API token is TOKEN."""
    if not LABEL_STUDIO.exists():
        pytest.skip(
            f"Label Studio is not installed at {LABEL_STUDIO}: python3 -m venv .venv-labelstudio && "
            ".venv-labelstudio/bin/pip install -c envs/label-studio-constraints.txt label-studio==1.23.2"
        )
    data = tmp_path_factory.mktemp("label_studio")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data),
        COLLECT_ANALYTICS="false",
        LATEST_VERSION_CHECK="false",  # no network here: do not ask PyPI for a newer version
    )
    command = [
        str(LABEL_STUDIO), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(data), "--database", str(data / "label_studio.sqlite3"),
        "--username", USER, "--password", PASSWORD, "--user-token", TOKEN,
        # New organisations accept only personal access tokens (JWT) unless this is set.
        "--enable-legacy-api-token",
    ]  # fmt: skip
    log = data / "server.log"
    started = time.monotonic()
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=data, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(process, base, log)
        print(f"Label Studio ready in {time.monotonic() - started:.0f} s")
        yield base
    finally:
        stop(process)


def review_votes() -> pd.DataFrame:
    """A vote file in the vote stage's shape; item k voted LABELS[k % 3] with 2 of 3 votes."""
    ids = ["ls-0", "ls-1", "ls-2", "-17", "ls-4", "ls-5"]
    voted = [LABELS[k % len(LABELS)] for k in range(len(ids))]
    votes = pd.DataFrame(
        {
            "id": ids,
            "split": "train",
            "text": [f"Quarterly note {k}: R&D spend & margins" for k in range(len(ids))],
            "label": voted,
            "vote_status": "voted",
            "agreement": 2 / 3,
        }
    )
    for label in LABELS:
        votes[f"votes_{label}"] = [2 * (v == label) for v in voted]
    votes["n_failed"] = 0
    return votes


@pytest.mark.slow
def test_label_studio_review_round_trip_changes_exactly_the_submitted_labels(label_studio, tmp_path):
    started = time.monotonic()
    votes = review_votes()
    votes.to_parquet(tmp_path / "votes.parquet")
    scores = votes[["id"]].assign(label_issue=False, label_quality=1.0)
    table = review_table(votes, scores, {}, LABELS)
    outputs = {k: str(tmp_path / f"review.{k}") for k in ("csv", "xlsx", "argilla", "label_studio")}
    outputs["label_studio_config"] = str(tmp_path / "label_studio.xml")
    write_review_files(table, LABELS, "synthdistill:t/p", outputs)

    config = Path(outputs["label_studio_config"]).read_text()
    project = call(label_studio, "POST", "/api/projects", {"title": "synthdistill review", "label_config": config})
    kept = [c.get("value") for c in ET.fromstring(project["label_config"]).iter("Choice")]
    assert kept == LABELS  # Label Studio read the escaped values as the labels
    tasks = json.loads(Path(outputs["label_studio"]).read_text())
    imported = call(label_studio, "POST", f"/api/projects/{project['id']}/import", tasks)
    assert imported["task_count"] == len(votes) and imported["prediction_count"] == len(votes)

    listed = call(label_studio, "GET", f"/api/tasks?project={project['id']}&page_size=100")
    listed = listed["tasks"] if isinstance(listed, dict) else listed
    task_of = {task["data"]["id"]: task["id"] for task in listed}
    assert set(task_of) == set(votes["id"])

    # The reviewer changes three labels, confirms one and skips one; ls-5 is never opened.
    decisions = {"ls-0": "R&D", "ls-1": "R&D", "ls-2": "no opinion", "-17": "bullish"}
    reviewer = None
    for item_id, label in decisions.items():
        result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]
        annotation = call(
            label_studio,
            "POST",
            f"/api/tasks/{task_of[item_id]}/annotations/",
            {"result": result, "was_cancelled": False},
        )
        reviewer = annotation["completed_by"]
    skipped = {"result": [], "was_cancelled": True}
    call(label_studio, "POST", f"/api/tasks/{task_of['ls-4']}/annotations/", skipped)
    # A second opinion on -17 ("no opinion", made later), and the first one starred as ground truth
    # in Label Studio: the starred one wins, and the audit keeps both answers.
    second = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["no opinion"]}}]
    call(label_studio, "POST", f"/api/tasks/{task_of['-17']}/annotations/", {"result": second, "was_cancelled": False})
    listed = call(label_studio, "GET", f"/api/tasks/{task_of['-17']}/annotations/")
    (first,) = [a for a in listed if a["result"][0]["value"]["choices"] == ["bullish"]]
    call(label_studio, "PATCH", f"/api/annotations/{first['id']}/", {"ground_truth": True})

    exported = call(label_studio, "GET", f"/api/projects/{project['id']}/export?exportType=JSON")
    export_path = tmp_path / "label_studio_export.json"
    export_path.write_text(json.dumps(exported))

    labels_out, audit_out = tmp_path / "labels.parquet", tmp_path / "audit.csv"
    audit = import_review(str(tmp_path / "votes.parquet"), str(export_path), LABELS, labels_out, audit_out, {})
    old = votes.set_index("id")["label"]
    assert sorted(audit[["id", "old_label", "new_label", "changed", "reviewer"]].values.tolist()) == sorted(
        [item_id, old[item_id], label, old[item_id] != label, str(reviewer)] for item_id, label in decisions.items()
    )
    assert audit["changed"].tolist().count(False) == 1  # ls-1 confirmed its vote
    answers = dict(zip(audit["id"], audit["answers"], strict=True))
    assert [a["label"] for a in json.loads(answers["-17"])] == ["bullish", "no opinion"]
    assert audit.set_index("id")["reviewers_disagree"].to_dict() == {item_id: item_id == "-17" for item_id in decisions}
    reviewed = pd.read_parquet(labels_out).set_index("id")
    assert reviewed.loc[list(decisions), "label"].tolist() == list(decisions.values())
    assert reviewed.loc[["ls-4", "ls-5"], "label"].tolist() == old[["ls-4", "ls-5"]].tolist()
    assert not reviewed.loc[["ls-4", "ls-5"], "corrected"].any()
    print(f"Label Studio round trip (project, import, annotate, export, apply): {time.monotonic() - started:.1f} s")
