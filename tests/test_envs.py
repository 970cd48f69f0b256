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
