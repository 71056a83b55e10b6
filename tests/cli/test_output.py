import json

import numpy as np

from testbed.cli import main
from testbed.cli._output import emit, format_table, to_jsonable


def test_to_jsonable_turns_numpy_and_nonfinite_into_strict_json():
    value = {"a": np.float32(1.5), "b": [np.int64(3), float("nan")], "c": np.arange(2), "d": (float("inf"),)}
    assert to_jsonable(value) == {"a": 1.5, "b": [3, None], "c": [0, 1], "d": [None]}


def test_emit_json_prints_exactly_one_object(capsys):
    emit({"x": np.float64(2.0), "y": float("-inf")}, as_json=True, human=lambda r: "unused")
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"x": 2.0, "y": None}


def test_format_table_aligns_and_marks_missing():
    text = format_table(["mcs", "snr"], [["qpsk-1/2", 3.456], ["bpsk-1/2", None]])
    lines = text.splitlines()
    assert lines[0].split() == ["mcs", "snr"]
    assert lines[2].split() == ["qpsk-1/2", "3.46"]
    assert lines[3].split() == ["bpsk-1/2", "-"]


def test_unknown_command_exits_with_usage_error(capsys):
    try:
        main(["no-such-command"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("argparse should reject an unknown command")
