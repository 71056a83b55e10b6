import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from testbed.errors import PhyError
from testbed.phy.scrambler import scramble, scrambler_sequence

# IEEE 802.11-2020 17.3.5.5: the 127-bit sequence generated from the all-ones initial state.
ALL_ONES_SEQUENCE = (
    "00001110 11110010 11001001 00000010 00100110 00101110 10110110 00001100 "
    "11010100 11100111 10110100 00101010 11111010 01010001 10111000 1111111"
).replace(" ", "")


def test_all_ones_seed_gives_the_standard_sequence():
    seq = scrambler_sequence(127, 127)
    assert seq.dtype == np.uint8
    assert "".join(map(str, seq)) == ALL_ONES_SEQUENCE


def test_sequence_has_period_127_and_is_balanced():
    seq = scrambler_sequence(93, 3 * 127)
    assert np.array_equal(seq[:127], seq[127:254])
    assert int(seq[:127].sum()) == 64  # maximal-length sequence: 64 ones, 63 zeros
    periods = {"".join(map(str, scrambler_sequence(s, 127))) for s in range(1, 128)}
    assert len(periods) == 127  # every seed is a distinct phase


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=127))
def test_scramble_is_self_inverse(data, seed):
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    once = scramble(bits, seed)
    assert once.dtype == np.uint8
    assert np.array_equal(scramble(once, seed), bits)


def test_scrambling_whitens_a_constant_payload():
    assert scramble(np.zeros(127, np.uint8), 127).sum() == 64


@pytest.mark.parametrize("seed", [0, 128, -1, True, 1.5])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(PhyError, match="seed"):
        scrambler_sequence(seed, 10)


def test_bad_bits_are_refused():
    with pytest.raises(PhyError, match="uint8"):
        scramble(np.zeros(8, np.float32), 5)
    with pytest.raises(PhyError, match=">= 0"):
        scrambler_sequence(5, -1)
