"""Installation: compatible ranges in pyproject, the exact tested set in constraints.txt (what CI installs),
and systemd units that run from a venv and are sandboxed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
UNITS = ("testbed-bs.service", "testbed-ue.service")
MAX_EXPOSURE = 4.0  # issue 14: `systemd-analyze security` at most 4.0


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for reqs in project["optional-dependencies"].values() for r in reqs]
    return [Requirement(r) for r in [*project["dependencies"], *extras]]


def _constraints() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_dependencies_are_ranges_and_the_tested_pins_lie_inside_them():
    pins = _constraints()
    for req in _requirements():
        ops = {s.operator for s in req.specifier}
        assert ">=" in ops and "<" in ops, f"{req}: give a compatible range (>=, <), the exact pin is constraints.txt"
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pin), f"constraints.txt pins {req.name}=={pin}, outside {req.specifier}"
    assert pins["torch"] == Version("2.13.0")  # the CPU wheel on disk; any other pulls a CUDA build
    assert "-c constraints.txt" in (ROOT / ".ci" / "run").read_text()


def test_package_metadata_names_licence_and_authors():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] and project["authors"]


@pytest.mark.parametrize("unit", UNITS)
def test_units_run_from_the_venv_and_are_sandboxed(unit):
    path = ROOT / "firmware_cfg" / "systemd" / unit
    text = path.read_text()
    assert "ExecStart=/opt/testbed/venv/bin/testbed " in text and "/usr/local/bin" not in text
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(path)], capture_output=True, text=True, timeout=60
    )
    last = out.stdout.strip().splitlines()[-1]
    score = float(last.split(":")[1].split()[0])
    assert score <= MAX_EXPOSURE, last


# A Python process in which the learning extra is not installed: importing torch, mlxtend or sklearn fails.
_WITHOUT_LEARN = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "mlxtend", "sklearn"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Missing())
from testbed.cli import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules
sys.exit(code)
"""


def _without_learn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _WITHOUT_LEARN, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=240)  # fmt: skip


def test_the_radio_stack_runs_without_the_learning_extra():
    done = _without_learn("radio", "txrx", "--json")  # 20 frames bs -> ue-1 on the shipped scenario
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["frames_ok"] == 20


def test_a_learning_command_without_the_extra_names_it_in_one_line():
    done = _without_learn("compare", "--rounds", "1", "--json")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    error = json.loads(done.stdout)["error"]
    assert "testbed compare needs the learning extra" in error and ".[learn]" in error
    assert done.stderr.count("\n") == 1


def test_the_distribution_name_is_not_the_one_taken_on_pypi():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "hfl-sdr-testbed"  # "testbed" on PyPI is an unrelated project
    assert "torch" not in " ".join(project["dependencies"])
    assert any(r.startswith("torch") for r in project["optional-dependencies"]["learn"])
