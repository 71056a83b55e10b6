import json
import math

import numpy as np
import pytest

from testbed.cli import main
from testbed.experiment.phylab.ber import Point, measure
from testbed.experiment.phylab.link import FrameTrial, awgn_only
from testbed.experiment.phylab.table import (
    PRECISE_ERRORS,
    TAIL_PER,
    FadingSample,
    calibrate_beta,
    curve_from_points,
)
from testbed.link.abstraction import PerCurve, PerTable, load_per_table, numerology_of, subcarrier_snr
from testbed.phy import OfdmModem, PhyConfig

PHY = PhyConfig()


def _logistic(snr_db: np.ndarray, centre_db: float, slope: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(slope * (snr_db - centre_db)))


def test_curve_keeps_precise_points_and_fits_the_tail(rng):
    snr = np.arange(2.0, 5.01, 0.25)
    true = _logistic(snr, 3.0, 4.0)
    frames = np.full(snr.size, 2000)
    errors = rng.binomial(frames, true)
    curve = curve_from_points([Point(float(s), int(n), int(e)) for s, n, e in zip(snr, frames, errors, strict=True)])
    precise = errors >= PRECISE_ERRORS
    assert np.allclose(curve.per[: snr.size][precise], np.minimum.accumulate(errors / frames)[precise])
    assert curve.per[-1] <= TAIL_PER and np.all(np.diff(curve.per) <= 0)
    # the fitted tail follows the true curve to within 30% down to 1e-4 (the fit has 2000 frames per point)
    tail = curve.snr_db > snr[precise][-1]
    assert np.all(np.abs(np.log(curve.per[tail] / _logistic(curve.snr_db[tail], 3.0, 4.0))) < math.log(1.3))


def _awgn_table(beta: float) -> PerTable:
    snr = np.arange(0.0, 10.01, 0.25)
    curve = PerCurve(snr, _logistic(snr, 4.0, 3.0), np.zeros(snr.size), np.zeros(snr.size))
    return PerTable(numerology_of(PHY), {"qpsk-1/2": {1500: curve}}, {"qpsk-1/2": {1500: beta}})


def test_calibration_recovers_the_beta_that_made_the_losses(rng):
    """Frames fail with the EESM prediction of beta=3 on Rayleigh draws; least squares finds beta again."""
    table = _awgn_table(3.0)
    n = 12_000
    taps = (rng.standard_normal((n, 9)) + 1j * rng.standard_normal((n, 9))) * np.sqrt(np.exp(-np.arange(9) / 2))
    taps /= np.sqrt(np.sum(np.abs(taps) ** 2, axis=1, keepdims=True))
    gains = np.array([subcarrier_snr(PHY, t, 0.0) for t in taps])
    snr = np.repeat(np.arange(4.0, 16.0, 1.0), n // 12)
    truth = FadingSample(snr, gains, np.zeros(n, bool)).predicted_per(table, "qpsk-1/2", 1500)
    sample = FadingSample(snr, gains, rng.random(n) < truth)
    fit = calibrate_beta(_awgn_table(1.0), "qpsk-1/2", 1500, sample)
    assert fit["beta"] == pytest.approx(3.0, rel=0.15)
    assert fit["rms_log_error"] < 0.2
    # a flat channel has no beta to find: every beta predicts the same
    assert FadingSample(snr, np.ones_like(gains), sample.failed).predicted_per(
        table, "qpsk-1/2", 1500, 0.5
    ) == pytest.approx(table.frame_error_rates("qpsk-1/2", 1500, snr))


def test_phy_table_cli_tiny_run(tmp_path, capsys):
    out = tmp_path / "table.json"
    code = main(["phy", "table", "--json", "--frames", "10", "--mcs", "qpsk-1/2", "--payload-bytes", "100",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    stdout = capsys.readouterr().out
    assert stdout.count("\n") == 1
    result = json.loads(stdout)
    assert result["file"] == str(out) and result["beta"].keys() == {"qpsk-1/2"}
    assert result["beta"]["qpsk-1/2"].keys() == {"100"}  # a beta calibrated for the one length it measured
    table = load_per_table(out, mcs=("qpsk-1/2",))  # a partial table: the caller names the MCSs it needs
    assert table.payload_lengths("qpsk-1/2") == (100,)
    assert 0.0 < table.snr_db_at_per("qpsk-1/2", 0.1, 100) < 6.0
    assert table.provenance["config"]["frames"] == 10


def test_phy_table_cli_refuses_uncoded_mcs(capsys):
    assert main(["phy", "table", "--mcs", "qpsk-uncoded", "--frames", "5"]) == 2
    assert "qpsk-uncoded" in capsys.readouterr().err


@pytest.mark.slow
def test_shipped_table_matches_the_receiver_on_awgn(rng):
    """The real receiver on AWGN at the shipped table's 10%-PER SNR loses 10% of 100-byte QPSK 1/2 frames."""
    table = load_per_table()
    snr = table.snr_db_at_per("qpsk-1/2", 0.1, 100)
    point = measure(FrameTrial(OfdmModem(), "qpsk-1/2", 100, rng), snr, awgn_only, rng, 3000, None)
    assert abs(point.per - 0.1) < 5 * math.sqrt(0.09 / 3000)
