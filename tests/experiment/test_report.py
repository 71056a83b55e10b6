"""``testbed report``: a compare run and a daemon-style state dir become one offline page with every figure; a
directory that is no run is refused with one line; the page loads in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from testbed.cli import main
from testbed.experiment.report.figures import load_symbols
from testbed.experiment.report.page import write_report
from testbed.experiment.report.runs import read_run

FIGURES = {"accuracy_vs_virtual_time", "accuracy_vs_wall_time", "accuracy_vs_energy", "timeline", "channel",
           "constellation"}  # fmt: skip
CHROMIUM = shutil.which("chromium")


def _report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    status = main(["report", *argv, "--json"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1, captured.out  # exactly one JSON object on stdout
    return status, json.loads(lines[0]), captured.err


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real two-scheme, two-round comparison on the 8x8 digits (what `testbed compare --out` writes)."""
    out = tmp_path_factory.mktemp("cmp") / "run"
    argv = ["compare", "--rounds", "2", "--dataset", "digits", "--jobs", "1", "--schemes", "fedavg_all", "policy",
            "--no-plots", "--out", str(out), "--json"]  # fmt: skip
    assert main(argv) == 0
    return out


def _round(number: int, ues: list[str], **extra: object) -> dict:
    """A BS round record with the fields testbed/node/bs_core.py writes (values made up, seeded)."""
    rng = np.random.default_rng(number)
    modes = {ue: ("distributed", "centralized_decoder", "centralized_full")[i % 3] for i, ue in enumerate(ues)}
    snr = {ue: float(10 + 5 * i + rng.normal()) for i, ue in enumerate(ues)}
    record = {
        "round": number, "run_id": "f00d", "bs_session": 1, "outcome": "complete", "trigger": "round_complete",
        "participants": ues, "done": ues, "dropped": [], "modes": modes,
        "uploads": {ue: {"bytes": 1000 * (i + 1), "sha256": "0" * 64} for i, ue in enumerate(ues)},
        "broadcast_mcs": "bpsk-1/2", "uplink_mcs": dict.fromkeys(ues, "qpsk-1/2"),
        "uplink_snr_db": snr, "uplink_effective_snr_db": snr, "downlink_snr_db": {ue: v - 0.5 for ue, v in snr.items()},
        "choices": {}, "choices_refused": {}, "ue_energy_j": dict.fromkeys(ues, 0.5),
        "ue_compute_s": dict.fromkeys(ues, 0.01), "uplink_done_s": dict.fromkeys(ues, 0.2),
        "started_unix_s": 1.8e9 + 2.0 * number, "duration_s": 1.5,
        "training": {"accuracy": 0.2 * number, "loss": 2.0 / number, "late": [], "refused": {}},
    }  # fmt: skip
    return {**record, **extra}


@pytest.fixture
def daemon_dir(tmp_path: Path) -> Path:
    """A `testbed sim`-like run dir: state/rounds.jsonl, JSON-line logs (with a plain line), received symbols."""
    all_ues, some = ["ue-1", "ue-2", "ue-3"], ["ue-1", "ue-2"]
    rounds = [
        _round(1, all_ues, choices_refused={"ue-3": "mode distributed needs 9 s, the deadline is 5 s"}),
        _round(2, some, training={"accuracy": 0.5, "loss": 1.0, "late": ["ue-2"], "refused": {"ue-1": "bad hash"}}),
        _round(3, all_ues, bs_session=2, subcarrier_snr_db={"ue-1": [10.0, 12.0, 8.0], "ue-3": [3.0, 4.0, 5.0]}),
        _round(4, all_ues),
    ]
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "rounds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rounds))
    (tmp_path / "logs").mkdir()
    log = [
        {"ts": 1.0, "level": "info", "node": "bs", "logger": "x", "msg": "ready", "event": "ready"},
        {"ts": 2.0, "level": "info", "node": "bs", "logger": "x", "msg": "round_started", "event": "round_started"},
        {"ts": 3.0, "level": "warning", "node": "bs", "logger": "testbed.control.server",
         "msg": "refused 2 control message(s) (bad_mac: 2); latest: ..."},
        {"ts": 4.0, "level": "info", "node": "ue-3", "logger": "x", "msg": "bs_gone", "event": "bs_gone", "round": 2},
    ]  # fmt: skip
    (tmp_path / "logs" / "bs.log").write_text("\n".join(json.dumps(x) for x in log) + "\nnot json, a hub line\n")
    (tmp_path / "symbols").mkdir()
    rng = np.random.default_rng(7)
    for ue in all_ues:
        z = (rng.choice([-1, 1], 64) + 1j * rng.choice([-1, 1], 64)) / np.sqrt(2) + 0.1 * rng.normal(size=64)
        np.save(tmp_path / "symbols" / f"4_{ue}.npy", z.astype(np.complex64))  # round 4 of rounds.jsonl
    np.save(tmp_path / "symbols" / "3_ue-1.npy", np.stack([z.real, z.imag], axis=-1))  # (n, 2) I/Q also reads
    return tmp_path


def test_a_compare_run_gets_every_figure_and_the_table_names_the_best_and_the_method(compare_dir, capsys):
    status, out, _ = _report(capsys, str(compare_dir))
    assert status == 0 and out["kind"] == "compare" and out["schemes"] == ["fedavg_all", "policy"]
    assert Path(out["report"]) == (compare_dir / "report.html").resolve()
    assert {Path(f).stem for f in out["figures"]} == FIGURES and all(Path(f).stat().st_size > 0 for f in out["figures"])
    assert {"wall time", "SNR", "per-UE airtime", "received symbols"} <= set(out["not_recorded"])
    assert "virtual time" not in out["not_recorded"]
    table = out["table"]
    assert table["method"] == "policy" and set(table["schemes"]) == {"fedavg_all", "policy"}
    summary = json.loads((compare_dir / "summary.json").read_text())["schemes"]
    for name, row in table["schemes"].items():  # the report's summary is compare's own
        assert {k: row[k] for k in summary[name]} == summary[name]
    finals = {n: r["final_accuracy"] for n, r in table["schemes"].items()}
    assert table["best"]["final_accuracy"] == [n for n, v in finals.items() if v == max(finals.values())]
    page = (compare_dir / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == len(FIGURES)
    assert "policy (the method)" in page and "&#9733;" in page


def test_a_daemon_run_gets_its_channel_symbols_wall_time_and_events(daemon_dir, capsys):
    status, out, _ = _report(capsys, str(daemon_dir), "--out", str(daemon_dir / "elsewhere" / "page.html"))
    assert status == 0 and out["kind"] == "daemon"
    assert {Path(f).stem for f in out["figures"]} == FIGURES
    assert all(Path(f).parent == daemon_dir / "elsewhere" / "page-figures" for f in out["figures"])
    assert set(out["not_recorded"]) == {"virtual time", "per-UE airtime"}  # what a BS record does not carry
    row = out["table"]["schemes"]["bs"]
    assert row["clock"] == "wall" and row["final_accuracy"] == pytest.approx(0.8)
    assert row["rounds_to_target"] is None and row["total_energy_j"] == pytest.approx(0.5 * 11)
    assert row["total_time_s"] == pytest.approx(6.0 + 1.5)  # from the first start to the end of the last round
    assert row["total_uplink_bits"] == pytest.approx(8 * (6000 * 3 + 3000))
    kinds = out["events"]["by_kind"]
    for kind in ("choice refused", "late", "upload refused", "absent", "rejoined", "BS restarted", "ready",
                 "warning", "bs_gone"):  # fmt: skip
        assert kinds.get(kind, 0) >= 1, (kind, kinds)
    assert "round_started" not in kinds  # routine log events stay out
    run = read_run(daemon_dir)
    assert [e.node for e in run.events if e.kind == "rejoined"] == ["ue-3"]
    assert [(e.node, e.round) for e in run.events if e.kind == "bs_gone"] == [("ue-3", 1)]  # BS round 2
    assert [r.round for r in run.schemes["bs"].rounds] == [0, 1, 2, 3]  # counted from 0 like the engine's rows
    assert sorted(run.symbols) == [(2, "ue-1"), (3, "ue-1"), (3, "ue-2"), (3, "ue-3")]  # in the same count
    assert load_symbols(run.symbols[(2, "ue-1")]).dtype.kind == "c"


def test_a_damaged_symbols_file_is_refused_with_one_line(daemon_dir, capsys):
    np.save(daemon_dir / "symbols" / "4_ue-1.npy", np.zeros(5))
    assert main(["report", str(daemon_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "4_ue-1.npy" in err[0] and "expected complex" in err[0], err


def test_a_sim_run_dir_is_a_daemon_run_named_and_targeted_by_its_summary(daemon_dir, capsys):
    summary = {"scenario": "sim", "scheme": "policy", "target_accuracy": 0.5}
    (daemon_dir / "summary.json").write_text(json.dumps(summary))
    (daemon_dir / "metrics.jsonl").write_text('{"per": "ue"}\n')  # a sim's own per-UE file does not hide the BS's
    status, out, _ = _report(capsys, str(daemon_dir))
    assert status == 0 and out["kind"] == "daemon" and out["schemes"] == ["policy"]
    table = out["table"]
    assert table["method"] == "policy" and table["target_accuracy"] == 0.5
    assert table["schemes"]["policy"]["rounds_to_target"] == 2  # round 1 (from 0) reached 0.5
    assert table["schemes"]["policy"]["time_to_target_s"] == pytest.approx(2.0 + 1.5)


def test_a_bare_state_dir_and_a_train_dir_are_runs_too(daemon_dir, compare_dir, tmp_path):
    assert read_run(daemon_dir / "state").kind == "daemon"
    train = tmp_path / "train"
    train.mkdir()
    shutil.copy(compare_dir / "policy" / "metrics.jsonl", train / "metrics.jsonl")
    run = read_run(train)
    assert run.kind == "train" and list(run.schemes) == ["policy"]
    assert Path(write_report(train)["report"]).exists()


@pytest.mark.parametrize("make", ["missing", "empty", "damaged", "no_rounds", "bad_field", "bad_shape"])
def test_a_directory_that_is_no_run_is_refused_with_one_line(tmp_path, capsys, make):
    target = tmp_path / "run"
    if make != "missing":
        target.mkdir()
    if make == "damaged":
        (target / "rounds.jsonl").write_text('{"round": 1}\n{torn\n{"round": 2}\n')
    if make == "no_rounds":
        (target / "rounds.jsonl").write_text("")
    if make in ("bad_field", "bad_shape"):
        bad = {"round": "one"} if make == "bad_field" else {**_round(1, ["ue-1"]), "uploads": {"ue-1": 5}}
        (target / "rounds.jsonl").write_text(json.dumps(bad) + "\n")
    status = main(["report", str(target)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("testbed: error: ") and str(target) in err[0], err
    assert not (target / "report.html").exists()


def test_the_page_fetches_nothing(daemon_dir):
    page = Path(write_report(daemon_dir)["report"]).read_text()
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page) + re.findall(r"url\(([^)]*)\)", page)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs), [r[:40] for r in refs]
    assert "<script" not in page and "<link" not in page


# Injected at the top of a copy of the page: collects script errors, console errors and failed loads, and on
# load writes the count of decoded images into the DOM, which --dump-dom then prints.
_PROBE = """<script>
window.__errs = [];
addEventListener("error", e => __errs.push(e.message || "load failed: " + String(e.target.src).slice(0, 80)), true);
const _error = console.error; console.error = (...a) => { __errs.push("console.error: " + a.join(" ")); _error(...a); };
addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const pre = document.createElement("pre"); pre.id = "tb-check";
  pre.textContent = JSON.stringify({images: imgs.length, decoded: imgs.filter(i => i.complete && i.naturalWidth > 0)
    .length, errors: __errs});
  document.body.appendChild(pre);
});
</script>"""


def _in_browser(page: Path, tmp_path: Path) -> tuple[dict, list[str]]:
    """Load a probed copy of ``page`` in headless chromium: (the probe's result, console lines on stderr)."""
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(page.read_text().replace("<head>", "<head>" + _PROBE, 1))
    done = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr",
         "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="tb-check">([^<]*)</pre>', done.stdout)
    assert found, f"chromium exit {done.returncode}, no probe result; stderr tail: {done.stderr[-500:]}"
    return json.loads(found.group(1).replace("&quot;", '"')), [ln for ln in done.stderr.splitlines() if "CONSOLE" in ln]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed here (apt-get install chromium; CI has it)")
def test_the_pages_load_in_a_real_browser_with_every_image_decoded(compare_dir, daemon_dir, tmp_path):
    for run_dir in (compare_dir, daemon_dir):
        page = Path(write_report(run_dir, tmp_path / f"{run_dir.name}.html")["report"])
        result, console = _in_browser(page, tmp_path)
        assert result == {"images": len(FIGURES), "decoded": len(FIGURES), "errors": []} and not console, console
    broken = tmp_path / "broken.html"  # the check can fail: a missing image and a script error are seen
    broken.write_text(page.read_text().replace("</body>", '<img src="gone.png"><script>nope();</script></body>'))
    result, console = _in_browser(broken, tmp_path)
    assert result["decoded"] == len(FIGURES) < result["images"] and len(result["errors"]) == 2 and console
