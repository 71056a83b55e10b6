import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.channel.awgn import Awgn
from testbed.channel.base import Chain
from testbed.channel.impairments import DcOffset, IqImbalance, PhaseNoise
from testbed.channel.multipath import Multipath
from testbed.channel.offsets import FrequencyOffset, SamplingClockOffset
from testbed.errors import PhyError
from testbed.phy import MCS_TABLE, OfdmModem, PhyConfig, RxFrame
from testbed.phy.layout import analog_burst_num_samples, burst_num_samples

CFG = PhyConfig()
MODEM = OfdmModem(CFG)


def _pad(x, before=300, after=300):
    return np.concatenate([np.zeros(before, np.complex64), x, np.zeros(after, np.complex64)])


@pytest.mark.parametrize("mcs", list(MCS_TABLE))
def test_burst_lengths_match_the_layout_for_every_mcs_and_round_trip(mcs, rng):
    payload = rng.bytes(77)
    x = MODEM.modulate(payload, mcs, stream_id=5, seq=300)
    assert len(x) == burst_num_samples(CFG, 77, mcs) == MODEM.burst_num_samples(77, mcs)
    assert x.dtype == np.complex64
    assert np.mean(np.abs(x) ** 2) == pytest.approx(1.0, rel=0.1)
    (frame,) = MODEM.demodulate(Awgn(30.0, rng, CFG.occupied_fraction)(_pad(x)))
    assert (frame.payload, frame.mcs, frame.stream_id, frame.seq, frame.start) == (payload, mcs, 5, 300, 300)
    assert frame.frame_type == "data" and frame.crc_ok


def test_exact_bytes_after_a_noisy_multipath_link_with_cfo(rng):
    payload = rng.bytes(1000)
    channel = Chain(
        [
            Multipath(2.0, rng, num_taps=12, block_fading=False),
            FrequencyOffset(1.5 * CFG.subcarrier_spacing_hz, CFG.sample_rate_hz),
            Awgn(18.0, rng, CFG.occupied_fraction),
        ]
    )
    frames = MODEM.demodulate(channel(_pad(MODEM.modulate(payload, "16qam-1/2", seq=9))))
    assert [f.payload for f in frames] == [payload]
    f = frames[0]
    assert f.cfo_hz == pytest.approx(1.5 * CFG.subcarrier_spacing_hz, abs=0.02 * CFG.subcarrier_spacing_hz)
    assert f.channel.shape == (CFG.num_used,) and f.channel.dtype == np.complex64


def test_dc_offset_iq_imbalance_and_phase_noise_with_cfo_still_deliver_64qam(rng):
    payloads = [rng.bytes(500) for _ in range(4)]
    channel = Chain(
        [
            FrequencyOffset(0.77 * CFG.subcarrier_spacing_hz, CFG.sample_rate_hz),
            PhaseNoise(50.0, CFG.sample_rate_hz, rng),
            IqImbalance(0.3, 2.0),
            DcOffset(0.2 - 0.1j),  # LO leakage at -13 dB, moved off the empty DC subcarrier by the CFO
            Awgn(27.0, rng, CFG.occupied_fraction),
        ]
    )
    iq = channel(np.concatenate([_pad(MODEM.modulate(p, "64qam-3/4", seq=i), 100, 50) for i, p in enumerate(payloads)]))
    assert [f.payload for f in MODEM.demodulate(iq)] == payloads


def test_back_to_back_frames_in_noise_are_all_found_at_their_start(rng):
    payloads = [rng.bytes(int(n)) for n in rng.integers(1, 200, size=12)]
    gaps = rng.integers(0, 40, size=12)
    parts, starts, pos = [np.zeros(500, np.complex64)], [], 500
    for i, (p, gap) in enumerate(zip(payloads, gaps, strict=True)):
        x = MODEM.modulate(p, ["bpsk-1/2", "qpsk-3/4", "64qam-3/4"][i % 3], seq=i)
        starts.append(pos)
        parts += [x, np.zeros(gap, np.complex64)]
        pos += len(x) + gap
    parts.append(np.zeros(700, np.complex64))
    iq = Awgn(25.0, rng, CFG.occupied_fraction)(np.concatenate(parts))
    frames = MODEM.demodulate(iq)
    assert [f.payload for f in frames] == payloads
    assert [f.start for f in frames] == starts
    assert [f.seq for f in frames] == list(range(12))


def test_corrupted_payload_is_reported_with_crc_false_and_no_data(rng):
    modem = OfdmModem(CFG)
    x = _pad(modem.modulate(rng.bytes(400), "qpsk-uncoded"))
    header_end = 300 + 320 + 3 * CFG.symbol_len
    x[header_end + 400 : header_end + 700] = 0  # wipe a stretch of the body
    (frame,) = modem.demodulate(Awgn(25.0, rng, CFG.occupied_fraction)(x))
    assert frame.crc_ok is False and frame.payload is None
    assert modem.stats.crc_failures == 1 and modem.stats.frames == 1


def test_wiped_header_yields_no_frame_and_is_counted(rng):
    modem = OfdmModem(CFG)
    x = _pad(modem.modulate(rng.bytes(50)))
    x[300 + 320 : 300 + 320 + 3 * CFG.symbol_len] *= -1j * np.exp(1j * np.arange(240))  # scramble the header
    assert modem.demodulate(Awgn(25.0, rng, CFG.occupied_fraction)(x)) == []
    assert modem.stats.header_failures == 1


def test_analog_symbols_come_back_with_the_error_variance_reported(rng):
    n = 2000
    sent = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)
    x = MODEM.modulate_symbols(sent, stream_id=3, seq=17)
    assert len(x) == analog_burst_num_samples(CFG, n) == MODEM.analog_burst_num_samples(n)
    (frame,) = MODEM.demodulate(Awgn(12.0, rng, CFG.occupied_fraction)(_pad(x)))
    assert (frame.frame_type, frame.mcs, frame.stream_id, frame.seq) == ("analog", "analog", 3, 17)
    assert frame.symbols.shape == (n,)
    scale = np.sqrt(np.mean(np.abs(sent) ** 2))
    error = np.mean(np.abs(frame.symbols - sent / scale) ** 2)
    assert frame.noise_var == pytest.approx(error, rel=0.15)
    assert frame.noise_var == pytest.approx(10 ** (-12 / 10), rel=0.2)
    assert frame.snr_db == pytest.approx(12.0, abs=1.0)


def test_4000_bytes_survive_a_40_ppm_sampling_clock_offset(rng):
    payload = rng.bytes(4000)
    for ppm in (40.0, -40.0):
        iq = SamplingClockOffset(ppm)(_pad(MODEM.modulate(payload, "qpsk-1/2")))
        frames = MODEM.demodulate(Awgn(15.0, rng, CFG.occupied_fraction)(iq))
        assert [f.payload for f in frames] == [payload]


@pytest.mark.parametrize("snr_db", [3.0, 15.0, 28.0])
def test_snr_estimate_is_within_1_db(rng, snr_db):
    x = _pad(MODEM.modulate(rng.bytes(200), "bpsk-1/2"))
    estimates = [MODEM.demodulate(Awgn(snr_db, rng, CFG.occupied_fraction)(x))[0].snr_db for _ in range(5)]
    assert np.mean(estimates) == pytest.approx(snr_db, abs=1.0)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(100, np.float32),
        np.zeros((2, 100), np.complex64),
        np.array([1 + 1j, np.nan, 0], np.complex64),
        np.array([np.inf], np.complex128),
        [1j, 2j],
    ],
)
def test_bad_sample_buffers_raise_phy_error(bad):
    with pytest.raises(PhyError):
        MODEM.demodulate(bad)


def test_empty_buffer_gives_no_frames():
    assert MODEM.demodulate(np.zeros(0, np.complex64)) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.modulate(bytes(CFG.max_payload_bytes + 1)),
        lambda m: m.modulate("text"),
        lambda m: m.modulate(b"x", "qpsk-7/8"),
        lambda m: m.modulate(b"x", stream_id=256),
        lambda m: m.modulate(b"x", seq=70000),
        lambda m: m.modulate_symbols(np.ones(10, np.float32)),
        lambda m: m.modulate_symbols(np.zeros(10, np.complex64)),
        lambda m: m.modulate_symbols(np.zeros(0, np.complex64)),
        lambda m: m.modulate_symbols(np.array([np.nan], np.complex64)),
    ],
)
def test_bad_transmit_requests_raise_phy_error(call):
    with pytest.raises(PhyError):
        call(MODEM)


def test_oversized_buffer_is_refused_without_processing():
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.complex64), shape=(1 << 27,), strides=(0,))
    with pytest.raises(PhyError, match="pieces"):
        MODEM.demodulate(huge)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300), st.sampled_from(list(MCS_TABLE)), st.integers(0, 255), st.integers(0, 65535))
def test_any_payload_round_trips_on_a_clean_link(payload, mcs, stream_id, seq):
    (frame,) = MODEM.demodulate(_pad(MODEM.modulate(payload, mcs, stream_id=stream_id, seq=seq), 37, 100))
    assert isinstance(frame, RxFrame)
    assert (frame.payload, frame.stream_id, frame.seq, frame.start) == (payload, stream_id, seq, 37)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 5000), st.floats(1e-6, 1e6))
def test_random_iq_never_raises(seed, n, scale):
    gen = np.random.default_rng(seed)
    iq = (scale * (gen.standard_normal(n) + 1j * gen.standard_normal(n))).astype(np.complex64)
    if n > 400:
        iq[gen.integers(0, n - 320) :][:320] += MODEM.modulate(b"", "bpsk-1/2")[:320]  # a lone preamble
    frames = MODEM.demodulate(iq)
    assert all(isinstance(f, RxFrame) and np.isfinite(f.snr_db) for f in frames)


def test_a_failed_crc_is_retried_with_the_decoded_frame_as_pilots_on_multipath(rng):
    # 64QAM on Rayleigh multipath near its 10% PER point: the five training symbols leave a noisy channel
    # estimate; re-estimating from the decoded frame recovers frames the first pass lost, and loses none
    plain = OfdmModem(CFG, data_aided=False)
    payload = rng.bytes(600)
    burst = _pad(MODEM.modulate(payload, "64qam-3/4", seq=3))
    aided_ok, plain_ok = [], []
    for _ in range(40):
        iq = Chain([Multipath(2.0, rng), Awgn(23.0, rng, CFG.occupied_fraction)])(burst)
        aided_ok.append(any(f.payload == payload for f in MODEM.demodulate(iq)))
        plain_ok.append(any(f.payload == payload for f in plain.demodulate(iq)))
    assert all(a or not p for a, p in zip(aided_ok, plain_ok, strict=True))
    assert sum(aided_ok) > sum(plain_ok)
