"""environment.yml (conda, for students) must ask for what pyproject.toml (pip) asks for."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in ("course", "test"):
        reqs += project["optional-dependencies"][extra]
    return {canonical(r.name): r.specifier for r in map(Requirement, reqs)}


def conda_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    found, pip_entries = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_entries += dep.get("pip", [])
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", dep)
        found[canonical(match.group(1))] = SpecifierSet(match.group(2).replace(" ", ""))
    return found, pip_entries


def test_every_pyproject_dependency_is_in_environment_yml_with_the_same_range():
    wanted = pyproject_requirements()
    found, _ = conda_requirements()
    missing = sorted(set(wanted) - set(found))
    assert not missing, f"environment.yml lacks {missing}"
    differ = {name: (str(wanted[name]), str(found[name]))
              for name in wanted if wanted[name] != found[name]}
    assert not differ, f"ranges differ between pyproject.toml and environment.yml: {differ}"


def test_environment_installs_course_lib_from_the_repository():
    found, pip_entries = conda_requirements()
    assert "-e ." in pip_entries
    assert "python" in found and found["python"].contains("3.11")


def test_grading_tools_are_pinned_to_a_set_known_to_work():
    wanted = pyproject_requirements()
    assert wanted["nbgrader"] == SpecifierSet("==0.9.6")
    assert wanted["notebook"].contains("7.2.0") and not wanted["notebook"].contains("8.0.0")
    assert wanted["jupyterlab"].contains("4.2.0") and not wanted["jupyterlab"].contains("5.0.0")
    assert not wanted["jupyter-client"].contains("9.0.0")


@pytest.mark.parametrize("extra, package", [("gpu", "cupy-cuda12x")])
def test_optional_extras(extra, package):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [canonical(Requirement(r).name) for r in project["optional-dependencies"][extra]]
    assert package in names
