import argparse
import json

import numpy as np

from testbed.cli import _all_parsers, build_parser, main
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


def test_usage_errors_exit_2_with_one_line_and_a_json_object_on_json(capsys):
    assert main(["no-such-command"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("testbed: error: argument COMMAND: invalid choice: 'no-such-command'")
    assert captured.err.count("\n") == 1 and captured.out == ""
    assert main(["train", "--rounds", "many", "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "UsageError" and out["exit_status"] == 2 and "--rounds: invalid int value" in out["error"]


def test_runtime_failures_exit_1_and_config_errors_2(capsys, tmp_path):
    (tmp_path / "x.key_secret").write_text("")
    assert main(["keys", str(tmp_path), "x", "--json"]) == 2  # refuses to replace: configuration
    assert json.loads(capsys.readouterr().out)["kind"] == "ConfigError"
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["keys", str(blocker / "sub"), "bs", "--json"]) == 1  # cannot create the directory: run time
    assert json.loads(capsys.readouterr().out)["kind"] in ("FileExistsError", "NotADirectoryError")


def test_verbose_works_before_and_after_the_sub_command():
    parser = build_parser()
    assert parser.parse_args(["-v", "keys", "d", "bs"]).verbose == 1
    assert parser.parse_args(["keys", "d", "bs", "-vv"]).verbose_after == 2
    assert parser.parse_args(["phy", "ber", "-v"]).verbose_after == 1


def test_every_option_of_every_command_has_help_text():
    missing = []
    for parser in _all_parsers(build_parser()):
        missing += [f"{parser.prog} {a.dest}" for a in parser._actions
                    if not a.help and a.dest != "help" and not isinstance(a, argparse._SubParsersAction)]  # fmt: skip
    assert not missing
    commands = {p.prog: p for p in _all_parsers(build_parser())}
    assert "--resume continues exactly" in commands["testbed train"].description
    assert "target accuracy" in commands["testbed compare"].description
