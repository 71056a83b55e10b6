import numpy as np
import pytest

from testbed.errors import PhyError
from testbed.phy.header import Header, HeaderCodec
from testbed.phy.numerology import PhyConfig


def test_bits_round_trip_and_field_layout():
    h = Header(mcs_index=4, frame_type="data", length=1500, stream_id=7, seq=65535)
    bits = h.to_bits()
    assert bits.shape == (64,) and bits.dtype == np.uint8
    assert list(bits[:4]) == [0, 0, 1, 0]  # MCS 4, least significant bit first
    assert Header.from_bits(bits) == h


def test_any_single_bit_error_is_rejected_by_the_crc():
    bits = Header(2, "analog", 100, 255, 1234).to_bits()
    for i in range(64):
        flipped = bits.copy()
        flipped[i] ^= 1
        assert Header.from_bits(flipped) is None


def test_a_data_header_naming_no_known_mcs_is_rejected_even_with_a_good_crc():
    assert Header.from_bits(Header(13, "data", 1, 0, 0).to_bits()) is None
    assert Header.from_bits(Header(15, "analog", 1, 0, 0).to_bits()) is not None


@pytest.mark.parametrize("kwargs", [{"stream_id": 256}, {"seq": -1}, {"length": 1 << 16}, {"frame_type": "video"}])
def test_out_of_range_fields_are_refused(kwargs):
    fields = {"mcs_index": 0, "frame_type": "data", "length": 10, "stream_id": 0, "seq": 0} | kwargs
    with pytest.raises(PhyError):
        Header(**fields)


def test_codec_survives_noise_and_rejects_garbage(rng):
    cfg = PhyConfig()
    codec = HeaderCodec(cfg)
    h = Header(1, "data", 321, 9, 42)
    symbols = codec.encode(h).reshape(-1)
    assert symbols.size == codec.num_symbols * cfg.num_data
    noisy = symbols + 0.5 * (rng.standard_normal(symbols.size) + 1j * rng.standard_normal(symbols.size))
    assert codec.decode(noisy.astype(np.complex64), np.full(symbols.size, 0.5, np.float32)) == h
    garbage = (rng.standard_normal(symbols.size) + 1j * rng.standard_normal(symbols.size)).astype(np.complex64)
    assert codec.decode(garbage, np.ones(symbols.size, np.float32)) is None
