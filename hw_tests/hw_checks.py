"""Bodies of the hardware tests; each runs in its own spawned process (conftest.isolated) and returns
plain values. They use only the public Radio API, except where a test must reach the chip directly."""

from __future__ import annotations

import time

import numpy as np

from testbed.phy import OfdmModem, PhyConfig
from testbed.radio.base import RadioConfig
from testbed.radio.pluto import TX_GAIN_RANGE_DB, PlutoRadio

BASE = RadioConfig(center_freq_hz=2.4e9, sample_rate_hz=2.5e6, tx_power_dbm=-40.0, rx_gain_db=20.0)


def probe(uri: str) -> dict:
    with PlutoRadio(uri) as radio:
        return radio.probe()


def digital_loopback(uri: str) -> dict:
    """AD9361 digital loopback (TX data path to RX data path inside the chip): the burst must come back
    sample for sample, up to a power-of-two scale (16-bit DAC word vs 12-bit ADC word)."""
    rng = np.random.default_rng(1)
    levels = rng.integers(-512, 512, (2, 4000))
    burst = ((levels[0] + 1j * levels[1]) / 1024.0).astype(np.complex64)  # exact on both paths
    with PlutoRadio(uri, rx_buffer_samples=32768) as radio:
        radio.configure(BASE)
        radio._sdr.loopback = 1  # chip-internal digital loopback (ad9361 debug attribute)
        try:
            radio.receive(32768)
            radio.transmit(burst)
            rx = np.concatenate([radio.receive(32768).iq for _ in range(4)])
        finally:
            radio._sdr.loopback = 0
    corr = np.abs(np.correlate(rx, burst, mode="valid"))
    k = int(np.argmax(corr))
    got = rx[k : k + burst.size]
    scale = float(np.real(np.vdot(burst, got) / np.vdot(burst, burst)))
    pow2 = 2.0 ** round(np.log2(abs(scale))) if scale else 0.0
    return {
        "offset": k,
        "scale": scale,
        "exact": bool(pow2 and np.array_equal(got, (burst * pow2).astype(np.complex64))),
    }


def rf_loopback(uri: str, frames: int, mcs: str) -> dict:
    """TX cabled to RX through an attenuator on one board: OFDM frames, PER, SNR, CFO."""
    modem = OfdmModem(PhyConfig(sample_rate_hz=BASE.sample_rate_hz))
    rng = np.random.default_rng(2)
    payloads = [rng.integers(0, 256, 200, dtype=np.uint8).tobytes() for _ in range(frames)]
    gap = 2000
    train = np.concatenate(
        [
            np.concatenate([modem.modulate(p, mcs, stream_id=7, seq=k) * 0.25, np.zeros(gap, np.complex64)])
            for k, p in enumerate(payloads)
        ]
    )
    with PlutoRadio(uri, rx_buffer_samples=65536) as radio:
        radio.configure(BASE.with_(tx_power_dbm=-30.0, rx_gain_db=10.0))
        radio.receive(65536)
        radio.transmit(train)
        iq = np.concatenate([b.iq for b in radio.stream(65536, train.size // 65536 + 4)])
    found = [f for f in modem.demodulate(iq) if f.stream_id == 7]
    good = {f.seq for f in found if f.crc_ok and f.payload == payloads[f.seq]}
    return {
        "per": 1.0 - len(good) / frames,
        "snr_db": float(np.median([f.snr_db for f in found])) if found else None,
        "cfo_hz": float(np.median([f.cfo_hz for f in found])) if found else None,
    }


def sustained_rate(uri: str, sample_rate_hz: float, seconds: float) -> dict:
    """Receive continuously at ``sample_rate_hz`` while transmitting; count overflow/underflow flags.
    (Bursty non-cyclic TX always ends in a DAC underflow, so underflows are reported, not judged.)"""
    block = 1 << 16
    with PlutoRadio(uri, rx_buffer_samples=block, kernel_buffers=4) as radio:
        radio.configure(BASE.with_(sample_rate_hz=sample_rate_hz, rf_bandwidth_hz=min(sample_rate_hz, 20e6)))
        tone = (0.1 * np.exp(2j * np.pi * 0.01 * np.arange(block))).astype(np.complex64)
        n = max(1, int(seconds * sample_rate_hz / block))
        t0 = time.perf_counter()
        for _ in range(n):
            radio.transmit(tone)
            radio.receive(block)
        wall_s = time.perf_counter() - t0
        return {"overflows": radio.overflows, "underflows": radio.underflows, "achieved_sps": n * block / wall_s}


def latency_after_flush(uri: str) -> dict:
    """Seconds from ``transmit`` to the burst's first sample in the receive stream, after the flush."""
    rate = BASE.sample_rate_hz
    burst = np.full(2000, 0.5, np.complex64)
    with PlutoRadio(uri, rx_buffer_samples=4096, kernel_buffers=2) as radio:
        radio.configure(BASE.with_(tx_power_dbm=-30.0, rx_gain_db=10.0))
        radio.receive(4096)
        sent_at = radio.transmit(burst)  # receive-clock sample count when the burst left
        blocks = list(radio.stream(4096, 64))
    power = np.abs(np.concatenate([b.iq for b in blocks])) ** 2
    above = power > 10 * np.median(power)
    if not above.any():
        return {"latency_s": None}
    onset = blocks[0].start_sample + int(np.argmax(above))
    return {"latency_s": (onset - sent_at) / rate}


def teardown_leaves_minimum_power(uri: str) -> dict:
    """Close a radio that was transmitting, reopen the board with pyadi-iio and read the TX gain."""
    import adi

    with PlutoRadio(uri) as radio:
        radio.configure(BASE.with_(tx_power_dbm=-20.0))
        radio.transmit(np.full(10000, 0.5, np.complex64))
    sdr = adi.Pluto(uri)
    gain = float(sdr.tx_hardwaregain_chan0)
    del sdr
    return {"tx_hardwaregain_db": gain, "minimum_db": TX_GAIN_RANGE_DB[0]}
