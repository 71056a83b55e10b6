"""Analog frames on the link: placed like data frames, through both media and the ZeroMQ hub; what the
receiver reports (equalized values, noise variance) predicts their error within 1 dB; a lost analog frame is
simply not heard."""

import threading

import numpy as np
import pytest

from testbed.channel import Awgn, Chain, Multipath
from testbed.errors import LinkError
from testbed.link.abstraction import subcarrier_snr
from testbed.link.analog import ANALOG_MCS, analog_index, analog_seq, analog_snr_db, frame_num_samples
from testbed.link.framelink import ModelFrameLink, TxFrame
from testbed.link.medium import SimulatedMedium
from testbed.link.phylink import PhyFrameLink
from testbed.link.placement import BurstPlanner, Job
from testbed.link.radiomedium import RadioMedium
from testbed.phy import OfdmModem, PhyConfig
from testbed.phy.layout import analog_burst_num_samples
from testbed.radio.base import RadioConfig
from testbed.radio.hub_client import HubRadio
from testbed.radio.hub_server import HubServer
from testbed.radio.links import configured_snr_db
from testbed.radio.scenario import scenario_from_dict

PHY = PhyConfig()


def _symbols(rng: np.random.Generator, n: int) -> np.ndarray:
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def _nmse_db(received: np.ndarray, sent: np.ndarray) -> float:
    """Error power of the values received at the sent scale (the transmitter sends them at unit power)."""
    unit = sent / np.sqrt(np.mean(np.abs(sent) ** 2))
    return float(10 * np.log10(np.mean(np.abs(received - unit) ** 2)))


def test_analog_seq_names_round_and_frame() -> None:
    seq = analog_seq(70, 5)
    assert analog_index(seq, 70) == 5 and analog_index(seq, 69) is None and analog_index(seq, 70 + 64) == 5
    with pytest.raises(LinkError, match="outside 0..1023"):
        analog_seq(1, 1024)
    assert frame_num_samples(PHY, 100, ANALOG_MCS) == analog_burst_num_samples(PHY, 100)


def test_analog_frames_are_placed_in_the_tdma_slot_like_data_frames(rng) -> None:
    from testbed.link.messages import SlotGrant

    planner = BurstPlanner(80, 20_000, lambda n, mcs: frame_num_samples(PHY, n, mcs))
    frames = [(analog_seq(1, i), _symbols(rng, 960)) for i in range(3)]
    planner.plan(Job(1, frames, ANALOG_MCS, SlotGrant(2, 5000, 4000)), 0)
    bursts = planner.due(10**6)
    n = analog_burst_num_samples(PHY, 960)
    assert [b.length for b in bursts] == [n] * 3 and 2 * n + 80 > 4000  # two do not fit one slot
    assert [b.start % 20_000 for b in bursts] == [5000] * 3 and [b.start // 20_000 for b in bursts] == [0, 1, 2]


@pytest.mark.parametrize("selective", [False, True])
def test_phy_medium_noise_estimate_predicts_the_error_within_1_db(rng, selective) -> None:
    """The real receiver synchronises and equalises with its own estimate; its noise variance is the error."""
    models = [Multipath(2.0, np.random.default_rng(4), block_fading=False)] if selective else []
    medium = SimulatedMedium(PHY.sample_rate_hz, {(1, 0): Chain([*models, Awgn(15.0, rng, PHY.occupied_fraction)])},
                             rng)  # fmt: skip
    link = PhyFrameLink(OfdmModem(PHY), medium)
    sent = [_symbols(rng, 2400) * 3.0 for _ in range(3)]  # any scale: the transmitter normalises
    frames = [TxFrame(1, 100 + i * 6000, x, ANALOG_MCS, stream_id=1, seq=analog_seq(2, i)) for i, x in enumerate(sent)]
    heard = link.exchange(frames, [0], 20_000).heard[0]
    assert [analog_index(h.seq, 2) for h in heard] == [0, 1, 2] and all(h.analog and h.payload is None for h in heard)
    for h, x in zip(heard, sent, strict=True):
        assert h.symbols.shape == x.shape
        assert _nmse_db(h.symbols, x) == pytest.approx(10 * np.log10(h.noise_var), abs=1.0)
    if not selective:
        assert 10 * np.log10(heard[0].noise_var) == pytest.approx(-15.0, abs=1.0)


def test_model_medium_adds_zero_forcing_noise_per_subcarrier_and_loses_frames(rng) -> None:
    gain = np.abs(np.fft.fft(np.array([1.0, 0.6, 0.3]), 64))[: PHY.num_data] ** 2
    sub = 10**1.5 * gain / gain.mean()  # 15 dB mean, frequency selective
    loss = {(1, 0): 0.0, (2, 0): 0.5}
    link = ModelFrameLink(PHY, rng, loss=loss, snr_db={(2, 0): 12.0}, subcarrier_snr={(1, 0): sub})
    x = _symbols(rng, 48 * 200)
    h = link.exchange([TxFrame(1, 0, x, ANALOG_MCS, 1, analog_seq(1, 0))], [0], 20_000).heard[0][0]
    assert 10 * np.log10(h.noise_var) == pytest.approx(-analog_snr_db(sub), abs=1e-9)
    assert _nmse_db(h.symbols, x) == pytest.approx(-analog_snr_db(sub), abs=0.2)
    err = np.abs(h.symbols - x).reshape(200, 48) ** 2  # each subcarrier at its own SNR
    assert np.allclose(err.mean(axis=0), 1 / sub, rtol=0.35)
    heard = [link.exchange([TxFrame(2, 0, x, ANALOG_MCS, 2, i)], [0], 20_000).heard[0] for i in range(200)]
    got = sum(len(w) for w in heard)  # a lost analog frame is not heard at all (its header failed)
    assert 70 < got < 130 and all(w[0].noise_var == pytest.approx(10**-1.2) for w in heard if w)


def test_analog_snr_of_a_flat_channel_is_its_snr() -> None:
    assert analog_snr_db(np.full(48, 10.0)) == pytest.approx(10.0)
    taps = np.array([1.0, 0.5j])
    assert analog_snr_db(subcarrier_snr(PHY, taps, 10.0)) < 10 * np.log10(np.mean(subcarrier_snr(PHY, taps, 10.0)))


def test_analog_frames_through_the_zeromq_hub_match_the_receivers_noise_estimate(rng) -> None:
    nodes = [{"id": "bs", "position_m": [0.0, 0.0]}, {"id": "ue1", "position_m": [60.0, 0.0], "crystal_ppm": 2.0}]
    scenario = scenario_from_dict({"seed": 5, "sample_rate_hz": 2.5e6, "noise_floor_dbm": -90.0, "nodes": nodes})
    server = HubServer(scenario, "tcp://127.0.0.1:*")
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop, 0.02), daemon=True)
    thread.start()
    radios = {}
    try:
        radios = {i: HubRadio(server.endpoint, name, timeout_s=30.0) for i, name in enumerate(("bs", "ue1"))}
        for r in radios.values():
            r.configure(RadioConfig(center_freq_hz=2.4e9, sample_rate_hz=2.5e6, tx_power_dbm=0.0, rx_gain_db=0.0))
        link = PhyFrameLink(OfdmModem(PHY), RadioMedium(radios, parallel_receive=True))
        sent = [_symbols(rng, 4800) for _ in range(2)]
        frames = [TxFrame(1, 200 + 9000 * i, x, ANALOG_MCS, 1, analog_seq(1, i)) for i, x in enumerate(sent)]
        heard = link.exchange(frames, [0], 20_000).heard[0]
    finally:
        for r in radios.values():
            r.close()
        stop.set()
        thread.join(timeout=5)
        server.close()
    assert [analog_index(h.seq, 1) for h in heard] == [0, 1]
    for h, x in zip(heard, sent, strict=True):
        assert _nmse_db(h.symbols, x) == pytest.approx(10 * np.log10(h.noise_var), abs=1.0)
        assert -10 * np.log10(h.noise_var) == pytest.approx(configured_snr_db(scenario, "ue1", "bs"), abs=1.5)
