"""Bad input at the command line: a PER table that is broken or foreign, and a TDMA cycle that cannot hold the
UEs, each refused when the file is loaded with one line on stderr (and one JSON object with --json) and exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.cli import main
from testbed.experiment.scenario import DEFAULT_SCENARIO
from testbed.link import abstraction, airtime
from testbed.phy import PhyConfig

REPO = Path(__file__).resolve().parents[2]
BS_TOML = REPO / "firmware_cfg" / "nodes" / "bs.toml"
UE_TOML = REPO / "firmware_cfg" / "nodes" / "ue-1.toml"


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], *names: str) -> str:
    """Run ``argv``; assert exit 2 and one line on stderr holding each of ``names``; a command that reports
    figures (train, compare) runs with --json and must also print that line as one JSON object."""
    as_json = argv[0] not in ("bs", "ue")  # the daemons report no figures: no --json
    assert main([*argv, "--json"] if as_json else argv) == 2
    out = capsys.readouterr()
    assert out.err.count("\n") == 1 and out.err.startswith("testbed: error: ") and "Traceback" not in out.err
    error = out.err.removeprefix("testbed: error: ").rstrip("\n")
    if as_json:
        assert json.loads(out.out)["error"] == error
    for name in names:
        assert name in error, (name, error)
    return error


# --- the PER table ------------------------------------------------------------------------------------


@pytest.fixture
def shipped_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the shipped PER table that stands in for it (every caller's error model) during the test."""
    path = tmp_path / "per_table.json"
    path.write_text(abstraction.SHIPPED_TABLE.read_text())
    monkeypatch.setattr(abstraction, "SHIPPED_TABLE", path)
    airtime._shipped_table.cache_clear()  # loaded once per numerology: forget the real one, and this one after
    yield path
    airtime._shipped_table.cache_clear()


def _edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        raw = json.loads(path.read_text())
        change(raw)
        path.write_text(json.dumps(raw))

    return write


def _numerology(raw: dict) -> None:
    raw["numerology"] = abstraction.numerology_of(PhyConfig(cp_len=32))


BROKEN_TABLES = {
    "truncated": (lambda p: p.write_text(p.read_text()[:5000]), ["not valid JSON"]),
    "nan-per": (_edit(lambda r: r["curves"]["qpsk-1/2"]["100"]["per"].__setitem__(4, float("nan"))),
                ["curves['qpsk-1/2']['100']", "per[4] = nan"]),
    "missing-mcs": (_edit(lambda r: r["curves"].pop("64qam-3/4")), ["no curve for 64qam-3/4"]),
    "other-numerology": (_edit(_numerology), ["another numerology", "cp_len=32 (need 16)"]),
}  # fmt: skip


@pytest.mark.parametrize("case", BROKEN_TABLES)
@pytest.mark.parametrize("command", ["train", "bs"])
def test_a_broken_or_foreign_per_table_stops_the_command_on_load(shipped_table, capsys, command, case):
    """Fails on the old code for missing-mcs (a LinkError, exit 1, that named no file) and nan-per (no entry)."""
    damage, names = BROKEN_TABLES[case]
    damage(shipped_table)
    argv = ["train", "--rounds", "1", "--out", str(shipped_table.parent / "run")] if command == "train" else []
    argv = argv or ["bs", "--config", str(BS_TOML)]
    _refused(argv, capsys, str(shipped_table), "testbed phy table", *names)


# --- UEs that cannot fit the TDMA cycle -----------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "compare"])
def test_a_scenario_whose_ues_cannot_fit_the_cycle_stops_train_and_compare(tmp_path, capsys, command):
    """Fails on the old code: its line said neither how many UEs fit nor to use at most that many."""
    bad = tmp_path / "crowded.toml"
    text = DEFAULT_SCENARIO.read_text()
    bad.write_text(text.replace("tdma_cycle_samples = 500_000", "tdma_cycle_samples = 300_000"))
    _refused([command, "--scenario", str(bad), "--out", str(tmp_path / "run")], capsys,
             "crowded.toml: [link] tdma_cycle_samples=300000", "fits the BS and 6 UEs",
             "at least 448880 for 10 UEs", "use at most 6 UEs")  # fmt: skip


def _crowded_bs(tmp_path: Path, num_ues: int) -> Path:
    """firmware_cfg/nodes/bs.toml with ``num_ues`` UEs in [bs.ues] (and as many training shards)."""
    ues = ", ".join(f'"ue-{i}" = {i}' for i in range(1, num_ues + 1))
    text = BS_TOML.read_text().replace('ues = { "ue-1" = 1, "ue-2" = 2 }', f"ues = {{ {ues} }}")
    path = tmp_path / "bs.toml"
    path.write_text(text.replace("num_shards = 2 ", f"num_shards = {num_ues} "))
    return path


def test_a_bs_config_whose_ues_cannot_fit_the_cycle_stops_the_bs_on_load(tmp_path, capsys):
    """[air] of bs.toml (1 MS/s, 1024-byte frames, adaptive: 28,000-sample bpsk-1/2 bursts, 200,000-sample
    cycle) holds the BS and 6 UEs. Fails on the old code: the config loaded, and the BS stopped as it built its
    airtime with a line that named neither the file nor [bs.ues] (without [training]: only at its first round)."""
    _refused(["bs", "--config", str(_crowded_bs(tmp_path, 7))], capsys, "bs.toml", "[air] cannot serve the 7 UEs "
             "of [bs.ues]", "fits the BS and 6 UEs", "at least 224720 for 7 UEs", "use at most 6 UEs")  # fmt: skip


def test_a_ue_config_whose_cycle_cannot_hold_its_own_slot_stops_the_ue_on_load(tmp_path, capsys):
    path = tmp_path / "ue.toml"
    path.write_text(UE_TOML.read_text().replace("tdma_cycle_samples = 200_000", "tdma_cycle_samples = 50_000"))
    _refused(["ue", "--config", str(path)], capsys, "ue.toml", "[air] cannot serve this UE",
             "fits no UE beside the BS", "at least 56240 for 1 UE")  # fmt: skip
