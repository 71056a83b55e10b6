"""Round logic: modes touch what they should, raw data is uploaded once, the deadline drops stragglers,
the clock charges the slowest participant, and plan -> contributions as bytes -> finish (the BS daemon's
way) gives exactly what run_round (the engine's) gives."""

import pytest
import torch

from testbed.errors import LearningError
from testbed.learning import wire
from testbed.learning.assignment import FixedAssignment, UeAssignment
from testbed.learning.clock import ClockConfig, UeCost, round_time_s, ue_cost
from testbed.learning.cost import compute_energy_j, radio_energy_j
from testbed.learning.data import ImageDataset
from testbed.learning.modes import LocalTraining
from testbed.learning.rounds import RoundConfig, RoundRunner
from testbed.mode import Mode
from tests.learning.conftest import TINY, FlatAirtime


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_centralized_decoder_only_trains_theta(digits_split, make_runner) -> None:
    runner = make_runner(digits_split[0])
    before = _params(runner.model)
    report = runner.run_round(FixedAssignment(Mode.CENTRALIZED_DECODER, Mode.IDLE).assign(0, runner.profiles))
    after = _params(runner.model)
    for k in before:
        assert torch.equal(before[k], after[k]) == k.startswith("encoder."), k
    weak = [p.name for p in runner.profiles if p.weak]
    assert set(report.costs) == set(weak)
    k = runner.model.cfg.num_symbols
    assert report.uplink_bits == pytest.approx(len(weak) * 32 * (k * 32 + 8))  # 2 steps x 16 samples


def test_raw_upload_happens_once_and_trains_both_parts(digits_split, make_runner) -> None:
    runner = make_runner(digits_split[0])
    policy = FixedAssignment(Mode.CENTRALIZED_FULL, Mode.CENTRALIZED_FULL)
    before = _params(runner.model)
    first = runner.run_round(policy.assign(0, runner.profiles))
    second = runner.run_round(policy.assign(1, runner.profiles))
    n_total = sum(len(ue.data) for ue in runner.ues)
    assert first.uplink_bits == pytest.approx(8 * n_total * (64 + 1))
    assert second.uplink_bits == 0 and second.energy_j == 0
    assert all(not torch.equal(before[k], v) for k, v in _params(runner.model).items())


def test_raw_upload_in_blocks_over_rounds(digits_split, make_runner) -> None:
    work = LocalTraining(steps=1, batch_size=8, lr=0.1)
    runner = make_runner(digits_split[0], RoundConfig(work=work, raw_block_samples=100))
    policy = FixedAssignment(Mode.CENTRALIZED_FULL, Mode.IDLE)
    sizes = [len(runner.ues[i].data) for i in (0, 1)]
    for r in range(5):
        report = runner.run_round(policy.assign(r, runner.profiles))
        held = [min(100 * (r + 1), n) for n in sizes]
        assert runner.raw_uploaded[:2] == held
        assert torch.equal(runner.raw_store[0].labels, runner.ues[0].data.labels[: held[0]])
    assert report.uplink_bits == 0  # everything (~337 samples each) went up in the first four blocks


def test_deadline_drops_stragglers_and_caps_round(digits_split, make_runner) -> None:
    runner = make_runner(digits_split[0])
    policy = FixedAssignment(Mode.DISTRIBUTED, Mode.DISTRIBUTED)
    free = runner.run_round(policy.assign(0, runner.profiles))
    weak_t = max(c.total_s for n, c in free.costs.items() if n in ("ue0", "ue1"))
    strong_t = max(c.total_s for n, c in free.costs.items() if n in ("ue2", "ue3"))
    assert weak_t > strong_t  # weak UEs upload at half rate in FlatAirtime
    assert free.time_s == pytest.approx(weak_t + runner.cfg.clock.control_latency_s)
    deadline = (weak_t + strong_t) / 2
    capped = runner.run_round(policy.assign(1, runner.profiles), deadline_s=deadline)
    assert set(capped.late) == {"ue0", "ue1"}
    assert capped.time_s == pytest.approx(deadline + runner.cfg.clock.control_latency_s)


def test_tx_power_and_cpu_frequency_from_the_assignment_are_charged(digits_split, make_runner) -> None:
    runner = make_runner(digits_split[0])
    p = runner.profiles[2]
    slow = [UeAssignment(Mode.IDLE, q.cpu_freq_hz, q.tx_power_dbm) for q in runner.profiles]
    slow[2] = UeAssignment(Mode.DISTRIBUTED, 0.5e9, p.tx_power_dbm + 3)
    cost = runner.run_round(slow).costs["ue2"]
    samples = runner.cfg.work.samples_per_round
    assert cost.compute_s == pytest.approx(samples * p.cycles_per_sample / 0.5e9)
    expected = compute_energy_j(samples, p.cycles_per_sample, 0.5e9, p.kappa) + radio_energy_j(
        p.tx_power_dbm + 3, cost.upload_s
    )
    assert cost.energy_j == pytest.approx(expected)
    with pytest.raises(LearningError, match="assignments"):
        runner.run_round(slow[:2])


def test_round_time_rule() -> None:
    assert round_time_s([1.0, 3.0], [2.0], bs_compute_s=0.5, control_s=0.1) == pytest.approx(3.1)
    assert round_time_s([1.0], [2.0], bs_compute_s=1.5, control_s=0.1) == pytest.approx(3.6)
    assert round_time_s([], [], bs_compute_s=0.0, control_s=0.1) == pytest.approx(0.1)
    c = ue_cost(
        download_s=1, samples=10, cycles_per_sample=1e6, cpu_freq_hz=1e9, kappa=1e-28, tx_power_dbm=30,
        upload_s=2, uplink_bits=5,
    )  # fmt: skip
    assert c.total_s == pytest.approx(3.01) and c.energy_j == pytest.approx(1e-28 * 1e7 * 1e18 + 2.0)
    assert UeCost().total_s == 0
    assert ClockConfig().bs_compute_s(0) == 0


def _daemon_round(runner, assignments, deadline_s):
    """The round as the BS daemon drives it: plan, contributions as wire bytes, finish with what arrived."""
    plan = runner.plan_round(assignments)
    reference = {n: p.detach() for n, p in runner.model.named_parameters()}
    arrived, costs = {}, {}
    for i, (ue, a) in enumerate(zip(runner.ues, plan.assignments, strict=True)):
        offset = a.tx_power_dbm - runner.profiles[i].tx_power_dbm
        if a.mode is Mode.DISTRIBUTED:
            data = wire.encode_update(ue.distributed(runner.model, runner.scratch, runner.cfg.work, offset), 0)
            arrived[ue.name] = wire.decode_update(data, ue.name, reference)
        elif a.mode is Mode.CENTRALIZED_DECODER:
            data = wire.encode_symbols(ue.symbols(runner.model, runner.cfg.work, offset), 0)
            arrived[ue.name] = wire.decode_symbols(data, ue.name, TINY.num_symbols, TINY.num_classes)
        elif ue.name in plan.raw_requests:
            arrived[ue.name] = ue.raw(*plan.raw_requests[ue.name])
        if a.mode is not Mode.IDLE:
            costs[ue.name] = runner.charge(plan, i, arrived.get(ue.name))
    late = [n for n, c in costs.items() if c.total_s > deadline_s]
    on_time = {n: c for n, c in arrived.items() if n not in late or isinstance(c, ImageDataset)}
    return runner.finish_round(plan, on_time, late=late, costs=costs, deadline_s=deadline_s)


@pytest.mark.parametrize("weak_mode", [Mode.CENTRALIZED_DECODER, Mode.CENTRALIZED_FULL])
def test_plan_and_finish_with_wire_bytes_equal_run_round(digits_split, make_runner, weak_mode) -> None:
    cfg = RoundConfig(work=LocalTraining(steps=2, batch_size=16, lr=0.1), raw_block_samples=64)
    engine, daemon = make_runner(digits_split[0], cfg), make_runner(digits_split[0], cfg)
    policy = FixedAssignment(weak_mode, Mode.DISTRIBUTED)
    lates = []
    for r, deadline in enumerate([10.0, 0.02, 10.0]):  # 20 ms: someone is late in round 1
        want = engine.run_round(policy.assign(r, engine.profiles), deadline_s=deadline)
        got = _daemon_round(daemon, policy.assign(r, daemon.profiles), deadline)
        assert got == want
        lates.append(want.late)
    assert lates[0] == lates[2] == [] and lates[1] and engine.raw_uploaded == daemon.raw_uploaded
    for (name, p), q in zip(engine.model.named_parameters(), daemon.model.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_runner_without_endpoints_plans_and_refuses_run_round(digits_split, make_runner) -> None:
    runner = make_runner(digits_split[0])
    bare = RoundRunner(runner.model, runner.cfg, runner.profiles, None, [10] * 4, FlatAirtime(), torch.Generator())
    plan = bare.plan_round(FixedAssignment(Mode.CENTRALIZED_FULL, Mode.IDLE).assign(0, bare.profiles))
    assert plan.raw_requests == {"ue0": (0, 10), "ue1": (0, 10)}
    with pytest.raises(LearningError, match="no UE endpoints"):
        bare.run_round(plan.assignments)
    report = bare.finish_round(plan, {}, late=["ue0", "ue1"], refused={"ue0": "bad bytes"}, deadline_s=1.0)
    assert report.refused == {"ue0": "bad bytes"} and bare.round_index == 1
    with pytest.raises(LearningError, match="plan is for round 0"):
        bare.finish_round(plan, {})
