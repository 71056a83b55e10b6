import argparse
import io
import json
from pathlib import Path

import numpy as np

from testbed.cli import _all_parsers, build_parser, main
from testbed.cli._output import Progress, emit, format_table, to_jsonable


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


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_progress_off_a_terminal_is_plain_lines_at_most_one_per_interval():
    now = [0.0]
    stream = _Stream(tty=False)
    with Progress("train x", 100, unit="rounds", stream=stream, interval_s=10.0, clock=lambda: now[0]) as bar:
        for _ in range(100):
            now[0] += 0.25  # 25 s in all: lines at the first update, at 10 and 20 s, and the last on close
            bar.update()
        bar.note("halfway there")
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines == [
        "train x: 1/100 rounds (1%), 0.2 s",
        "train x: 41/100 rounds (41%), 10.2 s",
        "train x: 81/100 rounds (81%), 20.2 s",
        "train x: halfway there",
        "train x: 100/100 rounds (100%) done, 25.0 s",
    ]


def test_progress_on_a_terminal_is_a_bar():
    stream = _Stream(tty=True)
    with Progress("train x", 3, stream=stream) as bar:
        for _ in range(3):
            bar.update()
    assert "\r" in stream.getvalue() and "train x:" in stream.getvalue()


def test_a_redirected_command_prints_progress_lines_without_carriage_returns(tmp_path, capsys):
    scenario = Path(__file__).parents[2] / "firmware_cfg" / "nodes" / "scenario.toml"
    assert main(["radio", "txrx", "--backend", "loopback", "--scenario", str(scenario), "--frames", "2"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "radio txrx loopback: 12720/12720 samples (100%)" in err
