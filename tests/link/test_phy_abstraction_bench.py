"""The abstraction benchmark refuses a bad PER table with one line naming the file, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_bad_table_is_refused_with_one_line(tmp_path: Path) -> None:
    table = tmp_path / "table.json"
    table.write_text('{"bad": 1}')
    done = subprocess.run([sys.executable, "benchmarks/phy_abstraction.py", "--table", str(table)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: ") and str(table) in done.stderr and "testbed phy table" in done.stderr
