"""One training round's learning, in one place: who sends what, the guards and the joint update.

The BS core (testbed/node/bs_core.py, through ``node.training.LearningBs``) drives every round, in the
daemon and in the in-process engine alike: ``plan_round`` says what each UE sends (and which raw block a
centralized-full UE uploads), the UEs' contributions arrive as bytes over the link, and ``finish_round``
applies the guards and the joint update to what arrived in time. Time and energy are not charged here: they
are what the node cores' transfers and jobs took, on the shell's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from testbed.errors import ConfigError, LearningError
from testbed.learning.aggregate import ServerOptimizerConfig, apply_step, joint_gradient, weighted_mean
from testbed.learning.assignment import UeAssignment, UeProfile
from testbed.learning.clock import ClockConfig
from testbed.learning.codec import SemanticCodec
from testbed.learning.codec_config import compute_fractions
from testbed.learning.data import ImageDataset
from testbed.learning.guards import Update, screen, symbol_problem
from testbed.learning.modes import LocalTraining, RawShard, SymbolUpload, centralized_gradient
from testbed.learning.spec import DEFAULT_NORM_FACTOR
from testbed.learning.split import SymbolGradient, split_reference, with_split_encoder
from testbed.mode import Mode


@dataclass(frozen=True)
class RoundConfig:
    """Everything a round needs besides the model and the UEs.

    raw_block_samples : samples a centralized-full UE uploads per round (0: all in its first round).
    norm_factor : guard; updates with norm above this multiple of the round median are refused.
    split_gradient : split learning for centralized-decoder UEs (testbed/learning/split.py); off: their symbols
        train the decoder only.
    """

    work: LocalTraining = field(default_factory=LocalTraining)
    server: ServerOptimizerConfig = field(default_factory=ServerOptimizerConfig)
    clock: ClockConfig = field(default_factory=ClockConfig)
    raw_block_samples: int = 0
    norm_factor: float = DEFAULT_NORM_FACTOR
    split_gradient: bool = False

    def __post_init__(self) -> None:
        if self.raw_block_samples < 0 or not self.norm_factor > 1:
            raise ConfigError(f"raw_block_samples must be >= 0 and norm_factor > 1, got {self}")


@dataclass(frozen=True)
class RoundReport:
    """What a round's learning did: per-UE mode, who was late or refused, what the BS trained on."""

    round_index: int
    modes: dict[str, str]
    late: list[str]
    refused: dict[str, str]
    bs_train_samples: float = 0.0  # full-step-equivalent samples the BS trained on (its compute)


@dataclass(frozen=True)
class RoundPlan:
    """What a round asks of each UE, decided before anything is sent.

    assignments : one per UE, in the runner's UE order. raw_requests : UE name -> (first sample, count) of the
    raw block a centralized-full UE uploads this round (absent: it has nothing left to send). symbol_grads : UE
    name -> the gradient for the symbols it sent last round, for each UE sending symbols again (split learning).
    """

    round_index: int
    assignments: tuple[UeAssignment, ...]
    raw_requests: dict[str, tuple[int, int]]
    symbol_grads: dict[str, SymbolGradient] = field(default_factory=dict)

    def mode_of(self, index: int) -> Mode:
        return self.assignments[index].mode


#: What one UE contributes to a round, by mode: an update, its symbols, or a block of raw samples.
Contribution = Update | SymbolUpload | ImageDataset


class RoundRunner:
    """Holds the global model, the server optimizer and the BS's raw-data store across rounds.

    A round is ``plan_round`` -> the UEs' contributions (decoded from their uploads) -> ``finish_round``."""

    def __init__(
        self,
        model: SemanticCodec,
        cfg: RoundConfig,
        profiles: Sequence[UeProfile],
        registered_samples: Sequence[int],
        generator: torch.Generator,
    ) -> None:
        if not profiles or len(profiles) != len(registered_samples):
            raise ConfigError("one profile and one registered sample count per UE are required")
        self.model, self.cfg, self.profiles = model, cfg, list(profiles)
        self.names = [p.name for p in profiles]
        self.registered = {n: int(k) for n, k in zip(self.names, registered_samples, strict=True)}
        self.generator = generator
        self.scratch = SemanticCodec(model.cfg, torch.Generator().manual_seed(0))
        self.optimizer = cfg.server.build(list(model.parameters()))
        self.raw_uploaded = [0] * len(profiles)
        self.raw_store: list[ImageDataset | None] = [None] * len(profiles)
        self.round_index = 0
        self.median_norm: float | None = None  # guard reference carried between rounds
        self.split_median_norm: float | None = None  # the same for split encoder gradients
        self.symbol_grads: dict[str, SymbolGradient] = {}  # from the last round, for the next broadcast
        self.encoder_fraction, self.decoder_fraction = compute_fractions(model.cfg)

    def update_ue(self, profile: UeProfile, registered_samples: int) -> None:
        """Replace what the BS knows of one UE (a new capability or channel report) between rounds."""
        if profile.name not in self.registered or registered_samples < 0:
            raise LearningError(f"unknown UE {profile.name!r} or negative sample count {registered_samples}")
        self.profiles[self.names.index(profile.name)] = profile
        self.registered[profile.name] = int(registered_samples)

    # --- the round -----------------------------------------------------------------------------------
    def plan_round(self, assignments: Sequence[UeAssignment]) -> RoundPlan:
        """The round's broadcast timing and each UE's request; nothing is sent or changed."""
        if len(assignments) != len(self.names):
            raise LearningError(f"expected {len(self.names)} assignments, got {len(assignments)}")
        raw_requests = {}
        for i, (name, a) in enumerate(zip(self.names, assignments, strict=True)):
            if a.mode is Mode.CENTRALIZED_FULL:
                remaining = self.registered[name] - self.raw_uploaded[i]
                block = self.cfg.raw_block_samples
                count = remaining if block == 0 else min(block, remaining)
                if count > 0:
                    raw_requests[name] = (self.raw_uploaded[i], count)
        sending = {n for n, a in zip(self.names, assignments, strict=True) if a.mode is Mode.CENTRALIZED_DECODER}
        grads = {n: g for n, g in self.symbol_grads.items() if n in sending}
        return RoundPlan(self.round_index, tuple(assignments), raw_requests, grads)

    def finish_round(
        self,
        plan: RoundPlan,
        arrived: Mapping[str, Contribution],
        *,
        late: Sequence[str] = (),
        refused: Mapping[str, str] | None = None,
    ) -> RoundReport:
        """Guards and the joint update from the contributions that ``arrived``.

        ``late`` : UEs whose contribution is dropped (past the deadline; a raw block that arrived late is still
        kept for later rounds). ``refused`` : UEs whose bytes were unusable before the guards (reason)."""
        if plan.round_index != self.round_index:
            raise LearningError(f"plan is for round {plan.round_index}, the runner is at round {self.round_index}")
        self.symbol_grads = {}  # broadcast with the plan (or dropped): a failed round leaves none behind
        updates: list[Update] = []
        symbols: list[SymbolUpload] = []
        raw_idx: list[int] = []
        for i, (name, a) in enumerate(zip(self.names, plan.assignments, strict=True)):
            got = arrived.get(name)
            if a.mode is Mode.CENTRALIZED_FULL and isinstance(got, ImageDataset):
                self._store_raw(i, got)
            if name in late:
                continue
            if a.mode is Mode.DISTRIBUTED and isinstance(got, Update):
                updates.append(got)
            elif a.mode is Mode.CENTRALIZED_DECODER and isinstance(got, SymbolUpload):
                symbols.append(got)
            elif a.mode is Mode.CENTRALIZED_FULL and self.raw_store[i] is not None:
                raw_idx.append(i)
        guard_refused, bs_samples = self._aggregate(plan, updates, symbols, raw_idx)
        report = RoundReport(
            round_index=self.round_index,
            modes={n: a.mode.value for n, a in zip(self.names, plan.assignments, strict=True)},
            late=list(late),
            refused={**(refused or {}), **guard_refused},
            bs_train_samples=bs_samples,
        )
        self.round_index += 1
        return report

    def _store_raw(self, i: int, block: ImageDataset) -> None:
        old = self.raw_store[i]
        if old is not None:
            block = ImageDataset(
                torch.cat([old.images, block.images]), torch.cat([old.labels, block.labels]), block.num_classes
            )
        self.raw_store[i] = block
        self.raw_uploaded[i] = len(block)

    def _aggregate(
        self, plan: RoundPlan, updates: list[Update], symbols: list[SymbolUpload], raw_idx: list[int]
    ) -> tuple[dict[str, str], float]:
        """Guards, G_D, G_C and the server step; returns (refused, BS full-step-equivalent samples)."""
        cfg = self.model.cfg
        reference = {n: p.detach() for n, p in self.model.named_parameters()}
        accepted, refused, median = screen(updates, reference, self.registered, self.cfg.norm_factor, self.median_norm)
        self.median_norm = median if median is not None else self.median_norm
        good_symbols = []
        for up in symbols:
            problem = symbol_problem(up.received, up.labels, cfg.num_symbols, cfg.num_classes)
            if problem is None:
                good_symbols.append(up)
            else:
                refused[up.source] = problem
        raw = [RawShard(self.raw_store[i], self.profiles[i].snr_db) for i in raw_idx]
        g_d, n_d = weighted_mean(accepted) if accepted else (None, 0)
        g_c = None
        steps_samples = self.cfg.work.samples_per_round
        # a symbol upload weighs in as its UE's data, scaled down when the UE sent fewer rows than a full round
        # (its energy budget cut the work, testbed/policy/budget.py), as a reduced distributed update does
        n_c = sum(self.registered[s.source] * min(1.0, len(s.labels) / steps_samples) for s in good_symbols)
        n_c += sum(len(r.data) for r in raw)
        n_c_phi = sum(len(r.data) for r in raw)
        split = self._split_updates(plan, symbols, refused)
        sym_grads: list[torch.Tensor] = []
        if good_symbols or raw:
            g_c, sym_grads = centralized_gradient(self.model, self.scratch, good_symbols, raw, self.cfg.work,
                                                  self.generator, symbol_grads=self.cfg.split_gradient)  # fmt: skip
        g_c, n_c_phi = with_split_encoder(g_c, n_c_phi, split)
        if g_d is not None or g_c is not None:
            apply_step(self.model, self.optimizer, joint_gradient(g_d, n_d, g_c, n_c, n_c_phi))
        pairs = zip(good_symbols, sym_grads, strict=False)  # sym_grads is empty unless split learning is on
        self.symbol_grads = {up.source: SymbolGradient(self.round_index, g) for up, g in pairs}
        return refused, steps_samples * (len(good_symbols) * self.decoder_fraction + len(raw))

    def _split_updates(self, plan: RoundPlan, symbols: list[SymbolUpload], refused: dict[str, str]) -> list[Update]:
        """The UEs' encoder gradients for the symbol gradients this round's broadcast carried, screened by the
        guards (structure, finite, norm against their own median); refusals are added to ``refused``."""
        candidates = []
        for up in symbols:
            if up.split is None:
                continue
            if up.source not in plan.symbol_grads:
                why = "split learning is off" if not self.cfg.split_gradient else "no symbol gradient was sent to it"
                _refuse(refused, up.source, f"split gradient: {why}")
            else:
                candidates.append(up.split)
        if not candidates:
            return []
        accepted, bad, median = screen(candidates, split_reference(self.model), self.registered, self.cfg.norm_factor,
                                       self.split_median_norm)  # fmt: skip
        self.split_median_norm = median if median is not None else self.split_median_norm
        for source, reason in bad.items():
            _refuse(refused, source, f"split gradient: {reason}")
        return accepted

    # --- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self, *, with_raw: bool = False) -> dict[str, Any]:
        """Everything needed to continue exactly: model, optimizer, round, raw counts, BS generator, the symbol
        gradients due in the next broadcast; with
        ``with_raw`` also the raw samples themselves (a BS daemon cannot ask its UEs for them again)."""
        state = {
            "round_index": self.round_index,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "raw_uploaded": list(self.raw_uploaded),
            "median_norm": self.median_norm,
            "bs_generator": self.generator.get_state(),
            "split_median_norm": self.split_median_norm,
            "symbol_grads": {n: [g.round_index, g.grads] for n, g in self.symbol_grads.items()},
        }
        if with_raw:
            state["raw_store"] = [None if b is None else [b.images, b.labels, b.num_classes] for b in self.raw_store]
        return state

    def load_state_dict(
        self, state: Mapping[str, Any], refetch: Callable[[int, int], ImageDataset] | None = None
    ) -> None:
        """Restore a ``state_dict``; raw samples come from it if it holds them, else UE i's are fetched again by
        ``refetch(i, count)`` (the same bytes, no airtime charged)."""
        self.round_index = int(state["round_index"])
        self.median_norm = state["median_norm"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["bs_generator"])
        self.split_median_norm = state["split_median_norm"]
        self.symbol_grads = {n: SymbolGradient(int(r), g) for n, (r, g) in state["symbol_grads"].items()}
        self.raw_store = [None] * len(self.names)
        self.raw_uploaded = [0] * len(self.names)
        if "raw_store" in state:
            for i, block in enumerate(state["raw_store"]):
                if block is not None:
                    self._store_raw(i, ImageDataset(block[0], block[1], int(block[2])))
            return
        for i, n in enumerate(state["raw_uploaded"]):
            if n and refetch is None:
                raise LearningError("the checkpoint holds raw samples; give refetch to fetch them again")
            if n:
                self._store_raw(i, refetch(i, int(n)))


def _refuse(refused: dict[str, str], source: str, reason: str) -> None:
    refused[source] = f"{refused[source]}; {reason}" if source in refused else reason
