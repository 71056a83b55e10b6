import numpy as np
import pytest

from testbed.channel import Multipath
from testbed.experiment.phylab.ber import ideal_snr_db, search_snr_at_per
from testbed.experiment.phylab.genie import GenieTrial, Knowledge, OracleTrial, loss_breakdown
from testbed.experiment.phylab.link import FrameTrial, awgn_only, multipath_cfo, seeded_draw
from testbed.phy import OfdmModem, PhyConfig


@pytest.mark.parametrize("mcs", ["qpsk-1/2", "16qam-3/4", "qpsk-uncoded"])
def test_genie_on_awgn_reproduces_the_reference_table(rng, mcs):
    ideal = ideal_snr_db(mcs, 1000)
    snr, points = search_snr_at_per(GenieTrial(PhyConfig(), mcs, 1000), awgn_only, round(ideal), (-5, 40), rng, 80)
    assert snr == pytest.approx(ideal, abs=0.5)
    assert points[0].per > 0.1 >= points[-1].per


def test_genie_sees_the_fading_loss(rng):
    modem = OfdmModem()
    genie = GenieTrial(modem.cfg, "qpsk-1/2", 1000)
    snr, _ = search_snr_at_per(genie, multipath_cfo(modem), 8, (0, 30), rng, 60, 2.0)
    assert snr > ideal_snr_db("qpsk-1/2", 1000) + 3.0  # Rayleigh fading costs several dB even with perfect CSI


def test_genie_is_error_free_at_high_snr(rng):
    genie = GenieTrial(PhyConfig(), "64qam-3/4", 200)
    rx = genie(40.0, awgn_only, rng)
    assert rx.delivered and rx.bit_errors == 0 and rx.bits > 0


def _draw(seed):
    return seeded_draw(multipath_cfo(OfdmModem()), (seed,))


def test_an_oracle_told_nothing_is_the_real_receiver(rng):
    modem = OfdmModem()
    seed = int(rng.integers(1000))
    real = FrameTrial(modem, "16qam-1/2", 300, np.random.default_rng(seed))
    told_nothing = OracleTrial(modem, "16qam-1/2", 300, np.random.default_rng(seed), Knowledge())
    a_rng, b_rng = np.random.default_rng(seed + 1), np.random.default_rng(seed + 1)
    for i in range(4):
        a, b = real(16.0, _draw(i), a_rng), told_nothing(16.0, _draw(i), b_rng)
        assert (a.delivered, a.bit_errors, a.frame.start) == (b.delivered, b.bit_errors, b.frame.start)
        np.testing.assert_array_equal(a.frame.channel, b.frame.channel)


def test_an_oracle_told_the_channel_reports_the_true_taps_response(rng):
    modem = OfdmModem()
    cfg = modem.cfg
    told = OracleTrial(modem, "qpsk-1/2", 200, rng, Knowledge(timing=True, cfo=True, channel=True, backoff_samples=0))
    rx = told(30.0, _draw(5), rng)
    taps = next(m for m in rx.channel_models if isinstance(m, Multipath)).taps
    truth = np.fft.fft(taps, cfg.fft_size)[cfg.fft_bins(cfg.used_subcarriers)]
    # up to the carrier phase at the LTF, the told channel is the taps' response: no estimation noise at all
    match = abs(np.vdot(truth, rx.frame.channel)) / (np.linalg.norm(truth) * np.linalg.norm(rx.frame.channel))
    assert match > 0.9999
    estimated = FrameTrial(modem, "qpsk-1/2", 200, rng)(30.0, _draw(5), rng).frame.channel
    assert abs(np.vdot(truth, estimated)) / (np.linalg.norm(truth) * np.linalg.norm(estimated)) < match


def test_loss_breakdown_pairs_every_variant_with_the_plain_receiver():
    modem = OfdmModem()
    variants = {"cfo": Knowledge(cfo=True), "all": Knowledge(timing=True, cfo=True, channel=True, noise=True)}
    out = loss_breakdown(modem, "qpsk-1/2", 30.0, multipath_cfo(modem), 4, seed=3, variants=variants, payload_bytes=100)
    assert set(out) == {"receiver", "cfo", "all", "genie"}
    assert out["receiver"] == {"per": out["receiver"]["per"], "fewer_losses": 0, "more_losses": 0}
    assert all(0.0 <= v["per"] <= 1.0 for v in out.values())
    hopeless = loss_breakdown(modem, "qpsk-1/2", -5.0, multipath_cfo(modem), 3, 3, variants, 100)
    assert all(v["per"] == 1.0 for v in hopeless.values())
