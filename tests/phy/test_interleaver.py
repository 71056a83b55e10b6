import numpy as np
import pytest

from testbed.errors import PhyError
from testbed.phy.interleaver import deinterleave, interleave

# (N_CBPS, N_BPSC) of the 802.11a modulations on 48 data subcarriers (IEEE 802.11-2020 Table 17-4).
SHAPES = [(48, 1), (96, 2), (192, 4), (288, 6)]


def _standard_deinterleave_index(j: int, n_cbps: int, n_bpsc: int) -> int:
    """The deinterleaver equations of 17.3.5.7 (receiver side): interleaved position j came from input k."""
    s = max(n_bpsc // 2, 1)
    i = s * (j // s) + (j + (16 * j) // n_cbps) % s
    return 16 * i - (n_cbps - 1) * ((16 * i) // n_cbps)


@pytest.mark.parametrize(("n_cbps", "n_bpsc"), SHAPES)
def test_permutation_is_a_bijection_matching_the_standard(n_cbps, n_bpsc):
    positions = np.arange(n_cbps, dtype=np.float32)
    out = interleave(positions, n_cbps, n_bpsc)
    assert out.dtype == np.float32
    assert np.array_equal(np.sort(out), positions)
    for j in range(n_cbps):  # out[j] holds input bit k
        assert out[j] == _standard_deinterleave_index(j, n_cbps, n_bpsc)


@pytest.mark.parametrize(
    ("n_cbps", "n_bpsc", "k", "j"),
    [(48, 1, 1, 3), (48, 1, 16, 1), (192, 4, 1, 13), (192, 4, 16, 1), (288, 6, 1, 20), (288, 6, 2, 37)],
)
def test_hand_computed_positions(n_cbps, n_bpsc, k, j):
    # The two permutations of 17.3.5.7 by hand, e.g. 64QAM k=1: i = 18, j = 3*6 + (18 + 288 - 1) mod 3 = 20.
    bits = np.zeros(n_cbps, np.uint8)
    bits[k] = 1
    assert np.flatnonzero(interleave(bits, n_cbps, n_bpsc)).tolist() == [j]


@pytest.mark.parametrize(("n_cbps", "n_bpsc"), SHAPES)
def test_round_trip_on_several_blocks(n_cbps, n_bpsc, rng):
    bits = rng.integers(0, 2, 5 * n_cbps, dtype=np.uint8)
    mixed = interleave(bits, n_cbps, n_bpsc)
    assert mixed.dtype == np.uint8 and not np.array_equal(mixed, bits)
    assert np.array_equal(deinterleave(mixed, n_cbps, n_bpsc), bits)
    llrs = rng.normal(size=5 * n_cbps).astype(np.float32)
    np.testing.assert_array_equal(deinterleave(interleave(llrs, n_cbps, n_bpsc), n_cbps, n_bpsc), llrs)
    # each block is permuted on its own
    assert np.array_equal(mixed[:n_cbps], interleave(bits[:n_cbps], n_cbps, n_bpsc))


def test_adjacent_bits_land_on_distant_subcarriers():
    out = interleave(np.arange(192, dtype=np.float32), 192, 4).astype(int)
    position = np.argsort(out)  # where input bit k went
    subcarrier = position // 4
    assert np.min(np.abs(np.diff(subcarrier[:16]))) >= 3


def test_bad_input_is_refused():
    with pytest.raises(PhyError, match="multiple of 16"):
        interleave(np.zeros(40, np.uint8), 40, 1)
    with pytest.raises(PhyError, match="n_bpsc"):
        interleave(np.zeros(48, np.uint8), 48, 3)
    with pytest.raises(PhyError, match="whole OFDM symbols"):
        interleave(np.zeros(50, np.uint8), 48, 1)
    with pytest.raises(PhyError, match="NaN"):
        deinterleave(np.full(48, np.nan, np.float32), 48, 1)
    with pytest.raises(PhyError, match="only 0 and 1"):
        interleave(np.full(48, 2, np.uint8), 48, 1)
    with pytest.raises(PhyError, match="float32"):
        interleave(np.zeros(48, np.int64), 48, 1)
