"""Round logic: modes touch what they should, raw data is uploaded once, the deadline drops stragglers,
and the clock charges the slowest participant."""

import pytest
import torch

from testbed.errors import LearningError
from testbed.learning.assignment import FixedAssignment, Mode, UeAssignment
from testbed.learning.clock import ClockConfig, UeCost, round_time_s, ue_cost
from testbed.learning.cost import compute_energy_j, radio_energy_j
from testbed.learning.modes import LocalTraining
from testbed.learning.rounds import RoundConfig


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
