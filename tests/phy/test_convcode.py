import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.errors import PhyError
from testbed.phy.convcode import conv_encode, depuncture, puncture, viterbi_decode
from testbed.phy.interleaver import deinterleave, interleave
from testbed.phy.layout import TAIL_BITS
from testbed.phy.mcs import CODED_MCS, get_mcs
from testbed.phy.modulation import demap_llr, map_bits

RATES = [Fraction(1, 2), Fraction(2, 3), Fraction(3, 4)]


def _with_tail(bits: np.ndarray) -> np.ndarray:
    return np.concatenate([bits, np.zeros(TAIL_BITS, np.uint8)])


def test_impulse_response_is_the_80211_generators():
    # A single 1 walks through the register: A follows g0 = 133 = 1011011, B follows g1 = 171 = 1111001.
    coded = conv_encode(_with_tail(np.array([1], np.uint8)))
    assert coded[0::2].tolist() == [1, 0, 1, 1, 0, 1, 1]
    assert coded[1::2].tolist() == [1, 1, 1, 1, 0, 0, 1]


def test_80211_annex_i_signal_field_vector():
    # IEEE 802.11-2020 Annex I example: SIGNAL field for 36 Mb/s, LENGTH 100 (with parity and tail), encoded.
    signal = np.array([int(c) for c in "101100010011000000000000"], np.uint8)
    expect = "110100011010000100000010001111100111000000000000"
    assert "".join(map(str, conv_encode(signal))) == expect
    assert "".join(map(str, viterbi_decode((1.0 - 2.0 * conv_encode(signal)).astype(np.float32), 24))) == (
        "101100010011000000000000"
    )


def test_encoder_is_linear(rng):
    a = rng.integers(0, 2, 500, dtype=np.uint8)
    b = rng.integers(0, 2, 500, dtype=np.uint8)
    assert np.array_equal(conv_encode(a ^ b), conv_encode(a) ^ conv_encode(b))
    assert conv_encode(np.zeros(0, np.uint8)).size == 0


@pytest.mark.parametrize(
    ("rate", "n_dbps", "n_cbps", "stolen"),
    [(Fraction(1, 2), 24, 48, []), (Fraction(2, 3), 192, 288, [3]), (Fraction(3, 4), 216, 288, [3, 4])],
)
def test_puncture_lengths_and_stolen_positions(rate, n_dbps, n_cbps, stolen):
    # IEEE 802.11-2020 Table 17-4: one OFDM symbol of N_DBPS data bits fills exactly N_CBPS coded bits.
    n_mother = 2 * n_dbps
    coded = conv_encode(np.ones(n_dbps, np.uint8))
    assert puncture(coded, rate).size == n_cbps
    restored = depuncture(np.arange(1, n_cbps + 1, dtype=np.float32), rate, n_mother)
    assert restored.dtype == np.float32 and restored.size == n_mother
    period = {2: 2, 3: 4, 4: 6}[rate.denominator]
    zeros = sorted({int(i) % period for i in np.flatnonzero(restored == 0)})
    assert zeros == stolen
    kept = restored[restored != 0]
    assert np.array_equal(kept, np.arange(1, n_cbps + 1))  # order preserved


def test_partial_period_keeps_the_pattern_prefix():
    coded = np.zeros(8, np.uint8)  # 3/4 pattern 111001 then 11 -> 4 + 2 kept
    assert puncture(coded, Fraction(3, 4)).size == 6
    assert depuncture(np.ones(6, np.float32), Fraction(3, 4), 8).tolist() == [1, 1, 1, 0, 0, 1, 1, 1]


@settings(max_examples=40, deadline=None)
@given(
    payload=st.binary(min_size=0, max_size=60),
    rate=st.sampled_from(RATES),
    amplitude=st.floats(min_value=1e-3, max_value=1e7),
)
def test_round_trip_every_rate(payload, rate, amplitude):
    bits = np.unpackbits(np.frombuffer(payload, np.uint8), bitorder="little")
    coded = conv_encode(_with_tail(bits))
    tx = puncture(coded, rate)
    llrs = (amplitude * (1.0 - 2.0 * tx)).astype(np.float32)
    decoded = viterbi_decode(depuncture(llrs, rate, coded.size), bits.size)
    assert decoded.dtype == np.uint8
    assert np.array_equal(decoded, bits)


def test_decoder_is_maximum_likelihood_on_short_blocks(rng):
    # Brute force over all 2^8 messages: the Viterbi path must be the codeword with the largest correlation.
    messages = np.array(list(itertools.product([0, 1], repeat=8)), np.uint8)
    codewords = np.array([conv_encode(_with_tail(m)) for m in messages]).astype(np.float32)
    for trial in range(30):
        llrs = rng.normal(size=codewords.shape[1]).astype(np.float32)
        if trial % 2:  # stolen positions of rate 3/4 carry zero
            n_tx = puncture(np.zeros(llrs.size, np.uint8), Fraction(3, 4)).size
            llrs = depuncture(llrs[:n_tx], Fraction(3, 4), llrs.size)
        best = messages[np.argmax((1 - 2 * codewords) @ llrs)]
        assert np.array_equal(viterbi_decode(llrs, 8), best)


@pytest.mark.parametrize(("rate", "max_ber"), [(Fraction(1, 2), 1e-4), (Fraction(3, 4), 2e-3)])
def test_decoder_corrects_errors_at_uncoded_ber_1e_2(rate, max_ber, rng):
    # BPSK at Eb/N0 = 4.3 dB: uncoded BER is about 1e-2. Es/N0 per coded bit = Eb/N0 * rate.
    n = 20_000
    bits = rng.integers(0, 2, n, dtype=np.uint8)
    tx = puncture(conv_encode(_with_tail(bits)), rate)
    es_n0 = 10 ** (4.3 / 10) * float(rate)
    noise_var = 1 / es_n0  # complex noise variance per unit-energy symbol
    y = (1.0 - 2.0 * tx) + rng.normal(scale=np.sqrt(noise_var / 2), size=tx.size)
    uncoded_ber = np.mean((y < 0) != tx)
    llrs = (4 * y / noise_var).astype(np.float32)
    decoded = viterbi_decode(depuncture(llrs, rate, 2 * (n + TAIL_BITS)), n)
    coded_ber = np.mean(decoded != bits)
    assert uncoded_ber > 0.01
    assert coded_ber <= max_ber


def test_bad_input_is_refused():
    with pytest.raises(PhyError, match="uint8"):
        conv_encode(np.zeros(4, np.int32))
    with pytest.raises(PhyError, match="only 0 and 1"):
        conv_encode(np.array([0, 3], np.uint8))
    with pytest.raises(PhyError, match="code rate"):
        puncture(np.zeros(4, np.uint8), Fraction(5, 6))
    with pytest.raises(PhyError, match="code rate"):
        puncture(np.zeros(4, np.uint8), "fast")
    with pytest.raises(PhyError, match="keeps 9 of 12"):
        depuncture(np.zeros(10, np.float32), Fraction(2, 3), 12)
    with pytest.raises(PhyError, match="odd"):
        viterbi_decode(np.zeros(5, np.float32), 2)
    with pytest.raises(PhyError, match="n_bits"):
        viterbi_decode(np.zeros(6, np.float32), 4)
    with pytest.raises(PhyError, match="NaN"):
        viterbi_decode(np.array([0.0, np.nan], np.float32), 1)
    with pytest.raises(PhyError, match="float32"):
        viterbi_decode(np.zeros(4, np.uint8), 2)


def _frame_errors(mcs_name: str, es_n0_db: float, n_frames: int, rng: np.random.Generator) -> int:
    """1000-byte frames (+ CRC) through encode, puncture, interleave, map, AWGN and back; count wrong frames."""
    mcs = get_mcs(mcs_name)
    k = mcs.bits_per_symbol
    n_cbps = mcs.coded_bits_per_ofdm_symbol(48)
    n_info = 8 * 1004
    n_total = -(-(n_info + TAIL_BITS) // mcs.data_bits_per_ofdm_symbol(48)) * mcs.data_bits_per_ofdm_symbol(48)
    noise_var = 10 ** (-es_n0_db / 10)
    errors = 0
    for _ in range(n_frames):
        bits = np.zeros(n_total, np.uint8)  # info, tail and pad
        bits[:n_info] = rng.integers(0, 2, n_info, dtype=np.uint8)
        x = map_bits(interleave(puncture(conv_encode(bits), mcs.code_rate), n_cbps, k), k)
        noise = rng.standard_normal(2 * x.size, dtype=np.float32).view(np.complex64) * np.float32(
            np.sqrt(noise_var / 2)
        )
        llrs = deinterleave(demap_llr(x + noise, noise_var, k), n_cbps, k)
        decoded = viterbi_decode(depuncture(llrs, mcs.code_rate, 2 * n_total), n_info)
        errors += not np.array_equal(decoded, bits[:n_info])
    return errors


@pytest.mark.parametrize("mcs_name", CODED_MCS)
def test_coded_chain_reaches_the_80211_reference_per(mcs_name, rng):
    # ARCHITECTURE.md reference (mcs.ideal_snr_db_per_10pct): 10% PER for 1000-byte frames, AWGN, perfect CSI;
    # the PER curve falls about a decade per dB, so +-1 dB must land clearly on either side.
    ref_db = get_mcs(mcs_name).ideal_snr_db_per_10pct
    good = _frame_errors(mcs_name, ref_db + 1.0, 100, rng)
    bad = _frame_errors(mcs_name, ref_db - 1.0, 100, rng)
    assert good <= 6, f"{good}/100 frames lost 1 dB above the reference SNR"
    assert bad >= 20, f"only {bad}/100 frames lost 1 dB below the reference SNR"
