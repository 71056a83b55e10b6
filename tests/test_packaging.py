"""Installation: compatible ranges in pyproject, the exact tested set in constraints.txt (what CI installs),
and systemd units that run from a venv and are sandboxed."""

from __future__ import annotations

import shutil
import subprocess
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
