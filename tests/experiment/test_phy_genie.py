import pytest

from testbed.experiment.phy_ber import ideal_snr_db, search_snr_at_per
from testbed.experiment.phy_genie import GenieTrial
from testbed.experiment.phy_link import awgn_only, multipath_cfo
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
