import math

import numpy as np
import pytest

from testbed.experiment.phylab.ber import (
    TARGET_PER,
    BerRunConfig,
    ideal_snr_db,
    log_crossing,
    measure,
    run_ber,
    theory_snr_db,
)
from testbed.experiment.phylab.link import FrameTrial, awgn_only, multipath_cfo
from testbed.experiment.phylab.sync import SyncConfig
from testbed.phy import OfdmModem
from testbed.phy.theory import uncoded_ber


@pytest.fixture(scope="module")
def modem() -> OfdmModem:
    return OfdmModem()


def test_good_snr_delivers_every_frame_and_hopeless_snr_none(modem, rng):
    trial = FrameTrial(modem, "qpsk-1/2", 200, rng)
    good = measure(trial, 25.0, awgn_only, rng, frames=4)
    assert (good.frames, good.frame_errors, good.missed, good.bit_errors) == (4, 0, 0, 0)
    bad = measure(trial, -10.0, awgn_only, rng, frames=4)
    assert bad.per == 1.0 and bad.ber > 0.1


def test_multipath_cfo_link_decodes_at_high_snr_with_the_real_receiver(modem, rng):
    trial = FrameTrial(modem, "16qam-1/2", 200, rng)
    rx = [trial(40.0, multipath_cfo(modem), rng) for _ in range(6)]
    assert sum(r.delivered for r in rx) >= 4  # Rayleigh fades can still sink a frame
    assert all(len(r.channel_models) == 2 for r in rx)


def test_log_crossing_interpolates_log_per():
    snr = np.array([1.0, 2.0, 3.0])
    per = np.array([1.0, 0.3, 0.03])
    crossing = log_crossing(snr, per, 0.1, floor=1e-3)
    assert crossing == pytest.approx(2.0 + (math.log10(0.1) - math.log10(0.3)) / (math.log10(0.03 / 0.3)))
    assert log_crossing(snr, np.array([1.0, 0.9, 0.5]), 0.1, 1e-3) is None
    zero_errors_floored = 1.0 + (-1.0 - math.log10(0.5)) / (-2.0 - math.log10(0.5))
    assert log_crossing(np.array([1.0, 2.0]), np.array([0.5, 0.0]), 0.1, 0.01) == pytest.approx(zero_errors_floored)


def test_uncoded_ideal_gives_10_percent_per_in_theory():
    snr = ideal_snr_db("qpsk-uncoded", 1000)
    ber = float(uncoded_ber(snr, 2))
    assert 1 - (1 - ber) ** (8 * 1004) == pytest.approx(TARGET_PER, rel=1e-6)
    assert ideal_snr_db("qpsk-1/2", 1000) == 3.6
    assert float(uncoded_ber(theory_snr_db(1e-3, 4), 4)) == pytest.approx(1e-3, rel=1e-6)


def test_tiny_run_has_the_report_shape(modem):
    cfg = BerRunConfig(
        mcs=("qpsk-1/2", "bpsk-uncoded"),
        channels=("awgn",),
        frames=3,
        refine_frames=40,
        ber_frames=1,
        payload_bytes=100,
        sync=SyncConfig(frames=2, sco_frames=1, noise_samples=20_000),
    )
    lines: list[str] = []
    result = run_ber(modem, cfg, lines.append)
    assert set(result["awgn"]) == {"qpsk-1/2", "bpsk-uncoded"}
    row = result["awgn"]["qpsk-1/2"]
    expected = {"snr_db_at_per_10pct", "ideal_snr_db", "gap_db", "genie_snr_db_at_per_10pct", "receiver_loss_db"}
    assert expected | {"snr_se_db", "genie_se_db", "receiver_loss_se_db", "paired_points"} <= set(row)
    if row["paired_points"]:  # both rough crossings found: the refinement measured paired frames
        assert sum(p["frames"] for p in row["paired_points"]) >= 12
    assert all(0.0 <= p["per"] <= 1.0 for p in row["points"])
    assert set(result["uncoded"]) == {"bpsk-uncoded"}
    assert result["sync"]["noise_samples"] == 20_000
    for target in result["targets"].values():
        assert set(target) == {"value", "limit", "rule", "met"} and isinstance(target["met"], bool)
    assert "awgn_gap_db[qpsk-1/2]" in result["targets"] and "detection_rate_at_4db" in result["targets"]
    assert lines  # progress was reported
