import numpy as np
import pytest
import scipy.fft

from testbed.errors import PhyError
from testbed.phy import MCS_TABLE, PhyConfig
from testbed.phy.grid import grid_for
from testbed.phy.modulation import demap_llr
from testbed.phy.payload import body_size, tx_order
from testbed.phy.rxkernel import demap_into, gather_windows

CFG = PhyConfig()


@pytest.mark.parametrize("mcs", list(MCS_TABLE))
def test_fused_demapper_equals_numpy_demap_then_scatter_bit_for_bit(mcs, rng):
    m = MCS_TABLE[mcs]
    n_sym, per_symbol = body_size(CFG, mcs, 300)
    symbols = ([1, 1j] @ rng.normal(scale=1.5, size=(2, n_sym * CFG.num_data))).astype(np.complex64)
    noise = rng.uniform(1e-14, 3.0, CFG.num_data).astype(np.float32)  # incl. values below MIN_NOISE_VAR
    reference = demap_llr(symbols, np.tile(noise, n_sym), m.bits_per_symbol)
    if m.coded:
        order = tx_order(mcs, CFG.num_data, n_sym)
        out = np.zeros(2 * n_sym * per_symbol, np.float32)
        expected = np.zeros_like(out)
        expected[order] = reference
    else:
        order, out, expected = np.empty(0, np.intp), np.empty(reference.size, np.float32), reference
    demap_into(symbols, noise, m.bits_per_symbol, order, out)
    np.testing.assert_array_equal(out, expected)


def test_gathered_windows_match_the_grid_demodulator(rng):
    iq = ([1, 1j] @ rng.normal(size=(2, 1000))).astype(np.complex64)
    starts = np.array([3, 100, 936])
    ramp = np.exp(1j * rng.uniform(0, 6, CFG.fft_size)).astype(np.complex64)
    phase = np.exp(1j * rng.uniform(0, 6, 3)).astype(np.complex64)
    dc = np.complex64(0.3 - 0.1j)
    out = np.empty((3, CFG.fft_size), np.complex64)
    gather_windows(iq, starts, dc, ramp, phase, out)
    expected = (iq[starts[:, None] + np.arange(CFG.fft_size)] - dc) * ramp * phase[:, None]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    grid = grid_for(CFG)
    np.testing.assert_allclose(
        np.take(scipy.fft.fft(out, axis=1), grid.used_bins, axis=1) / grid.tx_scale, grid.demodulate(out), atol=1e-5
    )


def test_kernels_refuse_inputs_that_would_index_outside_their_arrays():
    out = np.zeros(8, np.float32)
    with pytest.raises(PhyError, match="do not fit"):
        demap_into(np.zeros(4, np.complex64), np.ones(4, np.float32), 2, np.arange(8) + 1, out)
    with pytest.raises(PhyError, match="cycle"):
        demap_into(np.zeros(4, np.complex64), np.ones(3, np.float32), 2, np.arange(8), out)
    with pytest.raises(PhyError, match="finite"):
        demap_into(np.zeros(4, np.complex64), np.full(4, np.nan, np.float32), 2, np.arange(8), out)
    windows = np.empty((1, CFG.fft_size), np.complex64)
    ramp = np.ones(CFG.fft_size, np.complex64)
    with pytest.raises(PhyError, match="leaves the buffer"):
        gather_windows(np.zeros(100, np.complex64), np.array([50]), np.complex64(0), ramp, ramp[:1], windows)
