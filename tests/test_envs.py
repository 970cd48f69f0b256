"""The conda envs for --sdm conda pin the same versions as pyproject.toml."""

import re
import tomllib

import yaml

from .conftest import REPO


def pins(requirements):
    out = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", requirement)
        if match:
            out[match.group(1).lower().replace("_", "-")] = match.group(2)
    return out


def test_every_env_pin_matches_pyproject():
    project = pins(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        dependencies = yaml.safe_load(env.read_text())["dependencies"]
        pip = next(d["pip"] for d in dependencies if isinstance(d, dict))
        for name, version in pins(pip).items():
            assert project.get(name) == version, f"{env.name}: {name}=={version}, pyproject has {project.get(name)}"


def test_every_rule_names_an_existing_env():
    for rules in (REPO / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*"\.\./(envs/[^"]+)"', rules.read_text()):
            assert (REPO / env).exists(), f"{rules.name} names missing {env}"


def test_every_rule_that_runs_code_has_a_conda_env():
    for rules in sorted((REPO / "rules").glob("*.smk")):
        blocks = re.split(r"^(?=rule \w+:)", rules.read_text(), flags=re.M)
        for block in blocks:
            name = re.match(r"rule (\w+):", block)
            if name and re.search(r"^\s+(script|shell|run):", block, flags=re.M):
                assert re.search(r"^\s+conda:\s*\n\s+\"\.\./envs/\w+\.yaml\"", block, flags=re.M), (
                    f"{rules.name}: rule {name.group(1)} has no conda env"
                )
