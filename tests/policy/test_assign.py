import dataclasses
import math

import pytest

from testbed.errors import PolicyError
from testbed.learning.assignment import UeProfile
from testbed.mode import Mode
from testbed.policy.assign import PolicyAssignment, PolicyConfig
from testbed.policy.grouping import GroupingConfig
from testbed.policy.work import WorkSizes

WORK = WorkSizes(
    samples_per_round=160, update_bytes=127_016, symbols_per_sample=16, raw_bytes_per_sample=785, encoder_fraction=0.27
)
# Like the learning layer's default scenario: tx_power_dbm is the nominal (and maximum) draw.
UES = [
    UeProfile("weak_poor", True, 5.0, 29.0, 1.0e9, 1.0e9, 1.32e6, 1.4e-27, "pi_zero_2"),
    UeProfile("weak_good", True, 25.0, 29.0, 1.2e9, 1.2e9, 1.32e6, 1.33e-27, "pi_3"),
    UeProfile("pi4", False, 14.0, 29.0, 1.5e9, 1.5e9, 5.58e5, 1.1e-27, "pi_4"),
    UeProfile("pi5", False, 22.0, 29.0, 2.4e9, 2.4e9, 4.04e5, 3.6e-28, "pi_5"),
]


def _policy(rule="joint_snr", **kwargs):
    return PolicyAssignment(PolicyConfig(GroupingConfig(rule, 1500.0, 15.0), WORK, **kwargs))


def _cost_aware(horizon_rounds, samples=400):
    from testbed.experiment.scenario import load_scenario

    cfg = PolicyConfig(GroupingConfig("joint", 1500.0), WORK, horizon_rounds=horizon_rounds)
    air = load_scenario().airtime()
    return PolicyAssignment(cfg, airtime=air, local_samples={u.name: samples for u in UES})


def test_cost_aware_grouping_sends_raw_data_when_the_horizon_pays_for_them():
    # weak_poor (Pi Zero 2 at 5 dB, 400 images): raw data pay off after 84 rounds (test_centralized_cost.py)
    assert [x.mode for x in _cost_aware(100).assign(0, UES)][:2] == [Mode.CENTRALIZED_FULL] * 2
    assert _cost_aware(60).assign(0, UES)[0].mode is Mode.CENTRALIZED_DECODER
    late = _cost_aware(100)  # first asked in round 30: 70 rounds remain, too few for weak_poor
    assert late.assign(30, UES)[0].mode is Mode.CENTRALIZED_DECODER
    early = _cost_aware(100)
    assert early.assign(0, UES)[0].mode is early.assign(99, UES)[0].mode is Mode.CENTRALIZED_FULL  # kept
    assert "over 100 rounds" in early.plan(UES).groups[0].reason


def test_cost_aware_grouping_without_its_inputs_sends_symbols():
    a = _policy(rule="joint").assign(0, UES)
    assert [x.mode for x in a][:2] == [Mode.CENTRALIZED_DECODER] * 2
    assert "no cost estimate" in _policy(rule="joint").plan(UES).groups[1].reason


def test_assigns_modes_frequencies_and_powers_per_ue():
    a = _policy(deadline_factor=1.0).assign(0, UES)
    assert [x.mode for x in a] == [Mode.CENTRALIZED_DECODER, Mode.CENTRALIZED_FULL, Mode.DISTRIBUTED, Mode.DISTRIBUTED]
    assert a[2].cpu_freq_hz == 1.5e9  # the critical UE keeps its maximum clock
    assert a[3].cpu_freq_hz < 2.4e9 and a[3].cpu_freq_hz % 100e6 == 0  # the Pi 5 has slack: a lower step
    assert all(x.tx_power_dbm == 29.0 for x in a)  # no power control by default


def test_power_control_lowers_power_where_the_link_has_margin():
    a = _policy(tx_power_control_db=30.0).assign(0, UES)
    assert a[3].tx_power_dbm < 29.0


def test_without_allocation_every_ue_runs_nominal():
    plain = _policy(allocate=False).assign(0, UES)
    assert [x.mode for x in plain] == [x.mode for x in _policy().assign(0, UES)]
    assert [(x.cpu_freq_hz, x.tx_power_dbm) for x in plain] == [(u.cpu_freq_hz, u.tx_power_dbm) for u in UES]


def test_the_plan_is_computed_once_and_says_why():
    policy = _policy()
    plan = policy.plan(UES)
    assert policy.plan(list(UES)) is plan
    assert plan.deadline_s > 0 and all(g.reason for g in plan.groups)


def test_unlisted_board_gets_a_continuous_range():
    odd = UeProfile("odd", False, 20.0, 29.0, 1.8e9, 1.8e9, 4e5, 5e-28)
    (a,) = _policy().assign(0, [odd])
    assert 0.4 * 1.8e9 <= a.cpu_freq_hz <= 1.8e9


def test_a_longer_deadline_factor_stretches_the_round_and_saves_energy():
    fastest, relaxed = _policy(deadline_factor=1.0).plan(UES), _policy(deadline_factor=1.5).plan(UES)
    assert relaxed.deadline_s == pytest.approx(1.5 * fastest.deadline_s)
    assert [x.mode for x in relaxed.assignments] == [x.mode for x in fastest.assignments]
    pi4_fast, pi4_relaxed = fastest.assignments[2], relaxed.assignments[2]
    assert pi4_fast.cpu_freq_hz == 1.5e9 and pi4_relaxed.cpu_freq_hz < 1.5e9  # the critical UE may now slow down


def test_an_infeasible_configured_deadline_is_a_policy_error():
    with pytest.raises(PolicyError, match="cannot meet"):
        _policy(deadline_s=1e-3).assign(0, UES)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"deadline_s": 0.0},
        {"deadline_s": math.nan},
        {"deadline_factor": 0.99},
        {"deadline_factor": math.inf},
        {"tx_power_control_db": -1.0},
        {"horizon_rounds": 0},
    ],
)
def test_bad_policy_config_is_refused(kwargs):
    with pytest.raises(PolicyError):
        _policy(**kwargs)


def test_idle_has_no_work():
    with pytest.raises(PolicyError):
        WORK.for_mode(Mode.IDLE)


def test_work_sizes_follow_the_learning_codec():
    from testbed.learning.codec_config import CodecConfig
    from testbed.learning.modes import LocalTraining
    from testbed.policy.work import codec_work_sizes

    w = codec_work_sizes(CodecConfig(num_symbols=8), LocalTraining(steps=2, batch_size=10))
    assert w.samples_per_round == 20 and w.symbols_per_sample == 8 and w.raw_bytes_per_sample == 28 * 28 + 1
    assert w.update_bytes % 4 == 0 and 0 < w.encoder_fraction < 1
    assert w.for_mode(Mode.CENTRALIZED_DECODER).upload.num_symbols == 160
    assert w.for_mode(Mode.CENTRALIZED_FULL).upload.payload_bytes == 0  # raw data went up in round 0
    streaming = codec_work_sizes(CodecConfig(), LocalTraining(), raw_block_samples=50)
    assert streaming.for_mode(Mode.CENTRALIZED_FULL).upload.payload_bytes == 50 * 785


def test_policy_variants_are_the_ablations():
    from testbed.policy.assign import POLICY_VARIANTS, policy_variants

    variants = policy_variants(WORK, 1500.0)
    assert set(variants) == set(POLICY_VARIANTS)
    modes = {name: [a.mode for a in p.assign(0, UES)] for name, p in variants.items()}
    assert modes["policy"] == modes["policy_no_alloc"]
    assert modes["policy_by_capability"][:2] == [Mode.CENTRALIZED_FULL, Mode.CENTRALIZED_FULL]
    assert modes["policy_by_channel"][0] is Mode.CENTRALIZED_DECODER
    assert modes["policy_snr_threshold"][:2] == [Mode.CENTRALIZED_DECODER, Mode.CENTRALIZED_FULL]  # 5 / 25 dB


def test_relative_threshold_follows_the_median_ue_whatever_the_model_size():
    def groups(ues):
        policy = PolicyAssignment(
            PolicyConfig(GroupingConfig("joint_snr", 1.0), WORK, threshold_fraction_of_median=0.5)
        )  # the absolute 1.0 samples/s is replaced by half the median
        setup = policy.round_work(ues)
        return [g.mode for g in setup.groups], setup.threshold_samples_per_s

    small_modes, small_threshold = groups(UES)
    big = [dataclasses.replace(u, cycles_per_sample=10 * u.cycles_per_sample) for u in UES]
    big_modes, big_threshold = groups(big)
    assert small_modes == big_modes
    assert small_modes[2:] == [Mode.DISTRIBUTED, Mode.DISTRIBUTED]
    assert big_threshold == pytest.approx(small_threshold / 10)
    # median of (758, 909, 2688, 5941) samples/s is 1798; half of it 899: the Pi 3 class sits just above it
    assert small_threshold == pytest.approx(0.5 * (1.2e9 / 1.32e6 + 1.5e9 / 5.58e5) / 2)
