"""The joint update against numpy, and the FedAvg special case end to end."""

import numpy as np
import pytest
import torch

from testbed.errors import ConfigError
from testbed.learning.aggregate import ServerOptimizerConfig, joint_gradient, weighted_mean
from testbed.learning.assignment import FixedAssignment
from testbed.learning.guards import Update
from testbed.learning.modes import LocalTraining
from testbed.learning.rounds import RoundConfig
from testbed.mode import Mode


def test_joint_gradient_matches_the_formula(rng: np.random.Generator) -> None:
    shapes = {"encoder.w": (3, 2), "decoder.w": (4,)}
    gs = [{k: rng.normal(size=s) for k, s in shapes.items()} for _ in range(3)]
    ns = [10, 30, 60]
    updates = [
        Update(f"u{i}", {k: torch.tensor(v) for k, v in g.items()}, n)
        for i, (g, n) in enumerate(zip(gs, ns, strict=True))
    ]
    g_d, n_d = weighted_mean(updates)
    assert n_d == 100
    expected_d = {k: sum(g[k] * n / 100 for g, n in zip(gs, ns, strict=True)) for k in shapes}
    g_c = {k: rng.normal(size=s) for k, s in shapes.items()}
    out = joint_gradient(g_d, n_d, {k: torch.tensor(v) for k, v in g_c.items()}, n_c=300, n_c_phi=0)
    np.testing.assert_allclose(out["encoder.w"].numpy(), expected_d["encoder.w"])  # no encoder part in G_C
    a = 100 / 400
    np.testing.assert_allclose(out["decoder.w"].numpy(), a * expected_d["decoder.w"] + (1 - a) * g_c["decoder.w"])
    out = joint_gradient(g_d, n_d, {k: torch.tensor(v) for k, v in g_c.items()}, n_c=300, n_c_phi=100)
    np.testing.assert_allclose(out["encoder.w"].numpy(), 0.5 * expected_d["encoder.w"] + 0.5 * g_c["encoder.w"])
    with pytest.raises(ConfigError):
        joint_gradient(None, 0, None, 0, 0)


def test_all_distributed_with_sgd_is_exactly_fedavg(digits_split, make_runner) -> None:
    train, _ = digits_split
    work = LocalTraining(steps=2, batch_size=16, lr=0.1)
    runner = make_runner(train, RoundConfig(work=work, server=ServerOptimizerConfig("sgd", lr=0.1)))
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    # Replay the UEs' local training from identical generator states to get their local models.
    states = [ue.generator.get_state() for ue in runner.ues]
    locals_ = []
    for ue in runner.ues:
        g = ue.distributed(runner.model, work).tensors  # (w_start - w_local) / lr
        locals_.append({k: before[k] - work.lr * g[k] for k in g})
    for ue, s in zip(runner.ues, states, strict=True):
        ue.generator.set_state(s)
    runner.run_round(FixedAssignment(Mode.DISTRIBUTED, Mode.DISTRIBUTED).assign(0, runner.profiles))
    n = np.array([len(ue.data) for ue in runner.ues], dtype=np.float64)
    for k, v in runner.model.state_dict().items():
        fedavg = sum(loc[k] * (ni / n.sum()) for loc, ni in zip(locals_, n, strict=True))
        torch.testing.assert_close(v, fedavg, atol=1e-6, rtol=1e-5)
        assert not torch.equal(v, before[k])


def test_server_optimizer_options() -> None:
    params = [torch.nn.Parameter(torch.ones(3))]
    assert isinstance(ServerOptimizerConfig("adam", lr=0.01).build(params), torch.optim.Adam)
    assert ServerOptimizerConfig("momentum").build(params).param_groups[0]["momentum"] == 0.9
    with pytest.raises(ConfigError, match="unknown"):
        ServerOptimizerConfig("lion")
