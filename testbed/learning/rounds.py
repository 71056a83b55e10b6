"""One training round, in one place: who trains what, the guards, the joint update and the clock.

The in-process engine (testbed/experiment) and the BS daemon (testbed/node) both drive rounds through
``RoundRunner``: ``plan_round`` (who sends what), the UEs' contributions, ``finish_round`` (guards, joint
update, clock). The engine gets the contributions by direct ``UeEndpoint`` calls (``run_round``); the daemon
gets them as bytes over the radio link (testbed/learning/wire.py) and passes what arrived by the deadline.
Model broadcast (virtual clock): phi first, at the MCS the worst UE that needs phi can decode, then theta for
the distributed UEs; each UE's download ends when the last part it needs has arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from testbed.errors import ConfigError, LearningError
from testbed.learning.aggregate import ServerOptimizerConfig, apply_step, joint_gradient, weighted_mean
from testbed.learning.assignment import UeAssignment, UeProfile
from testbed.learning.clock import Airtime, ClockConfig, UeCost, round_time_s, ue_cost
from testbed.learning.codec import SemanticCodec, compute_fractions
from testbed.learning.data import ImageDataset
from testbed.learning.guards import Update, screen, symbol_problem
from testbed.learning.modes import LocalTraining, RawShard, SymbolUpload, centralized_gradient
from testbed.learning.spec import DEFAULT_NORM_FACTOR
from testbed.mode import Mode


class UeEndpoint(Protocol):
    """How the BS reaches one UE (``LocalUe`` in process; the control and data planes in the lab)."""

    name: str

    def distributed(
        self, model: SemanticCodec, scratch: SemanticCodec, work: LocalTraining, snr_offset_db: float = 0.0
    ) -> Update: ...

    def symbols(self, model: SemanticCodec, work: LocalTraining, snr_offset_db: float = 0.0) -> SymbolUpload: ...

    def raw(self, start: int, count: int) -> ImageDataset: ...


@dataclass(frozen=True)
class RoundConfig:
    """Everything a round needs besides the model and the UEs.

    raw_block_samples : samples a centralized-full UE uploads per round (0: all in its first round).
    norm_factor : guard; updates with norm above this multiple of the round median are refused.
    """

    work: LocalTraining = field(default_factory=LocalTraining)
    server: ServerOptimizerConfig = field(default_factory=ServerOptimizerConfig)
    clock: ClockConfig = field(default_factory=ClockConfig)
    raw_block_samples: int = 0
    norm_factor: float = DEFAULT_NORM_FACTOR

    def __post_init__(self) -> None:
        if self.raw_block_samples < 0 or not self.norm_factor > 1:
            raise ConfigError(f"raw_block_samples must be >= 0 and norm_factor > 1, got {self}")


@dataclass(frozen=True)
class RoundReport:
    """What a round did and cost: virtual seconds, UE joules, uplink bits, per-UE mode and cost."""

    round_index: int
    time_s: float
    energy_j: float
    uplink_bits: float
    modes: dict[str, str]
    costs: dict[str, UeCost]
    late: list[str]
    refused: dict[str, str]
    bs_train_samples: float = 0.0  # full-step-equivalent samples the BS trained on (its compute)


@dataclass(frozen=True)
class RoundPlan:
    """What a round asks of each UE, decided before anything is sent.

    assignments : one per UE, in the runner's UE order. phi_end_s, theta_end_s : virtual seconds until phi,
    then theta, have been broadcast to every UE that needs them. raw_requests : UE name -> (first sample,
    count) of the raw block a centralized-full UE uploads this round (absent: it has nothing left to send).
    """

    round_index: int
    assignments: tuple[UeAssignment, ...]
    phi_end_s: float
    theta_end_s: float
    raw_requests: dict[str, tuple[int, int]]

    def mode_of(self, index: int) -> Mode:
        return self.assignments[index].mode


#: What one UE contributes to a round, by mode: an update, its symbols, or a block of raw samples.
Contribution = Update | SymbolUpload | ImageDataset


class RoundRunner:
    """Holds the global model, the server optimizer and the BS's raw-data store across rounds.

    A round is ``plan_round`` -> each UE's contribution -> ``finish_round``. ``run_round`` does all three with
    the in-process ``UeEndpoint`` calls and the virtual clock's lateness (the engine); the BS daemon
    (testbed/node) plans, exchanges the contributions over the air and finishes with what arrived in time.
    A runner without endpoints (``ues=None``) knows the UEs by their profiles' names.
    """

    def __init__(
        self,
        model: SemanticCodec,
        cfg: RoundConfig,
        profiles: Sequence[UeProfile],
        ues: Sequence[UeEndpoint] | None,
        registered_samples: Sequence[int],
        airtime: Airtime,
        generator: torch.Generator,
    ) -> None:
        if not profiles or len(profiles) != len(registered_samples) or (ues is not None and len(ues) != len(profiles)):
            raise ConfigError("one profile, endpoint and registered sample count per UE are required")
        if ues is not None and [u.name for u in ues] != [p.name for p in profiles]:
            raise ConfigError("endpoints and profiles must name the same UEs in the same order")
        self.model, self.cfg, self.profiles = model, cfg, list(profiles)
        self.ues = list(ues) if ues is not None else None
        self.names = [p.name for p in profiles]
        self.registered = {n: int(k) for n, k in zip(self.names, registered_samples, strict=True)}
        self.airtime, self.generator = airtime, generator
        self.scratch = SemanticCodec(model.cfg, torch.Generator().manual_seed(0))
        self.optimizer = cfg.server.build(list(model.parameters()))
        self.raw_uploaded = [0] * len(profiles)
        self.raw_store: list[ImageDataset | None] = [None] * len(profiles)
        self.round_index = 0
        self.median_norm: float | None = None  # guard reference carried between rounds
        self.encoder_fraction, self.decoder_fraction = compute_fractions(model.cfg)
        n_phi = sum(p.numel() for p in model.encoder.parameters())
        n_all = sum(p.numel() for p in model.parameters())
        self.phi_bytes = n_phi * cfg.clock.bytes_per_param
        self.theta_bytes = (n_all - n_phi) * cfg.clock.bytes_per_param

    def update_ue(self, profile: UeProfile, registered_samples: int) -> None:
        """Replace what the BS knows of one UE (a new capability or channel report) between rounds."""
        if profile.name not in self.registered or registered_samples < 0:
            raise LearningError(f"unknown UE {profile.name!r} or negative sample count {registered_samples}")
        self.profiles[self.names.index(profile.name)] = profile
        self.registered[profile.name] = int(registered_samples)

    # --- the round -----------------------------------------------------------------------------------
    def run_round(self, assignments: Sequence[UeAssignment], deadline_s: float | None = None) -> RoundReport:
        """Run one round with one assignment per UE; late (past ``deadline_s``) contributions are dropped."""
        if self.ues is None:
            raise LearningError("this runner has no UE endpoints; drive it with plan_round and finish_round")
        plan = self.plan_round(assignments)
        arrived: dict[str, Contribution] = {}
        costs: dict[str, UeCost] = {}
        for i, (ue, a) in enumerate(zip(self.ues, plan.assignments, strict=True)):
            offset = a.tx_power_dbm - self.profiles[i].tx_power_dbm
            if a.mode is Mode.DISTRIBUTED:
                arrived[ue.name] = ue.distributed(self.model, self.scratch, self.cfg.work, offset)
            elif a.mode is Mode.CENTRALIZED_DECODER:
                arrived[ue.name] = ue.symbols(self.model, self.cfg.work, offset)
            elif a.mode is Mode.CENTRALIZED_FULL and ue.name in plan.raw_requests:
                arrived[ue.name] = ue.raw(*plan.raw_requests[ue.name])
            if a.mode is not Mode.IDLE:
                costs[ue.name] = self.charge(plan, i, arrived.get(ue.name))
        late = [n for n, c in costs.items() if deadline_s is not None and c.total_s > deadline_s]
        return self.finish_round(plan, arrived, late=late, costs=costs, deadline_s=deadline_s)

    def plan_round(self, assignments: Sequence[UeAssignment]) -> RoundPlan:
        """The round's broadcast timing and each UE's request; nothing is sent or changed."""
        if len(assignments) != len(self.names):
            raise LearningError(f"expected {len(self.names)} assignments, got {len(assignments)}")
        phi_end, theta_end = self._broadcast_ends(assignments)
        raw_requests = {}
        for i, (name, a) in enumerate(zip(self.names, assignments, strict=True)):
            if a.mode is Mode.CENTRALIZED_FULL:
                remaining = self.registered[name] - self.raw_uploaded[i]
                block = self.cfg.raw_block_samples
                count = remaining if block == 0 else min(block, remaining)
                if count > 0:
                    raw_requests[name] = (self.raw_uploaded[i], count)
        return RoundPlan(self.round_index, tuple(assignments), phi_end, theta_end, raw_requests)

    def charge(self, plan: RoundPlan, index: int, contribution: Contribution | None) -> UeCost:
        """Virtual seconds, joules and uplink bits of UE ``index``'s part of the round (clock.py)."""
        clock, prof, a = self.cfg.clock, self.profiles[index], plan.assignments[index]
        snr_db = prof.snr_db + a.tx_power_dbm - prof.tx_power_dbm
        common = dict(cpu_freq_hz=a.cpu_freq_hz, kappa=prof.kappa, tx_power_dbm=a.tx_power_dbm)
        if a.mode is Mode.DISTRIBUTED:
            nbytes = self.phi_bytes + self.theta_bytes
            return ue_cost(
                download_s=plan.theta_end_s,
                samples=self.cfg.work.samples_per_round,
                cycles_per_sample=prof.cycles_per_sample,
                upload=self.airtime.upload(nbytes, snr_db, gain=prof.channel_gain),
                uplink_bits=8.0 * nbytes,
                **common,
            )
        if a.mode is Mode.CENTRALIZED_DECODER and isinstance(contribution, SymbolUpload):
            m, k = contribution.received.shape
            label_bytes = m * clock.bytes_per_label
            return ue_cost(
                download_s=plan.phi_end_s,
                samples=m,
                cycles_per_sample=prof.cycles_per_sample * self.encoder_fraction,
                upload=self.airtime.upload(label_bytes, snr_db, analog_symbols=m * k, gain=prof.channel_gain),
                uplink_bits=m * k * clock.analog_bits_per_symbol + 8.0 * label_bytes,
                **common,
            )
        if a.mode is Mode.CENTRALIZED_FULL and isinstance(contribution, ImageDataset):
            side = contribution.image_size_px
            nbytes = len(contribution) * (side * side * clock.bytes_per_pixel + clock.bytes_per_label)
            return ue_cost(
                download_s=0.0, samples=0, cycles_per_sample=1.0,
                upload=self.airtime.upload(nbytes, snr_db, gain=prof.channel_gain),
                uplink_bits=8.0 * nbytes, **common,
            )  # fmt: skip
        return UeCost()

    def finish_round(
        self,
        plan: RoundPlan,
        arrived: Mapping[str, Contribution],
        *,
        late: Sequence[str] = (),
        refused: Mapping[str, str] | None = None,
        costs: Mapping[str, UeCost] | None = None,
        deadline_s: float | None = None,
    ) -> RoundReport:
        """Guards, the joint update and the round's clock from the contributions that ``arrived``.

        ``late`` : UEs whose contribution is dropped (past the deadline; a raw block that arrived late is
        still kept for later rounds). ``refused`` : UEs whose bytes were unusable before the guards (reason).
        ``costs`` : each UE's charge (``charge``); missing ones are charged from what arrived.
        """
        if plan.round_index != self.round_index:
            raise LearningError(f"plan is for round {plan.round_index}, the runner is at round {self.round_index}")
        costs = dict(costs) if costs is not None else {}
        updates: list[Update] = []
        symbols: list[SymbolUpload] = []
        raw_idx: list[int] = []
        for i, (name, a) in enumerate(zip(self.names, plan.assignments, strict=True)):
            got = arrived.get(name)
            if a.mode is not Mode.IDLE and name not in costs:
                costs[name] = self.charge(plan, i, got)
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
        guard_refused, bs_samples = self._aggregate(updates, symbols, raw_idx)
        clock = self.cfg.clock
        modes = {n: a.mode for n, a in zip(self.names, plan.assignments, strict=True)}
        on_time = {n: c.total_s for n, c in costs.items() if n not in late}
        dist_t = [t for n, t in on_time.items() if modes[n] is Mode.DISTRIBUTED]
        cent_t = [t for n, t in on_time.items() if modes[n] is not Mode.DISTRIBUTED]
        time_s = round_time_s(dist_t, cent_t, clock.bs_compute_s(bs_samples), clock.control_latency_s)
        if late and deadline_s is not None:
            time_s = max(time_s, deadline_s + clock.control_latency_s)
        report = RoundReport(
            round_index=self.round_index,
            time_s=time_s,
            energy_j=sum(c.energy_j for c in costs.values()),
            uplink_bits=sum(c.uplink_bits for c in costs.values()),
            modes={n: m.value for n, m in modes.items()},
            costs=costs,
            late=list(late),
            refused={**(refused or {}), **guard_refused},
            bs_train_samples=bs_samples,
        )
        self.round_index += 1
        return report

    def _broadcast_ends(self, assignments: Sequence[UeAssignment]) -> tuple[float, float]:
        """Seconds until phi, then theta, have been broadcast to every UE that needs them."""
        need_phi = [
            p
            for p, a in zip(self.profiles, assignments, strict=True)
            if a.mode in (Mode.DISTRIBUTED, Mode.CENTRALIZED_DECODER)
        ]
        need_theta = [p for p, a in zip(self.profiles, assignments, strict=True) if a.mode is Mode.DISTRIBUTED]
        phi_end = self._broadcast_s(self.phi_bytes, need_phi)
        return phi_end, phi_end + self._broadcast_s(self.theta_bytes, need_theta)

    def _broadcast_s(self, payload_bytes: int, receivers: Sequence[UeProfile]) -> float:
        """Seconds to broadcast ``payload_bytes`` to ``receivers``, charged at the worst of them: the flat ones
        by the least mean SNR, a frequency-selective one by its channel (its mean SNR as a flat stand-in is
        never worse than its channel, so taking every mean SNR into the minimum changes nothing)."""
        if not receivers:
            return 0.0
        channels = [(p.snr_db, p.channel_gain) for p in receivers if p.channel_gain is not None]
        return self.airtime.broadcast(payload_bytes, min(p.snr_db for p in receivers), channels).elapsed_s

    def _store_raw(self, i: int, block: ImageDataset) -> None:
        old = self.raw_store[i]
        if old is not None:
            block = ImageDataset(
                torch.cat([old.images, block.images]), torch.cat([old.labels, block.labels]), block.num_classes
            )
        self.raw_store[i] = block
        self.raw_uploaded[i] = len(block)

    def _aggregate(
        self, updates: list[Update], symbols: list[SymbolUpload], raw_idx: list[int]
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
        n_c = sum(self.registered[s.source] for s in good_symbols) + sum(len(r.data) for r in raw)
        n_c_phi = sum(len(r.data) for r in raw)
        if good_symbols or raw:
            g_c = centralized_gradient(self.model, self.scratch, good_symbols, raw, self.cfg.work, self.generator)
        if g_d is not None or g_c is not None:
            apply_step(self.model, self.optimizer, joint_gradient(g_d, n_d, g_c, n_c, n_c_phi))
        steps_samples = self.cfg.work.samples_per_round
        return refused, steps_samples * (len(good_symbols) * self.decoder_fraction + len(raw))

    # --- checkpoints ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: model, optimizer, round, raw counts, BS generator."""
        return {
            "round_index": self.round_index,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "raw_uploaded": list(self.raw_uploaded),
            "median_norm": self.median_norm,
            "bs_generator": self.generator.get_state(),
        }

    def load_state_dict(
        self, state: Mapping[str, Any], refetch: Callable[[int, int], ImageDataset] | None = None
    ) -> None:
        """Restore a ``state_dict``; the raw samples UE i had uploaded are fetched again by ``refetch(i, count)``
        (same bytes, no charge; default: from the runner's endpoints)."""
        self.round_index = int(state["round_index"])
        self.median_norm = state["median_norm"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["bs_generator"])
        self.raw_store = [None] * len(self.names)
        self.raw_uploaded = [0] * len(self.names)
        for i, n in enumerate(state["raw_uploaded"]):
            if n and refetch is None and self.ues is None:
                raise LearningError("the checkpoint holds raw samples; a runner without endpoints cannot refetch them")
            if n:
                self._store_raw(i, refetch(i, int(n)) if refetch is not None else self.ues[i].raw(0, int(n)))
