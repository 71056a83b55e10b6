"""The UE's choice from the first information: the threshold moves a UE across it, channel coefficients (not
the mean SNR) decide the channel rules, FIRST_INFO round-trips or is refused with a reason, and the BS's check
accepts exactly the choices the policy gives for the UE's own figures."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from testbed.control import protocol
from testbed.errors import PolicyError
from testbed.link.abstraction import report_effective_snr_db
from testbed.link.airtime import default_errors
from testbed.link.messages import ChannelReport
from testbed.mode import Mode
from testbed.policy.choice import Allocation, Choice, CostInputs, SentPolicy, capability_of, check, choose
from testbed.policy.grouping import GroupingConfig
from testbed.policy.wire import first_info_from_wire, first_info_to_wire, report_from_wire
from testbed.policy.work import codec_work_sizes

WIRE_REPORT = protocol.CapabilityReport(6e8, 1.5e9, 1e8, 3e5, 50.0, 7.0, 500, 2**30, 1.1e-27, -82.75)
REPORT = report_from_wire("ue-1", WIRE_REPORT)  # 5,000 samples/s at 1.5 GHz
INPUTS = CostInputs(codec_work_sizes(), 500, None)
ALLOCATION = Allocation(7.0, 50.0, 1.5e9)


def policy(rule: str, threshold: float, good_channel_snr_db: float = 15.0, revision: int = 1) -> SentPolicy:
    return SentPolicy(revision, GroupingConfig(rule, threshold, good_channel_snr_db), 1e3, None, 3)


@pytest.mark.parametrize("rule", ["joint_snr", "capability"])
def test_the_threshold_moves_a_ue_across_it(rule: str) -> None:
    cap = capability_of(REPORT)
    assert cap == pytest.approx(5000.0)
    below = choose(policy(rule, cap * 1.001), REPORT, 25.0, 7.0, INPUTS)  # just below the threshold
    above = choose(policy(rule, cap * 0.999), REPORT, 25.0, 7.0, INPUTS)  # just above it
    assert below.mode is Mode.CENTRALIZED_FULL and below.group == 2, below
    assert above.mode is Mode.DISTRIBUTED and above.group == 0, above
    assert "below" in below.reason or "<" in below.reason, below.reason


def _link(gains: np.ndarray, snr_db: float = 16.0) -> ChannelReport:
    coeffs = np.sqrt(gains / gains.mean())
    return ChannelReport(1, 0, 8, snr_db, 0.0, 0.0, 1.0, coeffs.tolist(), [0.0] * coeffs.size, tx_power_dbm=7.0)


def test_a_selective_link_of_the_same_mean_snr_is_grouped_by_its_effective_snr() -> None:
    flat = _link(np.ones(48))
    selective = _link(np.tile([1.9, 0.1], 24))  # the same mean |H|^2 and mean SNR: deep fades on half the tones
    errors = default_errors()
    eff_flat = report_effective_snr_db(errors, flat, "qpsk-1/2", 1024)
    eff_sel = report_effective_snr_db(errors, selective, "qpsk-1/2", 1024)
    assert eff_flat == pytest.approx(16.0, abs=1e-6)  # a flat channel maps to its own SNR
    assert eff_sel < 15.0 - 3.0, eff_sel  # several dB below: the grouping threshold (15 dB) lies between
    weak = 0.5 * capability_of(REPORT) * 4  # the threshold above this UE: it is weak
    on_flat = choose(policy("joint_snr", weak), REPORT, eff_flat, 7.0, INPUTS)
    on_sel = choose(policy("joint_snr", weak), REPORT, eff_sel, 7.0, INPUTS)
    assert (on_flat.mode, on_sel.mode) == (Mode.CENTRALIZED_FULL, Mode.CENTRALIZED_DECODER)
    by_channel = [choose(policy("channel", weak), REPORT, s, 7.0, INPUTS).mode for s in (eff_flat, eff_sel)]
    assert by_channel == [Mode.DISTRIBUTED, Mode.CENTRALIZED_DECODER]


def test_a_report_without_coefficients_maps_to_its_mean_snr() -> None:
    bare = ChannelReport(1, 0, 3, 12.5, None, 0.0, 1.0)
    assert report_effective_snr_db(default_errors(), bare, "qpsk-1/2", 1024) == 12.5


def test_first_info_round_trips_and_an_unknown_rule_mode_or_unit_is_refused_with_the_reason() -> None:
    sent = policy("joint", 1234.5, revision=7)
    msg = first_info_to_wire(sent, ALLOCATION, 11.25)
    back, allocation = first_info_from_wire(msg)
    assert back == sent and allocation == ALLOCATION and msg.uplink_snr_db == 11.25
    groups = [protocol.GroupMode(0, "distributed"), protocol.GroupMode(1, "semantic_magic")]
    cases = [
        (msgspec.structs.replace(msg, rule="genetic"), "grouping rule 'genetic' is unknown"),
        (msgspec.structs.replace(msg, capability_unit="flops"), "this UE measures samples_per_s"),
        (msgspec.structs.replace(msg, groups=groups), "names mode 'semantic_magic'"),
        (msgspec.structs.replace(msg, rule="fixed"), "without an assigned_mode"),
    ]
    for wrong, why in cases:
        with pytest.raises(PolicyError, match=why):
            first_info_from_wire(wrong)


def test_the_bs_accepts_exactly_the_choice_the_policy_gives_for_the_ues_figures() -> None:
    sent = policy("joint_snr", 2 * capability_of(REPORT))
    honest = choose(sent, REPORT, 9.0, 7.0, INPUTS)
    assert honest.mode is Mode.CENTRALIZED_DECODER

    def verdict(claimed: Choice, uplink: float | None = 9.0, downlink: float | None = None) -> str | None:
        return check(sent, REPORT, claimed, 7.0, INPUTS, uplink_snr_db=uplink, downlink_snr_db=downlink)

    assert verdict(honest) is None
    assert "gives centralized_decoder" in verdict(Choice(Mode.DISTRIBUTED, 0, honest.capability_samples_per_s,
                                                         9.0, ""))  # fmt: skip
    assert "CAPABILITY_REPORT" in verdict(Choice(honest.mode, honest.group, 9e9, 9.0, ""))
    assert "uplink" in verdict(Choice(honest.mode, honest.group, honest.capability_samples_per_s, 20.0, ""))
    by_downlink = choose(sent, REPORT, 9.4, 7.0, INPUTS)
    assert verdict(by_downlink, uplink=None, downlink=9.0) is None  # within the tolerance of its own report
    assert "off its CHANNEL_REPORT" in verdict(by_downlink, uplink=None, downlink=12.0)
    assert math.isclose(honest.capability_samples_per_s, 5000.0)
