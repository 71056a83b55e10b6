import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from testbed.errors import PhyError
from testbed.phy.crc import bits_to_bytes, bytes_to_bits, check_bits, check_llrs, crc16, crc32


def test_bits_go_least_significant_first():
    # 0x01 -> 1 then seven zeros; 0x80 -> seven zeros then 1 (IEEE 802.11 bit order).
    assert bytes_to_bits(b"\x01\x80").tolist() == [1, 0, 0, 0, 0, 0, 0, 0] + [0] * 7 + [1]
    assert bytes_to_bits(b"").dtype == np.uint8


@given(st.binary(max_size=300))
def test_bytes_bits_round_trip(data):
    bits = bytes_to_bits(data)
    assert bits.dtype == np.uint8 and bits.size == 8 * len(data)
    assert bits_to_bytes(bits) == data


def test_crc32_is_zlibs_standard_crc():
    assert crc32(b"123456789") == 0xCBF43926  # the CRC-32 check value
    assert crc32(b"testbed") == zlib.crc32(b"testbed")


def test_crc16_ccitt_check_value():
    # CRC-16/CCITT-FALSE check value over "123456789" with bytes fed most significant bit first.
    msb_first = np.unpackbits(np.frombuffer(b"123456789", dtype=np.uint8))
    assert crc16(msb_first) == 0x29B1
    assert crc16(np.zeros(0, np.uint8)) == 0xFFFF


def test_crc16_detects_every_single_and_double_bit_error_in_a_header(rng):
    bits = rng.integers(0, 2, 48, dtype=np.uint8)
    ref = crc16(bits)
    for i in range(48):
        flipped = bits.copy()
        flipped[i] ^= 1
        assert crc16(flipped) != ref
        flipped[(i + 17) % 48] ^= 1
        assert crc16(flipped) != ref


@pytest.mark.parametrize(
    ("bits", "match"),
    [
        ([0, 1, 1], "numpy array"),
        (np.array([0, 1], dtype=np.int64), "uint8"),
        (np.array([0, 2], dtype=np.uint8), "only 0 and 1"),
        (np.zeros((2, 8), dtype=np.uint8), "1-D"),
        (np.zeros(7, dtype=np.uint8), "multiple of 8"),
    ],
)
def test_bad_bits_are_refused(bits, match):
    with pytest.raises(PhyError, match=match):
        bits_to_bytes(bits)


def test_check_helpers():
    ok = np.array([0, 1], dtype=np.uint8)
    assert check_bits(ok) is ok
    assert check_llrs(np.array([1.0, -2.0])).dtype == np.float32
    with pytest.raises(PhyError, match="NaN"):
        check_llrs(np.array([1.0, np.nan], dtype=np.float32))
    with pytest.raises(PhyError, match="float32"):
        check_llrs(np.array([1, 2]))
    with pytest.raises(PhyError, match="bytes"):
        bytes_to_bits("text")
