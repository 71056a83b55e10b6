"""Round learning: modes touch what they should, raw data is uploaded once (or in blocks), late contributions
are dropped, and plan -> contributions as wire bytes -> finish (what the BS core does) gives exactly what
direct in-process contributions give."""

import dataclasses

import numpy as np
import pytest
import torch

from testbed.errors import LearningError
from testbed.learning import wire
from testbed.learning.assignment import FixedAssignment
from testbed.learning.data import ImageDataset
from testbed.learning.modes import LocalTraining
from testbed.learning.rounds import RoundConfig, RoundRunner
from testbed.mode import Mode
from tests.learning.conftest import TINY


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_centralized_decoder_only_trains_theta(digits_split, make_runner) -> None:
    runner = make_runner(digits_split[0])
    before = _params(runner.model)
    report = runner.run_round(FixedAssignment(Mode.CENTRALIZED_DECODER, Mode.IDLE).assign(0, runner.profiles))
    after = _params(runner.model)
    for k in before:
        assert torch.equal(before[k], after[k]) == k.startswith("encoder."), k
    weak = {p.name for p in runner.profiles if p.weak}
    assert {n for n, m in report.modes.items() if m == "centralized_decoder"} == weak
    assert report.bs_train_samples == pytest.approx(len(weak) * 32 * runner.decoder_fraction)  # 2 steps x 16


def test_raw_upload_happens_once_and_trains_both_parts(digits_split, make_runner) -> None:
    runner = make_runner(digits_split[0])
    policy = FixedAssignment(Mode.CENTRALIZED_FULL, Mode.CENTRALIZED_FULL)
    before = _params(runner.model)
    sizes = [len(ue.data) for ue in runner.ues]
    assert runner.plan_round(policy.assign(0, runner.profiles)).raw_requests == {
        ue.name: (0, n) for ue, n in zip(runner.ues, sizes, strict=True)
    }
    runner.run_round(policy.assign(0, runner.profiles))
    assert runner.raw_uploaded == sizes
    assert runner.plan_round(policy.assign(1, runner.profiles)).raw_requests == {}  # nothing left to send
    runner.run_round(policy.assign(1, runner.profiles))
    assert runner.raw_uploaded == sizes
    assert all(not torch.equal(before[k], v) for k, v in _params(runner.model).items())


def test_raw_upload_in_blocks_over_rounds(digits_split, make_runner) -> None:
    work = LocalTraining(steps=1, batch_size=8, lr=0.1)
    runner = make_runner(digits_split[0], RoundConfig(work=work, raw_block_samples=100))
    policy = FixedAssignment(Mode.CENTRALIZED_FULL, Mode.IDLE)
    sizes = [len(runner.ues[i].data) for i in (0, 1)]
    for r in range(5):
        runner.run_round(policy.assign(r, runner.profiles))
        held = [min(100 * (r + 1), n) for n in sizes]
        assert runner.raw_uploaded[:2] == held
        assert torch.equal(runner.raw_store[0].labels, runner.ues[0].data.labels[: held[0]])
    assert runner.plan_round(policy.assign(5, runner.profiles)).raw_requests == {}  # ~337 each: four blocks


def test_late_contributions_are_dropped(digits_split, make_runner) -> None:
    """Every UE late: the model does not move; the strong UEs late: the round equals one without them."""
    policy = FixedAssignment(Mode.DISTRIBUTED, Mode.DISTRIBUTED)
    runner = make_runner(digits_split[0])
    before = _params(runner.model)
    report = runner.run_round(policy.assign(0, runner.profiles), late=[p.name for p in runner.profiles])
    assert set(report.late) == {p.name for p in runner.profiles}
    assert all(torch.equal(before[k], v) for k, v in _params(runner.model).items())
    dropped, idle = make_runner(digits_split[0]), make_runner(digits_split[0])
    dropped.run_round(policy.assign(0, dropped.profiles), late=["ue2", "ue3"])
    idle.run_round(FixedAssignment(Mode.DISTRIBUTED, Mode.IDLE).assign(0, idle.profiles))
    for (name, p), q in zip(dropped.model.named_parameters(), idle.model.parameters(), strict=True):
        assert torch.equal(p, q), name


def test_a_plan_needs_one_assignment_per_ue(digits_split, make_runner) -> None:
    runner = make_runner(digits_split[0])
    with pytest.raises(LearningError, match="expected 4 assignments, got 2"):
        runner.plan_round(FixedAssignment(Mode.DISTRIBUTED, Mode.DISTRIBUTED).assign(0, runner.profiles)[:2])


def _wire_round(runner, assignments, late):
    """The round as the BS core drives it: plan, each contribution encoded and decoded, finish."""
    plan = runner.plan_round(assignments)
    reference = {n: p.detach() for n, p in runner.model.named_parameters()}
    arrived = {}
    for ue, a in zip(runner.ues, plan.assignments, strict=True):
        if a.mode is Mode.DISTRIBUTED:
            data = wire.encode_update(ue.distributed(runner.model, runner.cfg.work), 0)
            arrived[ue.name] = wire.decode_update(data, ue.name, reference)
        elif a.mode is Mode.CENTRALIZED_DECODER:
            index, frames = wire.encode_symbols(ue.symbols(runner.model, runner.cfg.work), 0, 4800)
            channel = ue.channel(0.0)  # each analog frame through the UE's channel, at the transmitter's unit power
            unit = [torch.from_numpy(x / np.sqrt(np.mean(np.abs(x) ** 2))) for x in frames]
            received = {f: (channel.transmit(x)[0].numpy(), channel.noise_var) for f, x in enumerate(unit)}
            arrived[ue.name] = wire.decode_symbols(index, received, ue.name, TINY.num_symbols, TINY.num_classes)
        elif ue.name in plan.raw_requests:
            arrived[ue.name] = ue.raw(*plan.raw_requests[ue.name])
    on_time = {n: c for n, c in arrived.items() if n not in late or isinstance(c, ImageDataset)}
    return runner.finish_round(plan, on_time, late=late)


@pytest.mark.parametrize("weak_mode", [Mode.CENTRALIZED_DECODER, Mode.CENTRALIZED_FULL])
def test_contributions_through_the_wire_equal_direct_ones(digits_split, make_runner, weak_mode) -> None:
    cfg = RoundConfig(work=LocalTraining(steps=2, batch_size=16, lr=0.1), raw_block_samples=64)
    direct, wired = make_runner(digits_split[0], cfg), make_runner(digits_split[0], cfg)
    policy = FixedAssignment(weak_mode, Mode.DISTRIBUTED)
    for r, late in enumerate([[], ["ue0", "ue3"], []]):
        want = direct.run_round(policy.assign(r, direct.profiles), late=late)
        got = _wire_round(wired, policy.assign(r, wired.profiles), late)
        assert got == want
    assert direct.raw_uploaded == wired.raw_uploaded
    for (name, p), q in zip(direct.model.named_parameters(), wired.model.parameters(), strict=True):
        if weak_mode is Mode.CENTRALIZED_DECODER:  # analog frames are scaled to unit power and back: rounding
            assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name
        else:
            assert torch.equal(p, q), name


def test_a_runner_refuses_a_plan_of_another_round(digits_split, make_runner) -> None:
    runner = make_runner(digits_split[0])
    bare = RoundRunner(runner.model, runner.cfg, runner.profiles, [10] * 4, torch.Generator())
    plan = bare.plan_round(FixedAssignment(Mode.CENTRALIZED_FULL, Mode.IDLE).assign(0, bare.profiles))
    assert plan.raw_requests == {"ue0": (0, 10), "ue1": (0, 10)}
    report = bare.finish_round(plan, {}, late=["ue0", "ue1"], refused={"ue0": "bad bytes"})
    assert report.refused == {"ue0": "bad bytes"} and bare.round_index == 1
    with pytest.raises(LearningError, match="plan is for round 0"):
        bare.finish_round(plan, {})


def test_a_symbol_upload_cut_short_by_the_budget_weighs_in_by_its_rows(digits_split, make_runner, monkeypatch) -> None:
    """n_C counts a centralized-decoder UE's data size times the share of the round's rows it sent (one of two
    steps: half), as a budget-reduced distributed update's n_k is scaled at the UE (on the old code a cut-short
    upload weighed in as a full one)."""
    from testbed.learning import rounds

    seen = []
    real = rounds.joint_gradient
    monkeypatch.setattr(rounds, "joint_gradient", lambda *a: seen.append(a[1:2] + a[3:]) or real(*a))
    runner = make_runner(digits_split[0])
    full, half = runner.cfg.work, dataclasses.replace(runner.cfg.work, steps=1)
    for work in (full, half):
        plan = runner.plan_round(FixedAssignment(Mode.CENTRALIZED_DECODER, Mode.DISTRIBUTED).assign(0, runner.profiles))
        arrived = {}
        for ue, a in zip(runner.ues, plan.assignments, strict=True):
            if a.mode is Mode.DISTRIBUTED:
                arrived[ue.name] = ue.distributed(runner.model, full)
            else:
                arrived[ue.name] = ue.symbols(runner.model, work).through(ue.channel(0.0))
        runner.finish_round(plan, arrived)
    weak = sum(runner.registered[p.name] for p in runner.profiles if p.weak)
    (n_d, n_c_full, phi_full), (_, n_c_half, phi_half) = seen
    assert n_c_full == pytest.approx(weak) and n_c_half == pytest.approx(weak / 2) and phi_full == phi_half == 0
    assert n_d == sum(runner.registered[p.name] for p in runner.profiles if not p.weak)
