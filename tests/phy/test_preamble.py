import numpy as np
import pytest

from testbed.errors import PhyError
from testbed.phy.layout import preamble_num_samples
from testbed.phy.numerology import PhyConfig
from testbed.phy.preamble import Preamble, preamble_for


@pytest.mark.parametrize("cfg", [PhyConfig(), PhyConfig(fft_size=128, cp_len=32, occupied_half_width=53)])
def test_preamble_fills_the_layout_budget_at_unit_power(cfg):
    pre = preamble_for(cfg)
    assert len(pre.samples) == preamble_num_samples(cfg)
    assert pre.samples.dtype == np.complex64
    assert np.mean(np.abs(pre.samples) ** 2) == pytest.approx(1.0, rel=0.02)


def test_stf_repeats_every_eighth_of_an_fft_and_ltf_is_cyclic():
    cfg = PhyConfig()
    pre = preamble_for(cfg)
    stf = pre.samples[: pre.stf_len]
    assert pre.stf_period == 8
    np.testing.assert_allclose(stf[8:], stf[:-8], atol=1e-6)
    ltf = pre.samples[pre.stf_len :]  # guard + two symbols: periodic with the FFT size
    np.testing.assert_allclose(ltf[cfg.fft_size :], ltf[: -cfg.fft_size], atol=1e-6)
    assert np.allclose(np.abs(pre.ltf_values), 1.0)


def test_band_without_stf_tones_is_refused():
    with pytest.raises(PhyError, match="short training field"):
        Preamble(PhyConfig(fft_size=16, cp_len=4, occupied_half_width=7, pilot_subcarriers=(-5, 5)))
