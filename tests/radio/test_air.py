"""The shared virtual air and the loopback backend: time model, superposition, noise, CFO, departures."""

import numpy as np
import pytest
from conftest import RADIO, make_scenario

from testbed.errors import ConfigError, RadioError
from testbed.radio.air import Air
from testbed.radio.loopback import LoopbackRadio


def _air(**overrides):
    air = Air(make_scenario(**overrides))
    for nid in ("bs", "ue1", "ue2"):
        air.join(nid)
        air.set_radio(nid, 0.0, "manual", 0.0)
    return air


def _burst(rng, n=800):
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def test_window_waits_for_every_other_node():
    air = _air()
    air.request("ue1", 1000)
    assert not air.ready("ue1")  # bs and ue2 could still transmit into [0, 1000)
    air.request("bs", 1500)
    assert not air.ready("ue1")
    air.request("ue2", 1000)
    assert air.ready("ue1") and air.ready("ue2") and not air.ready("bs")
    air.collect("ue1")
    air.collect("ue2")
    assert air.cursor("ue1") == 1000
    air.request("ue1", 500)
    air.request("ue2", 500)
    assert air.ready("bs")


def test_burst_in_the_past_is_refused():
    air = _air()
    air.request("bs", 100)
    air.collect("bs")
    with pytest.raises(RadioError, match="in the past"):
        air.transmit("bs", np.ones(10, np.complex64), at_sample=50)


def test_unknown_and_duplicate_nodes():
    air = _air()
    with pytest.raises(ConfigError, match="unknown node id 'ghost'"):
        air.join("ghost")
    with pytest.raises(RadioError, match="already connected"):
        air.join("bs")


def _hear(air_factory, bursts, n=3000, node="bs"):
    air = air_factory()
    for src, iq, at in bursts:
        air.transmit(src, iq, at)
    air.request(node, n)
    return air.collect(node).iq


def test_overlapping_bursts_add_up(rng):
    a, b = _burst(rng), _burst(rng)
    both = _hear(_air, [("ue1", a, 100), ("ue2", b, 500)])
    only_a = _hear(_air, [("ue1", a, 100)])
    only_b = _hear(_air, [("ue2", b, 500)])
    none = _hear(_air, [])
    np.testing.assert_allclose(both, only_a + only_b - none, atol=1e-7)


def test_noise_does_not_depend_on_window_split():
    whole = _hear(_air, [], n=70_000)
    air = _air()
    parts = []
    for n in (1, 32_767, 5_000, 32_232):
        air.request("bs", n)
        parts.append(air.collect("bs").iq)
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_same_seed_same_samples_other_seed_differs(rng):
    a = _burst(rng)
    first = _hear(_air, [("ue1", a, 10)])
    again = _hear(_air, [("ue1", a, 10)])
    other = _hear(lambda: _air(seed=12), [("ue1", a, 10)])
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_noise_floor_and_link_power(rng):
    air = _air()
    iq = _hear(lambda: air, [("ue1", _burst(rng, 20_000), 1000)], n=22_000)
    noise_dbfs = 10 * np.log10(np.mean(np.abs(iq[:900]) ** 2))
    assert noise_dbfs == pytest.approx(-90.0, abs=0.7)
    from testbed.radio.links import received_power_dbm

    total = np.mean(np.abs(iq[1100:20_900]) ** 2)
    assert 10 * np.log10(total) == pytest.approx(received_power_dbm(air.scenario, "ue1", "bs"), abs=0.3)


def test_cfo_matches_crystals():
    sc = make_scenario(noise_floor_dbm=-200.0)
    air = Air(sc)
    for nid in ("bs", "ue1", "ue2"):
        air.join(nid)
    air.transmit("ue1", np.ones(5000, np.complex64), 0)
    air.request("bs", 5000)
    iq = air.collect("bs").iq[100:4900]
    measured_hz = np.angle(np.sum(iq[1:] * np.conj(iq[:-1]))) / (2 * np.pi) * sc.sample_rate_hz
    assert measured_hz == pytest.approx(sc.cfo_hz("ue1", "bs"), abs=1.0)
    assert sc.cfo_hz("ue1", "bs") == pytest.approx(3e-6 * 2.4e9)


def test_leaving_mid_burst_cuts_the_rest(rng):
    air = _air()
    air.transmit("ue1", _burst(rng, 4000), 0)
    air.request("ue1", 1000)  # ue1 promised silence... and its radio runs until sample 1000
    air.leave("ue1")
    air.request("bs", 4000)
    air.request("ue2", 4000)
    assert air.ready("bs")  # the departed node no longer holds the clock
    p = np.abs(air.collect("bs").iq) ** 2
    assert p[:1000].mean() > 100 * p[1100:].mean()


def test_loopback_radios_share_the_air(rng):
    air = Air(make_scenario())
    radios = {nid: LoopbackRadio(air, nid) for nid in ("bs", "ue1", "ue2")}
    for r in radios.values():
        r.configure(RADIO)
    burst = _burst(rng)
    assert radios["bs"].transmit(burst) == 0
    blocks = {nid: radios[nid].receive(2000) for nid in ("ue1", "ue2")}
    assert blocks["ue1"].start_sample == 0 and blocks["ue1"].end_sample == 2000
    for nid, blk in blocks.items():
        assert np.mean(np.abs(blk.iq[:800]) ** 2) > 10 * np.mean(np.abs(blk.iq[900:]) ** 2), nid
    with radios["bs"] as r:
        assert r.rx_lo == 2_400_000_000 and r.sample_rate == 2_500_000
    with pytest.raises(RadioError, match="closed"):
        radios["bs"].receive(10)
    with pytest.raises(ConfigError, match="configure the radio to match"):
        radios["ue1"].configure(RADIO.with_(sample_rate_hz=1e6))


def test_set_tx_power_scales_the_bursts_that_follow(rng):
    """The virtual radios apply a TX power exactly (no step, no range): 10 dB less is 10 dB less at the BS."""
    air = Air(make_scenario(noise_floor_dbm=-200.0))
    radios = {nid: LoopbackRadio(air, nid) for nid in ("bs", "ue1", "ue2")}
    for r in radios.values():
        r.configure(RADIO)
    burst, heard = _burst(rng), []
    for power_dbm in (RADIO.tx_power_dbm, RADIO.tx_power_dbm - 10.0):
        assert radios["ue1"].set_tx_power(power_dbm) == power_dbm == radios["ue1"].config.tx_power_dbm
        radios["ue1"].transmit(burst)
        radios["ue2"].receive(1000)
        heard.append(np.mean(np.abs(radios["bs"].receive(1000).iq[: burst.size]) ** 2))
        radios["ue1"].receive(1000)
    assert 10 * np.log10(heard[1] / heard[0]) == pytest.approx(-10.0, abs=0.01)


@pytest.mark.parametrize(
    "bad", [np.ones(4), np.ones((2, 3), np.complex64), np.array([np.nan + 0j]), np.zeros(0, np.complex64)]
)
def test_loopback_refuses_bad_bursts(bad):
    air = Air(make_scenario())
    r = LoopbackRadio(air, "bs")
    r.configure(RADIO)
    with pytest.raises(RadioError):
        r.transmit(bad)


def test_block_fading_varies_per_burst_and_repeats_with_the_seed(rng):
    def burst_powers():
        air = _air(fading=True, rms_delay_spread_samples=2.0, noise_floor_dbm=-200.0)
        burst = _burst(np.random.default_rng(5), 1000)
        for k in range(40):
            air.transmit("ue1", burst, k * 1200)
        air.request("bs", 40 * 1200)
        iq = air.collect("bs").iq
        return np.array([np.mean(np.abs(iq[k * 1200 + 50 : k * 1200 + 950]) ** 2) for k in range(40)])

    powers = burst_powers()
    np.testing.assert_array_equal(powers, burst_powers())
    assert powers.std() > 0.4 * powers.mean()  # Rayleigh: power spread about as large as its mean
    from testbed.radio.links import received_power_dbm

    mean_db = 10 * np.log10(powers.mean())
    assert mean_db == pytest.approx(received_power_dbm(make_scenario(), "ue1", "bs"), abs=2.5)


def _session(air, rng_seed=3):
    """bs and ue1 transmit, every node hears 6000 samples; returns what each heard (one radio each)."""
    radios = {nid: LoopbackRadio(air, nid) for nid in ("bs", "ue1", "ue2")}
    for r in radios.values():
        r.configure(RADIO)
    burst = _burst(np.random.default_rng(rng_seed), 1500)
    origin = radios["bs"].receive(500).end_sample
    radios["bs"].transmit(burst, origin + 100)
    radios["ue1"].transmit(burst, origin + 3000)
    heard = {nid: r.receive(6000) for nid, r in radios.items() if nid != "bs"}
    for r in radios.values():
        r.close()
    return heard


def test_a_session_after_everyone_left_repeats_the_first():
    air = Air(make_scenario(fading=True, rms_delay_spread_samples=2.0))
    first, second = _session(air), _session(air)
    for nid in first:
        assert first[nid].start_sample == second[nid].start_sample == 0  # a fresh air, not the old clock
        np.testing.assert_array_equal(first[nid].iq, second[nid].iq)  # same fading draws, same noise


def test_rejoining_node_starts_at_the_live_frontier():
    air = _air(wait_for_all_nodes=False)
    air.request("ue2", 9000)
    air.collect("ue2")  # ue2 heard up to 9000 ...
    air.leave("ue2")  # ... and left: its old clock says nothing about the air now
    air.request("bs", 2000)
    air.request("ue1", 3000)
    air.collect("bs")
    air.leave("ue1")  # left while waiting: its commit (3000) is no promise any more
    assert air.join("ue1") == 2000 and air.join("ue2") == 2000  # bs, the only live node, has heard [0, 2000)
    air.transmit("ue1", np.ones(100, np.complex64), 2000)  # the rejoined node can transmit at once
    air.request("bs", 1000)
    assert not air.ready("bs")  # and holds the clock again like any live node
    for nid in ("ue1", "ue2"):
        air.request(nid, 1000)
    assert air.ready("bs")


def test_wait_for_all_nodes_holds_again_in_a_new_session():
    air = _air()  # wait_for_all_nodes = true
    for nid in ("bs", "ue1", "ue2"):
        air.leave(nid)
    air.join("bs")
    air.request("bs", 100)
    assert not air.ready("bs")  # ue1 and ue2 have not joined this session yet


def test_burst_loss_drops_that_share_of_one_nodes_bursts_and_repeats():
    """NodeSpec.burst_loss 0.2 on ue1: about a fifth of its bursts never reach the BS (the others arrive whole),
    ue2's all do, and the same seed loses the same bursts."""
    nodes = [
        {"id": "bs", "position_m": [0.0, 0.0]},
        {"id": "ue1", "position_m": [20.0, 0.0], "burst_loss": 0.2},
        {"id": "ue2", "position_m": [0.0, 20.0]},
    ]

    def heard(src: str) -> list[bool]:
        air = _air(nodes=nodes, noise_floor_dbm=-200.0)
        for k in range(400):
            air.transmit(src, np.ones(50, np.complex64), at_sample=100 * k)
        air.request("bs", 40_000)
        iq = air.collect("bs").iq.reshape(400, 100)
        energy = np.sum(np.abs(iq[:, :50]) ** 2, axis=1)
        assert np.all((energy < 1e-6 * energy.max()) | (energy > 0.5 * energy.max()))  # whole bursts or none
        return list(energy > 0.5 * energy.max())

    lost = 1.0 - np.mean(heard("ue1"))
    assert 0.13 < lost < 0.27, lost  # 400 draws at 0.2: 3.5 sigma either side
    assert all(heard("ue2"))
    assert heard("ue1") == heard("ue1")
