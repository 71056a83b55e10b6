"""First information and the training step without radios: ASSIGN orders from the config and from the policy,
the UE's capability report, CPU frequency and energy account, and the BS refusing malformed uploads while
the rounds go on with the others."""

from __future__ import annotations

import itertools
import logging
import math

import msgspec
import numpy as np
import pytest
import torch

from testbed.control import protocol
from testbed.errors import ConfigError, PolicyError
from testbed.learning import wire
from testbed.learning.codec_config import compute_fractions
from testbed.learning.guards import Update
from testbed.link.analog import ANALOG_MCS
from testbed.link.framelink import Heard
from testbed.link.messages import SlotGrant
from testbed.mode import Mode
from testbed.node import first_info
from testbed.node.assigners import UeView, config_orders, daemon_policy_assigner
from testbed.node.config import BsConfig, UeConfig, parse_config
from testbed.node.encoder_ue import EncoderUe
from testbed.node.first_info import UeFirstInfo
from testbed.node.step import UeLink
from testbed.node.training import LearningBs, LearningUe
from testbed.policy.choice import Allocation, SentPolicy, capability_of
from testbed.policy.cpufreq import FrequencyTable, SimulatedCpuFreq, SysfsCpuFreq
from testbed.policy.grouping import GroupingConfig
from testbed.policy.profiles import default_profiles
from testbed.policy.wire import first_info_to_wire

TRAINING = b"""
[training]
dataset = "digits"
num_symbols = 4
encoder_channels = [4, 8]
decoder_hidden = 16
local_steps = 2
batch_size = 16
raw_block_samples = 20
num_shards = 3
"""
BS = parse_config(b'[bs]\nues = { "ue-1" = 1, "ue-2" = 2, "ue-3" = 3 }\n' + TRAINING, BsConfig)


def _ue_config(i: int) -> UeConfig:
    return parse_config(f'[ue]\nue_id = "ue-{i}"\nnode_id = {i}\nshard = {i - 1}\n'.encode() + TRAINING, UeConfig)


def _assign(mode: str, cpu_freq_hz: float = 1.5e9, budget_j: float = 100.0) -> protocol.Assign:
    return protocol.Assign(mode, 0, 0.0, budget_j, cpu_freq_hz, "qpsk-1/2", SlotGrant(1, 0, 1000))


def _capability(cycles_per_sample: float, f_max_hz: float) -> protocol.CapabilityReport:
    return protocol.CapabilityReport(6e8, f_max_hz, 1e8, cycles_per_sample, 50.0, 7.0, 500, 2**30, 1.1e-27, -82.75)


def test_config_orders_take_the_per_ue_mode() -> None:
    assign = msgspec.structs.replace(BS.assign, modes={"ue-2": Mode.CENTRALIZED_DECODER})
    orders = config_orders(assign, ["ue-1", "ue-2"])
    assert orders["ue-1"].mode is Mode.DISTRIBUTED and orders["ue-1"].group == 0
    assert orders["ue-2"].mode is Mode.CENTRALIZED_DECODER and orders["ue-2"].group == 1
    assert orders["ue-2"].cpu_freq_hz == assign.cpu_freq_hz and orders["ue-2"].energy_budget_j == 1000.0


def test_policy_sends_the_slow_ue_to_a_centralized_group_and_slows_the_clock_only_to_a_step() -> None:
    assign = msgspec.structs.replace(BS.assign, policy="joint")
    bs = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    views = [
        UeView("ue-1", _capability(3e5, 1.5e9), 25.0),  # Pi 4 class: 5,000 samples/s
        UeView("ue-2", _capability(3e5, 1.5e9), 25.0),
        UeView("ue-3", _capability(1e7, 1.0e9), 8.0),  # Pi Zero 2 class: 100 samples/s, poor channel
    ]
    orders = daemon_policy_assigner(assign, BS.training, bs.codec).orders(views, None)
    assert orders["ue-1"].mode is orders["ue-2"].mode is Mode.DISTRIBUTED
    assert orders["ue-3"].mode is Mode.CENTRALIZED_DECODER  # weak on a poor channel: symbols
    for o in orders.values():
        assert 6e8 <= o.cpu_freq_hz <= 1.5e9 and round(o.cpu_freq_hz / 1e8) * 1e8 == pytest.approx(o.cpu_freq_hz)
        assert o.energy_budget_j == 50.0  # the UE's reported budget


def test_the_bs_plans_with_the_ues_whole_capability_report() -> None:
    """Minimum clock, step, kappa and budget come from CAPABILITY_REPORT, not from a board table: a 1.5 GHz UE
    whose cpufreq runs 900-1500 MHz in 300 MHz steps is never ordered to 600-800 MHz (a Pi 4's 100 MHz table,
    which the BS took from profiles.toml by maximum clock before protocol 2)."""
    assign = msgspec.structs.replace(BS.assign, policy="joint", deadline_factor=4.0)
    bs = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    coarse = msgspec.structs.replace(_capability(3e5, 1.5e9), cpu_freq_min_hz=9e8, cpu_freq_step_hz=3e8)
    views = [UeView("ue-1", coarse, 25.0), UeView("ue-2", _capability(3e5, 1.5e9), 8.0)]
    policy = daemon_policy_assigner(assign, BS.training, bs.codec)
    orders = policy.orders(views, None)
    assert orders["ue-1"].cpu_freq_hz in (9e8, 1.2e9, 1.5e9), orders["ue-1"]
    kept = policy.policy.reports["ue-1"]
    assert kept.frequency_table.steps_hz == (9e8, 1.2e9, 1.5e9) and kept.available_memory_bytes == 2**30
    assert (kept.kappa_j_per_cycle_hz2, kept.energy_budget_j, kept.min_tx_power_dbm) == (1.1e-27, 50.0, -82.75)


def test_policy_deadline_factor_lets_the_critical_ue_slow_down() -> None:
    bs = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    views = [UeView("ue-1", _capability(3e5, 1.5e9), 12.0), UeView("ue-2", _capability(3e5, 1.5e9), 25.0)]

    def clocks(factor: float) -> list[float]:
        assign = msgspec.structs.replace(BS.assign, policy="joint", deadline_factor=factor)
        orders = daemon_policy_assigner(assign, BS.training, bs.codec).orders(views, None)
        return [o.cpu_freq_hz for o in orders.values()]

    assert clocks(1.0)[0] == 1.5e9  # the UE on the poorer link sets the shortest round: no slack
    assert clocks(2.0)[0] < 1.5e9 and clocks(2.0)[1] <= clocks(1.0)[1]
    with pytest.raises(msgspec.ValidationError, match="deadline_factor"):
        msgspec.convert({"deadline_factor": 0.5}, type(BS.assign))


def _weak_ue_orders(caplog: pytest.LogCaptureFixture, **priced: object) -> tuple[dict, str]:
    """Orders for two Pi 4 class UEs and a weak one on a poor channel holding 20 samples; ue-3's logged reason."""
    assign = msgspec.structs.replace(BS.assign, policy="joint")
    bs = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    weak = msgspec.structs.replace(_capability(1e7, 1.0e9), num_local_samples=20)
    views = [UeView("ue-1", _capability(3e5, 1.5e9), 25.0), UeView("ue-2", _capability(3e5, 1.5e9), 25.0)]
    views.append(UeView("ue-3", weak, 8.0))
    kwargs = {"airtime": bs.airtime, **priced} if priced else {}
    with caplog.at_level(logging.INFO, logger="testbed.node.assigners"):
        orders = daemon_policy_assigner(assign, BS.training, bs.codec, **kwargs).orders(views, None)
    reason = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("policy: ue-3"))
    return orders, reason


def test_policy_prices_a_weak_ue_raw_upload_over_the_horizon(caplog: pytest.LogCaptureFixture) -> None:
    orders, reason = _weak_ue_orders(caplog, horizon_rounds=40)
    assert orders["ue-1"].mode is orders["ue-2"].mode is Mode.DISTRIBUTED
    assert orders["ue-3"].mode is Mode.CENTRALIZED_FULL  # 20 raw samples once cost less than symbols 40 times
    assert "raw data" in reason and "<= symbols" in reason and "over 40 rounds" in reason, reason


def test_policy_without_airtime_or_horizon_falls_back_to_symbols(caplog: pytest.LogCaptureFixture) -> None:
    orders, reason = _weak_ue_orders(caplog)
    assert orders["ue-3"].mode is Mode.CENTRALIZED_DECODER and "no cost estimate" in reason, reason


def test_policy_takes_sample_counts_from_the_partition_until_a_ue_reports(caplog: pytest.LogCaptureFixture) -> None:
    assign = msgspec.structs.replace(BS.assign, policy="joint")
    bs = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    policy = daemon_policy_assigner(
        assign, BS.training, bs.codec, airtime=bs.airtime, horizon_rounds=40, shard_samples=bs.runner.registered
    )
    assert policy.policy.local_samples == bs.runner.registered and set(bs.runner.registered) == {"ue-1", "ue-2", "ue-3"}
    reported = msgspec.structs.replace(_capability(3e5, 1.5e9), num_local_samples=7)
    policy.orders([UeView("ue-1", reported, 25.0)], None)
    assert policy.policy.local_samples["ue-1"] == 7  # the report wins over the partition


def test_ue_reports_capability_applies_the_clock_and_charges_energy() -> None:
    cfg = _ue_config(1)
    ue = LearningUe.for_shard(cfg.training, "ue-1", 0)
    cpufreq = SimulatedCpuFreq(FrequencyTable(6e8, 1.5e9, tuple(i * 1e8 for i in range(6, 16))))
    readings = itertools.count(step=0.1)  # every timed pass "takes" 0.1 s: 32 / 0.1 = 320 samples/s on the host
    info = UeFirstInfo(cfg.ue, ue.model, ue.num_samples, cpufreq, clock=lambda: next(readings))
    report = info.capability()
    assert report.num_local_samples == ue.num_samples and report.cpu_freq_step_hz == pytest.approx(1e8)
    pi4_samples_per_s = 320 * default_profiles().speed_scale("pi_4")  # at f_max: the board starts there
    assert report.cycles_per_sample == pytest.approx(1.5e9 / pi4_samples_per_s)
    assert report.cycles_per_sample > 0 and report.energy_available_j == 60.0  # profiles.toml pi_4
    assert info.apply(_assign("distributed", cpu_freq_hz=1.23e9)) == pytest.approx(1.3e9)  # snapped up
    assert info.apply(_assign("distributed", cpu_freq_hz=5e9)) == pytest.approx(1.3e9)  # refused, kept
    one = info.account(32, 1.0, 0.1, _assign("distributed", budget_j=1e-9), 0.0)
    draw = 10 ** (22.0 / 10)  # the Pluto draws 22 dB above its RF output while transmitting (profiles.toml)
    assert one["compute_energy_j"] > 0 and one["radio_energy_j"] == pytest.approx(1e-3 * draw * 0.1)
    assert one["within_budget"] is False
    quiet = UeFirstInfo(cfg.ue, ue.model, ue.num_samples, cpufreq).account(32, 1.0, 0.1, _assign("distributed"), -10.0)
    assert quiet["radio_energy_j"] == pytest.approx(1e-4 * draw * 0.1)  # the applied power, not ASSIGN's 0 dBm
    own = msgspec.structs.replace(cfg.ue, tx_draw_offset_db=29.0)  # a UE's own figure beats the board table's
    assert UeFirstInfo(own, ue.model, ue.num_samples, cpufreq).account(32, 1.0, 0.1, _assign("distributed"),
                                                                      0.0)["radio_energy_j"] == pytest.approx(
        10 ** (29.0 / 10) * 1e-3 * 0.1
    )  # fmt: skip
    two = info.account(32, 0.5, 0.0, _assign("distributed"), 0.0)
    assert two["compute_energy_j"] == pytest.approx(one["compute_energy_j"] / 2) and two["within_budget"]
    assert two["energy_spent_j"] == pytest.approx(
        one["compute_energy_j"] + one["radio_energy_j"] + two["compute_energy_j"]
    )


def test_ue_on_a_host_without_cpufreq_names_the_config_field(tmp_path, monkeypatch) -> None:
    """``simulated_board = false`` where the kernel has no cpufreq: a config error (exit 2) naming the field to
    set, not a hint at a Python class (a PolicyError, exit 1, on the old code)."""
    monkeypatch.setattr(first_info, "SysfsCpuFreq", lambda: SysfsCpuFreq(tmp_path))  # an empty sysfs tree
    cfg = _ue_config(1)
    board = msgspec.structs.replace(cfg.ue, simulated_board=False)
    ue = LearningUe.for_shard(cfg.training, "ue-1", 0)
    with pytest.raises(ConfigError, match=r"simulated_board = true in \[ue\]") as caught:
        UeFirstInfo(board, ue.model, ue.num_samples)
    assert caught.value.exit_status == 2 and "SimulatedCpuFreq" not in str(caught.value)


def _heard(ues: dict[str, LearningUe], noise_var: float = 1e-3) -> dict[str, dict[int, Heard]]:
    """Each UE's latest analog frames as a receiver reports them: at unit mean power, with their noise."""
    return {ue: {f: Heard(None, 0, ANALOG_MCS, 30.0, 0.0, symbols=x / np.sqrt(np.mean(np.abs(x) ** 2)),
                          noise_var=noise_var) for f, x in enumerate(u.last_analog)}
            for ue, u in ues.items()}  # fmt: skip


def test_bs_refuses_bad_uploads_and_trains_on_the_rest() -> None:
    bs = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    ues = {f"ue-{i}": LearningUe.for_shard(BS.training, f"ue-{i}", i - 1) for i in (1, 2, 3)}
    modes = {"ue-1": Mode.DISTRIBUTED, "ue-2": Mode.CENTRALIZED_DECODER, "ue-3": Mode.CENTRALIZED_FULL}
    orders = config_orders(msgspec.structs.replace(BS.assign, modes=modes), list(ues))
    before = [p.detach().clone() for p in bs.model.parameters()]
    losses = []
    for r in range(1, 4):
        model = bs.model_bytes(r, orders, [])
        uploads = {ue: u.upload_bytes(r, model, _assign(modes[ue])) for ue, u in ues.items()}
        if r == 2:  # a poisoned update (the guards refuse it) and bytes that are no message (the wire does)
            uploads["ue-1"] = wire.encode_update(_nan_update(bs), bs.runner.round_index)
            uploads["ue-2"] = b"\x93garbage"
        out = bs.consume(r, uploads, _heard(ues))["training"]
        losses.append(out["loss"])
        assert out["model_finite"] and math.isfinite(out["loss"]) and 0 <= out["accuracy"] <= 1
        if r == 2:
            assert set(out["refused"]) == {"ue-1", "ue-2"}, out["refused"]
            assert "NaN" in out["refused"]["ue-1"] and "not a valid SymbolsMsg" in out["refused"]["ue-2"]
        else:
            assert out["refused"] == {} and out["late"] == []
    assert bs.runner.raw_uploaded[2] == 60  # three blocks of 20 raw samples from ue-3
    assert all(not torch.equal(b, p) for b, p in zip(before, bs.model.parameters(), strict=True))


def test_a_ue_trains_through_its_own_measured_link_snr() -> None:
    """The configured [training] SNR (20 dB unset) holds only until the UE has measured its link; then every
    local step simulates the measured SNR (fails on the old code: every UE trained at the fixed 20 dB)."""
    bs = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    ue = LearningUe.for_shard(BS.training, "ue-1", 0)
    model = bs.model_bytes(1, config_orders(BS.assign, list(BS.bs.ues)), [])
    ue.upload_bytes(1, model, _assign("distributed"), link=UeLink())
    assert ue.local.snr_db == 20.0 and ue.local.channel(0.0).noise_var == pytest.approx(0.01)
    ue.upload_bytes(1, model, _assign("distributed"), link=UeLink(snr_db=4.0))
    assert ue.local.channel(0.0).noise_var == pytest.approx(10**-0.4)
    ue.upload_bytes(1, model, _assign("distributed"), link=UeLink())  # no new measurement: the last one stays
    assert ue.local.snr_db == 4.0


def test_a_joint_update_that_fails_part_way_leaves_the_last_good_model(monkeypatch: pytest.MonkeyPatch) -> None:
    bs = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    ue = LearningUe.for_shard(BS.training, "ue-1", 0)
    orders = config_orders(BS.assign, ["ue-1", "ue-2", "ue-3"])  # all distributed
    model = bs.model_bytes(1, orders, [])
    uploads = {"ue-1": ue.upload_bytes(1, model, _assign("distributed"))}
    before = {n: p.detach().clone() for n, p in bs.model.named_parameters()}
    finish = bs.runner.finish_round

    def half_then_fail(*args, **kwargs):
        finish(*args, **kwargs)  # the model and the optimizer's momentum have moved ...
        raise RuntimeError("disk full")  # ... then the step dies

    monkeypatch.setattr(bs.runner, "finish_round", half_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        bs.consume(1, uploads)
    assert all(torch.equal(before[n], p) for n, p in bs.model.named_parameters())
    assert not bs.runner.optimizer.state_dict()["state"]  # no momentum left from the failed step


def _nan_update(bs: LearningBs) -> Update:
    tensors = {n: torch.full_like(p, math.nan) for n, p in bs.model.named_parameters()}
    return Update("ue-1", tensors, 10)


def test_the_bs_clock_policy_and_allocation_share_one_airtime_model() -> None:
    """The BS's virtual clock is the link's model of its [air], and the policy allocates on that same model."""
    bs = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    air = bs.airtime
    assert (air.num_ues, air.cycle_samples, air.frame_payload_bytes) == (
        len(BS.bs.ues), BS.air.tdma_cycle_samples, BS.air.frame_payload_bytes
    )  # fmt: skip
    assign = msgspec.structs.replace(BS.assign, policy="joint")
    orders = daemon_policy_assigner(assign, BS.training, bs.codec, airtime=air)
    assert orders.policy.cfg.allocation.airtime is air
    assert air.mcs.thresholds_db == BS.air.mcs_policy.thresholds_db  # the BS's MCS chooser is the model's


def test_a_restarted_bs_continues_with_the_same_model_and_raw_samples() -> None:
    """Two rounds with a raw upload, the state through a checkpoint file, a fresh LearningBs: round 3 from the
    restored BS equals round 3 of the one that never stopped (same model, momentum, raw store, generator)."""
    import io

    ues = {f"ue-{i}": LearningUe.for_shard(BS.training, f"ue-{i}", i - 1) for i in (1, 2, 3)}
    modes = {"ue-1": Mode.DISTRIBUTED, "ue-2": Mode.DISTRIBUTED, "ue-3": Mode.CENTRALIZED_FULL}
    orders = config_orders(msgspec.structs.replace(BS.assign, modes=modes), list(ues))

    def run(bs: LearningBs, r: int) -> dict:
        model = bs.model_bytes(r, orders, [])
        return bs.consume(r, {ue: u.upload_bytes(r, model, _assign(modes[ue])) for ue, u in ues.items()}, _heard(ues))

    straight = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    for r in (1, 2):
        run(straight, r)
    buf = io.BytesIO()
    torch.save(straight.state_dict(), buf)  # what the daemon's checkpoint holds
    restored = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    restored.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    assert restored.runner.raw_uploaded == straight.runner.raw_uploaded and restored.runner.raw_uploaded[2] > 0
    model = straight.model_bytes(3, orders, [])
    assert restored.model_bytes(3, orders, []) == model  # the same broadcast
    uploads = {ue: u.upload_bytes(3, model, _assign(modes[ue])) for ue, u in ues.items()}
    assert straight.consume(3, uploads) == restored.consume(3, uploads)
    for p, q in zip(straight.model.parameters(), restored.model.parameters(), strict=True):
        assert torch.equal(p, q)


def _measured_ue() -> UeFirstInfo:
    """A UE (simulated Pi 4) that measured itself on a deterministic clock: 320 samples/s on the host."""
    cfg = _ue_config(1)
    ue = LearningUe.for_shard(cfg.training, "ue-1", 0)
    readings = itertools.count(step=0.1)
    info = UeFirstInfo(cfg.ue, ue.model, ue.num_samples, clock=lambda: next(readings))
    info.capability()
    return info


def _first_info(threshold: float, **fields: object) -> protocol.FirstInfo:
    sent = SentPolicy(1, GroupingConfig("joint_snr", threshold), 1e3, None, 3)
    return msgspec.structs.replace(first_info_to_wire(sent, Allocation(7.0, 60.0, 1.5e9), None), **fields)


def test_the_ue_chooses_by_the_threshold_it_was_sent_and_moves_when_it_moves() -> None:
    info = _measured_ue()
    cap = capability_of(info.report)
    below = info.choose(_first_info(cap * 1.01, revision=4), 25.0)
    above = info.choose(_first_info(cap * 0.99, revision=5), 25.0)
    assert (below.mode, below.revision, below.channel_source) == (Mode.CENTRALIZED_FULL, 4, "downlink")
    assert (above.mode, above.group, above.revision) == (Mode.DISTRIBUTED, 0, 5)
    assert below.capability == pytest.approx(cap) and below.channel_snr_db == 25.0
    uplink = info.choose(_first_info(cap * 1.01, uplink_snr_db=9.0), 25.0)  # the BS's uplink figure wins
    assert (uplink.mode, uplink.channel_source, uplink.channel_snr_db) == (Mode.CENTRALIZED_DECODER, "uplink", 9.0)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"cpu_freq_hz": 5e9}, "CPU frequency 5000 MHz is outside this board's 600..1500 MHz"),
        ({"tx_power_dbm": 20.0}, "TX power 20.00 dBm is outside this radio's"),
        ({"rule": "genetic"}, "grouping rule 'genetic' is unknown"),
        ({"capability_unit": "flops"}, "measures samples_per_s"),
    ],
)
def test_the_ue_refuses_first_information_it_cannot_apply_and_keeps_the_last_valid(fields: dict, why: str) -> None:
    info = _measured_ue()
    good = _first_info(1.0)
    info.choose(good, 25.0)
    with pytest.raises(PolicyError, match=why):
        info.choose(_first_info(1.0, revision=2, **fields), 25.0)
    assert info.first_info == good


def test_work_options_price_every_step_count_and_a_reduced_round_weighs_less() -> None:
    """What the budget rule chooses from (testbed/policy/budget.py): each number of local steps with the exact
    size of its upload (an upper bound of a few bytes); a raw upload has one way. A reduced distributed update
    carries n_k x steps done / steps (a full one: n_k)."""
    bs = LearningBs.for_ues(BS.training, list(BS.bs.ues), BS.air, 20.0)
    ue = LearningUe.for_shard(BS.training, "ue-1", 0)
    modes = {"ue-1": Mode.DISTRIBUTED, "ue-2": Mode.CENTRALIZED_DECODER, "ue-3": Mode.CENTRALIZED_FULL}
    model = bs.model_bytes(1, config_orders(msgspec.structs.replace(BS.assign, modes=modes), list(modes)), [])
    dist, sym, raw = (ue.work_options(model, _assign(m)) for m in modes.values())
    assert [(o.local_steps, o.samples) for o in dist] == [(2, 32), (1, 16)] and dist[0].cycle_fraction == 1.0
    assert dist[0].upload_bytes == dist[1].upload_bytes  # an update has the model's size whatever the steps
    assert [(o.local_steps, o.samples) for o in sym] == [(2, 32), (1, 16)] and sym[0].cycle_fraction < 1.0
    full = ue.upload_bytes(1, model, _assign(Mode.DISTRIBUTED))
    reduced = ue.upload_bytes(1, model, _assign(Mode.DISTRIBUTED), local_steps=1)
    assert 0 <= dist[0].upload_bytes - len(full) <= 16 and ue.last_work == (16, 1.0)
    reference = {n: p.detach() for n, p in bs.model.named_parameters()}
    n_k = wire.decode_update(full, "ue-1", reference).num_samples
    assert wire.decode_update(reduced, "ue-1", reference).num_samples == n_k // 2 == ue.num_samples // 2
    symbols = ue.upload_bytes(1, model, _assign(Mode.CENTRALIZED_DECODER), local_steps=1)
    assert 0 <= sym[1].upload_bytes - len(symbols) <= 16
    assert [(o.local_steps, o.samples) for o in raw] == [(0, 0)]  # ue-1 is not asked for raw samples: nothing


def test_a_ue_without_torch_reports_its_encoder_forward_and_refuses_to_train() -> None:
    """EncoderUe (node/encoder_ue.py): capability = the numpy encoder forward's rate as full training steps (x the
    encoder forward's share of a step's cycles); a choice of distributed mode is refused in one line."""
    cfg = _ue_config(1)
    ue = EncoderUe.for_shard(cfg.training, "ue-1", 0)
    readings = itertools.count(step=0.1)  # every timed pass "takes" 0.1 s: 320 encoder forwards/s on the host
    info = UeFirstInfo(cfg.ue, ue.model, ue.num_samples, clock=lambda: next(readings))
    report = info.capability()
    share = compute_fractions(ue.codec)[0]
    assert report.cycles_per_sample == pytest.approx(1.5e9 / (320 * share * default_profiles().speed_scale("pi_4")))
    cap = capability_of(info.report)
    assert info.choose(_first_info(cap * 1.01), 25.0).mode is Mode.CENTRALIZED_FULL
    with pytest.raises(PolicyError, match="runs without torch and cannot train in distributed mode"):
        info.choose(_first_info(cap * 0.99, revision=2), 25.0)
