import logging
import math

import pytest

from testbed.errors import PolicyError
from testbed.link.messages import ChannelReport
from testbed.mode import Mode
from testbed.policy.capability import CapabilityReport
from testbed.policy.decision import ModeDecision, UeChoice
from testbed.policy.grouping import GroupingConfig, UeObservation, group_ues, groups
from testbed.policy.profiles import default_profiles


def _cap(ue_id, samples_per_s):
    p = default_profiles().get("pi_4")
    return CapabilityReport(
        ue_id, samples_per_s, p.cpu_freq_max_hz, p.frequency_table, p.memory_bytes, 50.0, 1e-27, -80.0, 7.0
    )


def _ch(snr_db: float) -> ChannelReport:
    return ChannelReport.assumed(snr_db, 0.0)


def _obs(ue_id, samples_per_s, snr_db, decision=None):
    return UeObservation(ue_id, _cap(ue_id, samples_per_s), ChannelReport.assumed(snr_db, 0.0), decision)


# Threshold 1000 samples/s; good channel >= 15 dB at the UE's 7 dBm maximum, i.e. >= 8 dB at 0 dBm.
UES = [
    _obs("strong_poor", 2500.0, 2.0),
    _obs("strong_good", 2500.0, 20.0),
    _obs("weak_poor", 600.0, 2.0),
    _obs("weak_good", 600.0, 20.0),
]


def _modes(rule, observations=UES):
    return {a.ue_id: a.mode for a in group_ues(observations, GroupingConfig(rule, 1000.0, 15.0))}


def test_snr_threshold_variant_uses_capability_and_channel():
    assert _modes("joint_snr") == {
        "strong_poor": Mode.DISTRIBUTED,
        "strong_good": Mode.DISTRIBUTED,
        "weak_poor": Mode.CENTRALIZED_DECODER,
        "weak_good": Mode.CENTRALIZED_FULL,
    }


def test_joint_rule_follows_the_ues_own_decision():
    declined = ModeDecision("strong_poor", UeChoice.CENTRALIZED, "cannot upload its update")
    obs = [_obs("strong_poor", 2500.0, 2.0, declined)]
    (a,) = group_ues(obs, GroupingConfig("joint", 1000.0))
    assert a.mode is Mode.CENTRALIZED_DECODER and "cannot upload" in a.reason


def test_joint_rule_prices_weak_ues_and_ignores_the_snr_threshold():
    from testbed.policy.centralized_cost import CentralizedCost

    cheap_raw = CentralizedCost(60, raw_airtime_s=1.7, raw_energy_j=1.4, symbols_airtime_s_per_round=0.003,
                                symbols_energy_j_per_round=0.03)  # fmt: skip
    dear_raw = CentralizedCost(10, 1.7, 1.4, 0.003, 0.03)
    obs = [
        UeObservation("weak_poor_cheap", _cap("weak_poor_cheap", 600.0), _ch(2.0), None, cheap_raw),
        UeObservation("weak_good_dear", _cap("weak_good_dear", 600.0), _ch(20.0), None, dear_raw),
    ]
    a = group_ues(obs, GroupingConfig("joint", 1000.0, 15.0))
    assert [x.mode for x in a] == [Mode.CENTRALIZED_FULL, Mode.CENTRALIZED_DECODER]
    assert "raw data 1.7 s / 1.4 J <= symbols 0.18 s / 1.8 J over 60 rounds" in a[0].reason
    assert "raw data 1.7 s / 1.4 J > symbols 0.03 s / 0.3 J over 10 rounds" in a[1].reason


def test_ablation_by_capability_only():
    m = _modes("capability")
    assert m["weak_poor"] is m["weak_good"] is Mode.CENTRALIZED_FULL
    assert m["strong_poor"] is m["strong_good"] is Mode.DISTRIBUTED


def test_ablation_by_channel_only():
    m = _modes("channel")
    assert m["strong_poor"] is m["weak_poor"] is Mode.CENTRALIZED_DECODER
    assert m["strong_good"] is m["weak_good"] is Mode.DISTRIBUTED


def test_every_ue_gets_a_logged_reason(caplog):
    with caplog.at_level(logging.INFO, logger="testbed.policy.grouping"):
        assignments = group_ues(UES, GroupingConfig())
    assert all(a.reason for a in assignments)
    assert all(any(a.ue_id in r.getMessage() for r in caplog.records) for a in assignments)
    assert "no cost estimate" in assignments[2].reason  # the joint rule prices, it has no SNR threshold
    snr_rule = group_ues(UES, GroupingConfig("joint_snr"))
    assert "SNR 9.0 dB at 7.0 dBm < 15.0 dB" in snr_rule[2].reason


def test_invalid_or_missing_reports_fall_back_to_weak_and_poor():
    obs = [
        UeObservation("nan_cap", _cap("nan_cap", math.nan), ChannelReport.assumed(20.0, 0.0)),
        UeObservation("no_channel", _cap("no_channel", 600.0), None),
        UeObservation("nothing"),
    ]
    a = {x.ue_id: x for x in group_ues(obs, GroupingConfig("joint_snr"))}
    assert a["nan_cap"].mode is Mode.CENTRALIZED_FULL and "invalid capability report" in a["nan_cap"].reason
    assert a["no_channel"].mode is Mode.CENTRALIZED_DECODER and "no channel report" in a["no_channel"].reason
    assert a["nothing"].mode is Mode.CENTRALIZED_DECODER


def test_groups_lists_every_training_mode():
    g = groups(group_ues(UES, GroupingConfig("joint_snr")))
    assert g[Mode.DISTRIBUTED] == ["strong_poor", "strong_good"]
    assert g[Mode.CENTRALIZED_FULL] == ["weak_good"] and g[Mode.CENTRALIZED_DECODER] == ["weak_poor"]


@pytest.mark.parametrize(
    "kwargs",
    [{"rule": "random"}, {"capability_threshold_samples_per_s": 0.0}, {"good_channel_snr_db": math.nan},
     {"weak_mode": Mode.DISTRIBUTED}],
)  # fmt: skip
def test_bad_grouping_config_is_refused(kwargs):
    with pytest.raises(PolicyError):
        GroupingConfig(**kwargs)


def test_duplicate_ue_ids_are_refused():
    with pytest.raises(PolicyError, match="unique"):
        group_ues([UES[0], UES[0]], GroupingConfig())
