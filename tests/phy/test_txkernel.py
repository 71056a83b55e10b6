import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.phy import MCS_TABLE, PhyConfig
from testbed.phy.convcode import conv_encode
from testbed.phy.header import Header, HeaderCodec
from testbed.phy.interleaver import interleave
from testbed.phy.layout import HEADER_INFO_BITS, TAIL_BITS
from testbed.phy.modulation import map_bits
from testbed.phy.transmitter import Transmitter

TX = Transmitter(PhyConfig())
# a second numerology: other FFT size, CP and pilots, so no table is tied to the 802.11a grid
TX_WIDE = Transmitter(PhyConfig(fft_size=128, cp_len=32, occupied_half_width=50, pilot_subcarriers=(-40, -13, 13, 40)))


@pytest.mark.parametrize("mcs", list(MCS_TABLE))
@pytest.mark.parametrize("length", [0, 1, 37, 1000])
def test_fused_burst_equals_the_stage_by_stage_reference_bit_for_bit(mcs, length, rng):
    payload = rng.bytes(length)
    for tx in (TX, TX_WIDE):
        fused = tx.data_burst(payload, mcs, stream_id=200, seq=40_000 + length)
        reference = tx.reference_data_burst(payload, mcs, stream_id=200, seq=40_000 + length)
        assert fused.dtype == reference.dtype == np.complex64
        np.testing.assert_array_equal(fused, reference)


@settings(max_examples=40, deadline=None)
@given(
    payload=st.binary(max_size=300),
    mcs=st.sampled_from(list(MCS_TABLE)),
    stream_id=st.integers(0, 255),
    seq=st.integers(0, 65535),
)
def test_fused_burst_matches_the_reference_for_any_header_and_payload(payload, mcs, stream_id, seq):
    np.testing.assert_array_equal(
        TX.data_burst(payload, mcs, stream_id, seq), TX.reference_data_burst(payload, mcs, stream_id, seq)
    )


@given(
    mcs=st.integers(0, 15),
    kind=st.sampled_from(["data", "analog"]),
    length=st.integers(0, 65535),
    stream_id=st.integers(0, 255),
    seq=st.integers(0, 65535),
)
def test_header_masks_reproduce_crc_encoder_and_interleaver(mcs, kind, length, stream_id, seq):
    cfg = PhyConfig()
    codec = HeaderCodec(cfg)
    header = Header(mcs, kind, length, stream_id, seq)
    coded = np.zeros(codec.num_symbols * cfg.num_data, np.uint8)
    coded[: 2 * (HEADER_INFO_BITS + TAIL_BITS)] = conv_encode(
        np.concatenate([header.to_bits(), np.zeros(TAIL_BITS, np.uint8)])
    )
    on_air = interleave(coded, cfg.num_data, 1)  # the stage chain of the header
    masks, offset = codec.affine_masks()
    word = header.packed()
    bits = np.array([bin(int(m) & word).count("1") & 1 for m in masks], np.uint8) ^ offset
    np.testing.assert_array_equal(bits, on_air)
    np.testing.assert_array_equal(codec.encode(header).reshape(-1), map_bits(on_air, 1))
    assert word == int(sum(int(b) << i for i, b in enumerate(header.field_bits())))
