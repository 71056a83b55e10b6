import json
import math
from collections.abc import Callable

import numpy as np
import pytest

from testbed.errors import ConfigError, LinkError
from testbed.link.abstraction import (
    SHIPPED_TABLE,
    PerCurve,
    PerTable,
    eesm_linear,
    load_per_table,
    numerology_of,
    subcarrier_snr,
)
from testbed.link.framelink import ModelFrameLink, TxFrame
from testbed.phy import PhyConfig
from testbed.phy.mcs import CODED_MCS

PHY = PhyConfig()


def _curve(start_db: float) -> PerCurve:
    snr = start_db + 0.25 * np.arange(8)
    per = 10.0 ** (-0.5 * np.arange(8) ** 1.2)  # 1 .. ~1e-6, steepening
    return PerCurve(snr, per, np.full(8, 100), np.round(per * 100).astype(int))


def _table(numerology: dict | None = None, mcs: tuple[str, ...] = CODED_MCS) -> PerTable:
    """Every MCS in ``mcs`` (default all coded ones, as a loadable table needs): qpsk-1/2 at 100 and 1500 B
    (beta 1.2 and 2.0), 16qam-1/2 at 1500 B 7 dB higher, the others at 1500 B 2 dB apart."""
    curves = {m: {1500: _curve(2.0 * i)} for i, m in enumerate(mcs)}
    beta = {m: {1500: 1.0 + i} for i, m in enumerate(mcs)}
    if "qpsk-1/2" in mcs:
        curves["qpsk-1/2"], beta["qpsk-1/2"] = {100: _curve(2.0), 1500: _curve(3.0)}, {100: 1.2, 1500: 2.0}
    if "16qam-1/2" in mcs:
        curves["16qam-1/2"], beta["16qam-1/2"] = {1500: _curve(9.0)}, {1500: 6.0}
    return PerTable(numerology or numerology_of(PHY), curves, beta, {"seed": 1})


def test_round_trip(tmp_path):
    path = tmp_path / "t.json"
    table = _table()
    table.save(path)
    back = load_per_table(path)
    assert back.beta == table.beta
    assert back.provenance == {"seed": 1}
    for snr in (1.0, 3.3, 4.1, 9.6, 20.0):
        for mcs, n in (("qpsk-1/2", 100), ("qpsk-1/2", 1500), ("qpsk-1/2", 700), ("16qam-1/2", 1500)):
            assert back.frame_error_rate(mcs, n, snr) == pytest.approx(table.frame_error_rate(mcs, n, snr), rel=1e-5)


def _with_nan_snr(text: str) -> str:
    raw = json.loads(text)
    raw["curves"]["qpsk-1/2"]["100"]["snr_db"][3] = float("nan")
    return json.dumps(raw)  # Python's json writes and reads NaN


def _one_line_naming(err: pytest.ExceptionInfo, path) -> None:
    text = str(err.value)
    assert str(path) in text and "\n" not in text and "testbed phy table" in text


@pytest.mark.parametrize(
    "mangle",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "\x00garbage{",  # corrupt
        lambda text: text.replace('"schema_version": 2', '"schema_version": 99'),
        lambda text: json.dumps({**json.loads(text), "curves": {"qpsk-1/2": {"100": {"snr_db": [1.0]}}}}),
        lambda text: json.dumps({**json.loads(text), "beta": {"qpsk-1/2": {"100": -1.0, "1500": 2.0}}}),
        lambda text: "[1, 2]",
        lambda text: _with_nan_snr(text),
    ],
    ids=["truncated", "corrupt", "schema", "malformed-curve", "bad-beta", "not-a-table", "nan-snr"],
)
def test_bad_files_are_refused_with_one_line_naming_the_file(tmp_path, mangle):
    path = tmp_path / "bad.json"
    _table().save(path)
    path.write_text(mangle(path.read_text()))
    with pytest.raises(ConfigError) as err:
        load_per_table(path)
    _one_line_naming(err, path)


def _set(path: tuple, value: object) -> Callable[[dict], None]:
    """A mangle that sets raw[path[0]][path[1]]... = value (None: deletes that key)."""

    def mangle(raw: dict) -> None:
        *parents, last = path
        node = raw
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value

    return mangle


Q100 = ("curves", "qpsk-1/2", "100")
AT_Q100 = "curves['qpsk-1/2']['100']"  # how a line names that entry
RAISED = [1.0, 0.5, 0.2, 0.3, 0.05, 0.01, 1e-3, 1e-4]  # rises at index 3


BAD_ENTRIES = {  # id: (mangle of the raw JSON, what the line must name)
    "nan-per": (_set((*Q100, "per", 3), float("nan")), [AT_Q100, "per[3] = nan"]),
    "negative-per": (_set((*Q100, "per", 2), -0.1), [AT_Q100, "per[2] = -0.1", "(0, 1]"]),
    "rising-per": (_set((*Q100, "per"), RAISED), [AT_Q100, "per[3] = 0.3", "never rises"]),
    "snr-grid-not-ascending": (_set((*Q100, "snr_db", 4), 2.0), [AT_Q100, "snr_db[4] = 2", "ascends"]),
    "inf-snr": (_set((*Q100, "snr_db", 0), float("inf")), [AT_Q100, "snr_db[0] = inf"]),
    "errors-above-frames": (_set((*Q100, "errors", 1), 101), [AT_Q100, "errors[1] = 101", "0..frames"]),
    "short-frames": (_set((*Q100, "frames"), [100] * 3), [AT_Q100, "frames holds 3 values for 8"]),
    "per-not-numbers": (_set((*Q100, "per"), "high"), [AT_Q100, "per must be a list of numbers"]),
    "per-absent": (_set((*Q100, "per"), None), ["curves['qpsk-1/2']['100'] must hold snr_db, per, frames, errors"]),
    "missing-mcs": (_set(("curves", "64qam-3/4"), None), ["no curve for 64qam-3/4"]),
    "unknown-mcs": (_set(("curves", "qpsk-7/8"), {"1500": {}}), ["curves['qpsk-7/8']", "not a coded MCS"]),
    "zero-length": (_set(("curves", "qpsk-1/2", "0"), {}), ["curves['qpsk-1/2']['0']", "payload length"]),
    "lengths-not-an-object": (_set(("curves", "bpsk-1/2"), []), ["curves['bpsk-1/2'] must map payload lengths"]),
    "beta-absent": (_set(("beta", "16qam-3/4"), None), ["beta['16qam-3/4'] = None"]),
    "beta-nan": (_set(("beta", "16qam-3/4", "1500"), float("nan")), ["beta['16qam-3/4']['1500'] = nan"]),
    "beta-one-per-mcs": (_set(("beta", "16qam-3/4"), 9.0), ["beta['16qam-3/4'] = 9.0", "each payload length"]),
    "beta-length-absent": (_set(("beta", "qpsk-1/2", "100"), None), ["beta['qpsk-1/2']['100'] = None"]),
    "beta-length-extra": (_set(("beta", "qpsk-1/2", "700"), 2.0), ["beta['qpsk-1/2']['700']", "no curve"]),
    "schema-1": (_set(("schema_version",), 1), ["schema_version 1, this testbed reads 2"]),
    "numerology-incomplete": (_set(("numerology", "cp_len"), None), ["numerology does not record cp_len"]),
    "curves-a-list": (_set(("curves",), [1, 2]), ["'curves' must be an object"]),
    "schema-bool": (_set(("schema_version",), True), ["schema_version True"]),
}


@pytest.mark.parametrize("case", BAD_ENTRIES)
def test_bad_entries_are_refused_naming_the_file_and_the_entry(tmp_path, case):
    """Each fails on the old loader: it named no entry (one generic 'malformed' line), took a missing MCS,
    an unknown MCS, a zero length or errors above frames, and said 'None' for an unrecorded numerology field.
    The beta-per-length cases fail on the schema-1 loader (one float per MCS): a schema-1 table, which has one
    beta for every length, is refused rather than read as if its 1500-byte beta held for 100-byte frames."""
    mangle, names = BAD_ENTRIES[case]
    path = tmp_path / "bad.json"
    _table().save(path)
    raw = json.loads(path.read_text())
    mangle(raw)
    path.write_text(json.dumps(raw))  # Python's json writes and reads NaN and Infinity
    with pytest.raises(ConfigError) as err:
        load_per_table(path)
    _one_line_naming(err, path)
    for name in names:
        assert name in str(err.value)


def test_a_partial_table_loads_for_a_caller_that_names_its_mcs(tmp_path):
    path = tmp_path / "qpsk.json"
    _table(mcs=("qpsk-1/2",)).save(path)
    assert load_per_table(path, mcs=("qpsk-1/2",)).mcs_names == ("qpsk-1/2",)
    with pytest.raises(ConfigError, match="no curve for bpsk-1/2, bpsk-3/4, qpsk-3/4"):
        load_per_table(path)


def test_other_numerology_is_refused(tmp_path):
    path = tmp_path / "cp32.json"
    _table(numerology_of(PhyConfig(cp_len=32))).save(path)
    with pytest.raises(ConfigError, match="cp_len") as err:
        load_per_table(path)
    _one_line_naming(err, path)
    assert load_per_table(path, PhyConfig(cp_len=32)).beta["qpsk-1/2"] == {100: 1.2, 1500: 2.0}


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match="nope.json"):
        load_per_table(tmp_path / "nope.json")


def test_interpolation_is_log_linear_and_extrapolates_the_tail():
    table = _table()
    curve = table.curve("qpsk-1/2", 1500)[1]
    mid = 0.5 * (curve.snr_db[2] + curve.snr_db[3])
    assert table.frame_error_rate("qpsk-1/2", 1500, mid) == pytest.approx(math.sqrt(curve.per[2] * curve.per[3]))
    assert table.frame_error_rate("qpsk-1/2", 1500, curve.snr_db[0] - 5) == pytest.approx(curve.per[0])
    slope = np.log10(curve.per[-1] / curve.per[-2]) / 0.25
    beyond = table.frame_error_rate("qpsk-1/2", 1500, curve.snr_db[-1] + 0.5)
    assert math.log10(beyond) == pytest.approx(math.log10(curve.per[-1]) + 0.5 * slope)
    for per in (0.3, 0.05, 1e-3, 1e-7):
        assert table.frame_error_rate("qpsk-1/2", 1500, table.snr_db_at_per("qpsk-1/2", per, 1500)) == pytest.approx(
            per, rel=1e-6
        )


def test_length_rule_only_for_unmeasured_lengths():
    table = _table()
    for snr in (3.2, 3.9, 4.4):
        p1500 = table.frame_error_rate("qpsk-1/2", 1500, snr)
        assert table.frame_error_rate("qpsk-1/2", 3000, snr) == pytest.approx(1 - (1 - p1500) ** 2)
        p100 = table.frame_error_rate("qpsk-1/2", 100, snr)
        assert table.frame_error_rate("qpsk-1/2", 150, snr) == pytest.approx(1 - (1 - p100) ** 1.5)
    # a measured length uses its own curve, not the rule: the 100-byte curve here is 1 dB better than the rule
    p1500 = table.frame_error_rate("qpsk-1/2", 1500, 3.5)
    assert table.frame_error_rate("qpsk-1/2", 100, 3.5) < 0.5 * (1 - (1 - p1500) ** (100 / 1500))
    snr = table.snr_db_at_per("qpsk-1/2", 0.1, 3000)
    assert table.frame_error_rate("qpsk-1/2", 3000, snr) == pytest.approx(0.1, rel=1e-6)


def test_eesm_of_a_flat_channel_is_its_snr_and_fading_costs():
    table = _table()
    rng = np.random.default_rng(3)
    for mcs in ("qpsk-1/2", "16qam-1/2"):
        for snr_db in (-3.0, 4.0, 25.0):
            flat = np.full(PHY.num_data, 10.0 ** (snr_db / 10.0))
            assert table.effective_snr_db(mcs, flat, 1500) == pytest.approx(snr_db, abs=1e-9)
            assert table.frame_error_rate_on_channel(mcs, 1500, flat) == pytest.approx(
                table.frame_error_rate(mcs, 1500, snr_db)
            )
        faded = subcarrier_snr(PHY, (rng.standard_normal(21) + 1j * rng.standard_normal(21)) * 0.15, 10.0)
        assert table.effective_snr_db(mcs, faded, 1500) < 10 * math.log10(faded.mean())
    # a bigger beta forgives deep fades more: EESM moves from the worst subcarrier towards the mean
    faded = np.array([0.01, 10.0, 10.0, 10.0])
    assert table.effective_snr_db("qpsk-1/2", faded, 1500) < table.effective_snr_db("16qam-1/2", faded, 1500)


def test_each_length_uses_the_beta_of_its_tabulated_curve():
    """A 100-byte frame's EESM uses the 100-byte beta, a 700-byte one the 1500-byte beta (its curve's length,
    the nearest in log ratio). Fails on the schema-1 table: one beta per MCS, taken for every length."""
    table = _table()
    faded = subcarrier_snr(PHY, np.array([1.0, 0.0, 0.8j]) / math.sqrt(1.64), 6.0)
    for length, beta in ((100, 1.2), (150, 1.2), (700, 2.0), (1500, 2.0), (4000, 2.0)):
        assert table.beta_for("qpsk-1/2", length) == beta
        want_db = 10 * math.log10(eesm_linear(faded[None, :], beta)[0])
        assert table.effective_snr_db("qpsk-1/2", faded, length) == pytest.approx(want_db, abs=1e-12)
        assert table.frame_error_rate_on_channel("qpsk-1/2", length, faded) == pytest.approx(
            table.frame_error_rate("qpsk-1/2", length, want_db)
        )
    # the two betas give different effective SNRs on this channel, so the choice matters
    assert table.effective_snr_db("qpsk-1/2", faded, 100) < table.effective_snr_db("qpsk-1/2", faded, 1500) - 0.3


def test_bad_arguments_are_link_errors():
    table = _table(mcs=("qpsk-1/2", "16qam-1/2"))
    with pytest.raises(LinkError, match="64qam-3/4"):
        table.frame_error_rate("64qam-3/4", 100, 10.0)
    with pytest.raises(LinkError, match="per="):
        table.snr_db_at_per("qpsk-1/2", 1.5, 100)
    with pytest.raises(LinkError, match="subcarrier_snr"):
        table.effective_snr_db("qpsk-1/2", np.array([1.0, np.nan]), 100)


def test_shipped_table_covers_every_coded_mcs_and_is_monotone():
    table = load_per_table()
    assert SHIPPED_TABLE.name == "per_table.json"
    assert set(table.mcs_names) == set(CODED_MCS)
    grid = np.arange(-5.0, 35.0, 0.05)
    for mcs in CODED_MCS:
        assert {100, 1024, 1500} <= set(table.payload_lengths(mcs))
        for n in (100, 700, 1024, 1500, 4000):
            per = table.frame_error_rates(mcs, n, grid)
            assert np.all(np.diff(per) <= 0) and per[0] > 0.5 and per[-1] < 1e-3
        # longer frames need more SNR, and faster MCSs more than slower ones of the same modulation
        assert table.snr_db_at_per(mcs, 0.1, 100) < table.snr_db_at_per(mcs, 0.1, 1500)
    assert table.snr_db_at_per("qpsk-1/2", 0.1, 1500) < table.snr_db_at_per("qpsk-3/4", 0.1, 1500)
    for n in (100, 1024, 1500):
        assert table.beta_for("bpsk-1/2", n) < table.beta_for("64qam-3/4", n)
    assert {m: set(table.beta[m]) for m in CODED_MCS} == {m: {100, 1024, 1500} for m in CODED_MCS}


def _frames(n: int, payload_bytes: int, mcs: str) -> list[TxFrame]:
    burst = ModelFrameLink(PHY, np.random.default_rng(0)).burst_num_samples(payload_bytes, mcs)
    return [TxFrame(0, i * burst, bytes(payload_bytes), mcs, seq=i) for i in range(n)]


def _lost_fraction(link: ModelFrameLink, frames: list[TxFrame]) -> float:
    burst = link.burst_num_samples(len(frames[0].payload), frames[0].mcs)
    heard = link.exchange(frames, [1], len(frames) * burst).heard[1]
    return sum(h.payload is None for h in heard) / len(heard)


def test_model_frame_link_loses_frames_at_the_table_rate():
    """Fails on the old ModelFrameLink (no per_table: every frame arrives)."""
    table = load_per_table()
    n = 4000
    for mcs, payload, per in (("qpsk-1/2", 100, 0.2), ("16qam-3/4", 1500, 0.05)):
        snr = table.snr_db_at_per(mcs, per, payload)
        link = ModelFrameLink(PHY, np.random.default_rng(11), snr_db=snr, per_table=table)
        lost = _lost_fraction(link, _frames(n, payload, mcs))
        assert abs(lost - per) < 5 * math.sqrt(per * (1 - per) / n)  # a rate 25% off is > 5 sigma away


def test_model_frame_link_uses_eesm_for_per_subcarrier_snr():
    table = load_per_table()
    rng = np.random.default_rng(5)
    taps = (rng.standard_normal(21) + 1j * rng.standard_normal(21)) * np.sqrt(np.exp(-np.arange(21) / 2) / 2)
    taps /= np.sqrt(np.sum(np.abs(taps) ** 2))
    base = table.snr_db_at_per("qpsk-1/2", 0.15, 1024)
    sub = subcarrier_snr(PHY, taps, base)
    eff_per = table.frame_error_rate_on_channel("qpsk-1/2", 1024, sub)
    assert eff_per > 0.3  # the same mean SNR on a selective channel loses more than on a flat one
    n = 3000
    link = ModelFrameLink(PHY, np.random.default_rng(2), per_table=table, subcarrier_snr={(0, 1): sub})
    frames = _frames(n, 1024, "qpsk-1/2")
    burst = link.burst_num_samples(1024, "qpsk-1/2")
    heard = link.exchange(frames, [1], n * burst).heard[1]
    lost = sum(h.payload is None for h in heard) / n
    assert abs(lost - eff_per) < 5 * math.sqrt(eff_per * (1 - eff_per) / n)
    assert heard[0].snr_db == pytest.approx(10 * math.log10(sub.mean()))


def test_model_frame_link_fixed_loss_adds_to_the_table():
    table = load_per_table()
    snr = table.snr_db_at_per("qpsk-1/2", 0.2, 100)
    link = ModelFrameLink(PHY, np.random.default_rng(4), loss=0.5, snr_db=snr, per_table=table)
    lost = _lost_fraction(link, _frames(4000, 100, "qpsk-1/2"))
    assert abs(lost - 0.6) < 5 * math.sqrt(0.24 / 4000)  # 1 - 0.5 * 0.8
