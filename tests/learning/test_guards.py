"""Poisoned updates: refused for a named reason, the global model stays finite and accuracy unharmed."""

import math

import pytest
import torch

from testbed.learning.aggregate import ServerOptimizerConfig
from testbed.learning.assignment import FixedAssignment, UeAssignment
from testbed.learning.evaluate import evaluate
from testbed.learning.guards import Update, screen, symbol_problem, update_norm
from testbed.learning.modes import LocalTraining, SentSymbols
from testbed.learning.rounds import RoundConfig
from testbed.learning.spec import DEFAULT_NORM_FACTOR as NORM_FACTOR
from testbed.mode import Mode


def _ref() -> dict[str, torch.Tensor]:
    return {"encoder.w": torch.zeros(3, 2), "decoder.b": torch.zeros(4)}


def _upd(source: str, scale: float = 1.0, n: int = 10, **replace: torch.Tensor) -> Update:
    t = {"encoder.w": torch.full((3, 2), scale), "decoder.b": torch.full((4,), scale)}
    t.update(replace)
    return Update(source, t, n)


def test_screen_refuses_each_kind_of_poison() -> None:
    clean = [_upd(f"c{i}", 1.0 + 0.1 * i) for i in range(5)]
    poisoned = [
        _upd("nan", **{"decoder.b": torch.tensor([0.0, math.nan, 0.0, 0.0])}),
        _upd("inf", **{"encoder.w": torch.full((3, 2), math.inf)}),
        _upd("shape", **{"decoder.b": torch.zeros(5)}),
        _upd("dtype", **{"decoder.b": torch.zeros(4, dtype=torch.float64)}),
        _upd("huge", 1000.0),
        _upd("count", n=10_000),
        _upd("zero", n=0),
        Update("names", {"encoder.w": torch.zeros(3, 2)}, 10),
    ]
    accepted, refused, median = screen(clean + poisoned, _ref(), {u.source: 100 for u in clean + poisoned}, NORM_FACTOR)
    assert [u.source for u in accepted] == [u.source for u in clean]
    assert set(refused) == {u.source for u in poisoned}
    assert "NaN" in refused["nan"] and "norm" in refused["huge"] and "outside 1..100" in refused["count"]
    assert median == pytest.approx(update_norm(clean[2]))


def test_previous_median_stops_a_lone_oversized_update() -> None:
    alone = [_upd("huge", 1000.0)]
    assert screen(alone, _ref(), {"huge": 100}, NORM_FACTOR)[0] == alone  # no history: it judges itself
    accepted, refused, _ = screen(alone, _ref(), {"huge": 100}, NORM_FACTOR, previous_median_norm=3.0)
    assert accepted == [] and "norm" in refused["huge"]


def test_symbol_uploads_are_checked() -> None:
    good = torch.zeros((4, 8), dtype=torch.complex64)
    labels = torch.tensor([0, 1, 2, 3])
    assert symbol_problem(good, labels, 8, 10) is None
    bad = good.clone()
    bad[1, 2] = complex(math.nan, 0)
    assert "NaN" in symbol_problem(bad, labels, 8, 10)
    assert "complex64" in symbol_problem(good[:, :7], labels, 8, 10)
    assert "labels" in symbol_problem(good, torch.tensor([0, 1, 2, 11]), 8, 10)


class PoisonedUe:
    """Wraps an honest UE and corrupts what it sends, in one of several ways."""

    def __init__(self, honest, kind: str) -> None:
        self.honest, self.kind, self.name = honest, kind, honest.name

    def distributed(self, model, work, snr_offset_db=0.0) -> Update:
        u = self.honest.distributed(model, work, snr_offset_db)
        t = dict(u.tensors)
        name = next(iter(t))
        if self.kind == "nan":
            t[name] = t[name].clone().fill_(math.nan)
        elif self.kind == "huge":
            t = {k: v * 1000.0 for k, v in t.items()}
        elif self.kind == "shape":
            t[name] = torch.zeros(7)
        return Update(u.source, t, u.num_samples)

    def channel(self, snr_offset_db):
        return self.honest.channel(snr_offset_db)

    def symbols(self, model, work) -> SentSymbols:
        sent = self.honest.symbols(model, work)
        return SentSymbols(sent.source, sent.symbols * math.inf, sent.labels)

    def raw(self, start, count):
        return self.honest.raw(start, count)


def test_poisoned_ues_leave_model_finite_and_accuracy_unharmed(digits_split, make_runner) -> None:
    """The poisoned run must end exactly where a run without the attackers ends (they are all refused)."""
    train, test = digits_split
    cfg = RoundConfig(LocalTraining(steps=5, batch_size=32, lr=0.5), ServerOptimizerConfig("momentum", lr=0.5))
    clean, dirty = make_runner(train, cfg, n=8), make_runner(train, cfg, n=8)  # ue0-3 weak, ue4-7 strong
    for i, kind in zip((5, 6, 7), ("nan", "huge", "shape"), strict=True):
        dirty.ues[i] = PoisonedUe(dirty.ues[i], kind)
    dirty.ues[0] = PoisonedUe(dirty.ues[0], "inf-symbols")
    attackers = {"ue0", "ue5", "ue6", "ue7"}
    policy = FixedAssignment(Mode.CENTRALIZED_DECODER, Mode.DISTRIBUTED)
    for r in range(6):
        plan = policy.assign(r, dirty.profiles)
        without = [
            UeAssignment(Mode.IDLE, a.cpu_freq_hz, a.tx_power_dbm) if p.name in attackers else a
            for p, a in zip(clean.profiles, plan, strict=True)
        ]
        clean.run_round(without)
        report = dirty.run_round(plan)
        assert set(report.refused) == attackers
    for p_clean, p_dirty in zip(clean.model.parameters(), dirty.model.parameters(), strict=True):
        assert torch.isfinite(p_dirty).all()
        torch.testing.assert_close(p_dirty, p_clean)
    snrs = [p.snr_db for p in clean.profiles]
    acc_clean, _ = evaluate(clean.model, test, snrs, seed=1)
    acc_dirty, _ = evaluate(dirty.model, test, snrs, seed=1)
    assert acc_dirty == acc_clean > 0.3  # it learned (chance: 0.1) and the attack changed nothing
