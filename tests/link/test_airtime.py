"""The one airtime and MCS model: error-model plug-in, the chooser, exact bursts, repeats and the TDMA medium."""

import numpy as np
import pytest

from testbed.channel.multipath import Multipath
from testbed.errors import ConfigError, LinkError
from testbed.link.abstraction import PerTable
from testbed.link.airtime import (
    MCS_MARGIN_DB,
    LinkAirtime,
    McsPolicy,
    bits_per_subcarrier,
    channel_gain,
    default_errors,
    thresholds_from_per_sweep,
)
from testbed.link.tdma import cycle_schedule
from testbed.phy.layout import analog_burst_num_samples, burst_num_samples
from testbed.phy.mcs import CODED_MCS, MCS_TABLE
from testbed.phy.numerology import PhyConfig

PHY = PhyConfig()  # 2.5 MS/s, 48 data subcarriers


def _air(num_ues: int = 1, **kwargs) -> LinkAirtime:
    return LinkAirtime(PHY, num_ues, **kwargs)


def test_every_caller_gets_the_measured_per_table_checked_against_its_numerology():
    errors = default_errors()
    assert isinstance(errors, PerTable) and errors is default_errors(PhyConfig(sample_rate_hz=1e6))  # loaded once
    assert _air().errors is errors
    for mcs in CODED_MCS:  # the real receiver on AWGN sits within 0.5 dB of the ideal coded link's 10%-PER point
        assert abs(errors.snr_db_at_per(mcs, 0.1, 1000) - MCS_TABLE[mcs].ideal_snr_db_per_10pct) < 0.5
    with pytest.raises(ConfigError, match="per_table.json"):
        default_errors(PhyConfig(cp_len=32))  # another numerology: the shipped table does not describe it


IDEAL = {m: float(MCS_TABLE[m].ideal_snr_db_per_10pct) for m in CODED_MCS}  # reference thresholds, exact numbers


def test_adaptive_choice_respects_thresholds_and_the_one_margin():
    p = McsPolicy(thresholds_db=IDEAL)  # the reference table's thresholds
    assert MCS_MARGIN_DB == 3.0
    assert p.choose(None) == "bpsk-1/2"
    assert p.choose(-5.0) == "bpsk-1/2"
    assert p.choose(6.7) == "qpsk-1/2"  # 3.6 + 3 <= 6.7 < 6.1 + 3
    assert p.choose(9.1) == "qpsk-3/4"
    assert p.choose(21.2) == "64qam-3/4"
    assert p.choose(21.1) == "64qam-2/3"
    assert [p.choose(s + MCS_MARGIN_DB) for s in (12.6, 12.5)] == ["16qam-3/4", "16qam-1/2"]
    rates = [bits_per_subcarrier(p.choose(s)) for s in range(-5, 30)]
    assert rates == sorted(rates)  # monotone in SNR


def test_thresholds_come_from_the_error_model_at_the_frame_size():
    class Flat:  # any ErrorModel: every MCS crosses 10% PER at 5 dB plus 1 dB per rank, whatever the size
        def frame_error_rate(self, mcs, payload_bytes, snr_db):
            return 0.0

        def snr_db_at_per(self, mcs, per, payload_bytes):
            assert per == 0.1 and payload_bytes == 700
            return 5.0 + CODED_MCS.index(mcs)

    p = McsPolicy.from_errors(Flat(), 700)
    assert p.required_snr_db("bpsk-1/2") == 5.0 + MCS_MARGIN_DB
    assert p.choose(9.0) == "bpsk-3/4"  # its 6 dB + 3 dB margin; qpsk-1/2 (7 dB) needs 10 dB
    assert p.choose(9.99) == "bpsk-3/4" and p.choose(10.0) == "qpsk-1/2"
    air = _air(frame_payload_bytes=700, errors=Flat())
    assert air.mcs.thresholds_db == p.thresholds_db


def test_fixed_and_measured_curves():
    assert McsPolicy(fixed_mcs="qpsk-3/4").choose(40.0) == "qpsk-3/4"
    measured = McsPolicy(thresholds_db={"bpsk-1/2": 2.0, "16qam-1/2": 11.0})
    assert measured.choose(11.0 + MCS_MARGIN_DB) == "16qam-1/2"
    assert measured.choose(10.9 + MCS_MARGIN_DB) == "bpsk-1/2"
    with pytest.raises(LinkError, match="unknown MCS"):
        McsPolicy(fixed_mcs="256qam")


def test_thresholds_from_a_phy_ber_sweep():
    sweep = {"awgn": {"qpsk-1/2": {"snr_db_at_per_10pct": 4.1}, "64qam-3/4": {"snr_db_at_per_10pct": None},
                      "bpsk-uncoded": {"snr_db_at_per_10pct": 9.0}}}  # fmt: skip
    assert thresholds_from_per_sweep(sweep) == {"qpsk-1/2": 4.1}
    with pytest.raises(LinkError, match="no 'multipath' PER sweep"):
        thresholds_from_per_sweep(sweep, "multipath")
    with pytest.raises(LinkError, match="no coded MCS"):
        thresholds_from_per_sweep({"awgn": {"64qam-3/4": {"snr_db_at_per_10pct": None}}})


def test_on_air_time_is_the_exact_bursts_and_repeats_follow_the_error_model():
    air = _air(frame_payload_bytes=1000, analog_frame_symbols=480)
    expected = 2 * burst_num_samples(PHY, 1000, "64qam-3/4") + burst_num_samples(PHY, 500, "64qam-3/4")
    assert air.upload(2500, 60.0).on_air_s == pytest.approx(expected / PHY.sample_rate_hz, rel=1e-9)
    analog = 2 * analog_burst_num_samples(PHY, 480) + analog_burst_num_samples(PHY, 40)
    sent = air.upload(0, None, analog_symbols=1000)
    assert sent.on_air_s == pytest.approx(analog / PHY.sample_rate_hz) and sent.mcs is None
    assert air.upload(0, 10.0).elapsed_s == 0.0 == air.upload(0, 10.0).on_air_s
    snr = air.mcs.required_snr_db("qpsk-1/2") - MCS_MARGIN_DB  # exactly its 10%-PER point
    lossy = air.transfer(1000, "qpsk-1/2", snr)
    assert lossy.frames == pytest.approx(1 / 0.9)  # 1 / (1 - PER) transmissions
    assert lossy.on_air_s == pytest.approx(burst_num_samples(PHY, 1000, "qpsk-1/2") / PHY.sample_rate_hz / 0.9)
    with pytest.raises(ConfigError, match="loses"):
        air.upload(1000, -10.0)


def test_the_cycle_is_the_bs_slot_then_one_equal_slot_per_ue():
    sched = cycle_schedule(200_000, 80, [0, 5, 7], 10_000)
    assert [g.node_id for g in sched.slots] == [0, 5, 7]
    slot = (200_000 - 80 * 4) // 3  # the BS daemon's rule: guards before, between and after
    assert {g.length_samples for g in sched.slots} == {slot}
    assert sched.slots[0].start_sample == 80 and sched.slots[1].start_sample == 80 + slot + 80
    assert sched.window_samples <= 200_000


def test_a_medium_whose_slots_cannot_hold_one_frame_is_refused_with_the_numbers():
    frame = burst_num_samples(PHY, 1500, "bpsk-1/2")
    with pytest.raises(ConfigError, match=rf"tdma_cycle_samples=500000 .* 201 slots .* {frame}-sample frame"):
        _air(200, frame_payload_bytes=1500, tdma_cycle_samples=500_000)
    _air(10, frame_payload_bytes=1500, tdma_cycle_samples=500_000)  # the default scenario fits


def test_a_transfer_takes_whole_cycles_of_its_own_slot():
    air = _air(10, frame_payload_bytes=1500, tdma_cycle_samples=500_000, guard_samples=80)
    burst = burst_num_samples(PHY, 1500, "64qam-3/4")
    per_slot = (air.slot_samples + 80) // (burst + 80)
    sent = air.upload(per_slot * 1500, 40.0)
    assert sent.cycles == 1 and sent.elapsed_s == pytest.approx(air.cycle_s)
    assert air.upload(per_slot * 1500 + 1, 40.0).cycles == 2  # one byte more: the next cycle
    assert air.broadcast(per_slot * 1500, 40.0).elapsed_s == sent.elapsed_s  # the BS's slot is as long


@pytest.mark.parametrize("snr_db", [2.0, 7.0, 12.0, 17.0, 25.0])
def test_no_uplink_carries_more_bits_per_second_than_its_mcs_and_time_grows_with_the_ues(snr_db):
    payload = 127_016  # a model update of the default codec
    times = []
    for n in (10, 20, 50, 200):
        air = _air(n, tdma_cycle_samples=8_400_000)
        sent = air.upload(payload, snr_db)
        assert 8 * payload / sent.elapsed_s <= air.rate_bps(sent.mcs)
        assert 8 * payload / sent.on_air_s <= air.rate_bps(sent.mcs)
        assert sent.on_air_s <= sent.elapsed_s
        times.append(sent.elapsed_s)
    assert times == sorted(times) and times[-1] > times[0]


# --- frequency-selective links: the chooser and the errors on the EESM effective SNR ---------------------------
def _selective_gain(seed: int = 3) -> tuple[float, ...]:
    """One seeded draw of the hub's multipath profile (1 sample rms delay spread), scaled to mean gain 1."""
    taps = Multipath(1.0, np.random.default_rng(seed), block_fading=False).taps
    return channel_gain(PHY, taps)


def test_a_flat_gain_is_exactly_the_scalar_snr():
    air, flat = _air(), (1.0,) * PHY.num_data
    for snr in (2.0, 6.0, 11.0, 17.5, 25.0):
        assert air.choose(snr, flat) == air.choose(snr) == air.mcs.choose(snr)
        assert air.upload(50_000, snr, gain=None) == air.upload(50_000, snr)
        for mcs in CODED_MCS:
            assert air.effective_snr_db(mcs, snr, flat) == pytest.approx(snr, abs=1e-9)


def test_a_selective_link_at_the_same_mean_snr_is_slower_and_never_faster():
    air, gain = _air(), _selective_gain()
    assert sum(gain) / len(gain) == pytest.approx(1.0)  # mean SNR unchanged: only the selectivity is added
    slower = 0
    for snr in [x / 2 for x in range(6, 50)]:
        for mcs in CODED_MCS:
            assert air.effective_snr_db(mcs, snr, gain) < snr  # EESM of a faded channel: below its mean
        flat_mcs, sel_mcs = air.choose(snr), air.choose(snr, gain)
        assert bits_per_subcarrier(sel_mcs) <= bits_per_subcarrier(flat_mcs)
        slower += sel_mcs != flat_mcs
        flat, sel = air.upload(200_000, snr), air.upload(200_000, snr, gain=gain)
        assert sel.on_air_s >= flat.on_air_s and sel.elapsed_s >= flat.elapsed_s and sel.mcs == sel_mcs
    assert slower > 0  # this draw costs at least one MCS step somewhere in the range


def test_the_effective_snr_is_taken_at_each_frame_length():
    """The chooser asks EESM at the link's frame size, a transfer's full frames at theirs and its last, shorter
    frame at its own (the table's beta depends on the length). Fails on the old airtime: one length-free
    effective SNR per transfer."""

    class Recording:  # an ErrorModel that records the lengths it is asked about
        def __init__(self) -> None:
            self.lengths: list[int] = []

        def frame_error_rate(self, mcs, payload_bytes, snr_db):
            return 0.0

        def snr_db_at_per(self, mcs, per, payload_bytes):
            return 5.0 + CODED_MCS.index(mcs)

        def effective_snr_db(self, mcs, subcarrier_snr, payload_bytes):
            self.lengths.append(payload_bytes)
            return float(10 * np.log10(np.mean(subcarrier_snr)))

    errors = Recording()
    air = _air(frame_payload_bytes=1000, errors=errors)
    air.choose(20.0, _selective_gain())
    assert set(errors.lengths) == {1000}
    errors.lengths.clear()
    air.transfer(2500, "qpsk-1/2", 20.0, gain=_selective_gain())
    assert errors.lengths == [1000, 500]


def test_a_broadcast_is_charged_at_its_worst_receiver_channel_included():
    air, gain = _air(), _selective_gain()
    flat_only = air.broadcast(100_000, 14.0)
    assert flat_only == air.transfer(100_000, air.choose(14.0), 14.0)  # as before: the least SNR
    # a selective receiver at 15 dB mean whose channel is worse than a flat 14 dB one sets the MCS and the cost
    mcs = air.choose(15.0, gain)
    assert bits_per_subcarrier(mcs) < bits_per_subcarrier(air.choose(14.0))
    both = air.broadcast(100_000, 14.0, [(15.0, gain)])
    assert both.mcs == mcs and both.elapsed_s > flat_only.elapsed_s
    assert both == air.transfer(100_000, mcs, 15.0, gain=gain)
    with pytest.raises(LinkError, match="per data subcarrier"):
        air.upload(1000, 10.0, gain=(1.0, 1.0))
