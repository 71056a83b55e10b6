"""The in-process engine behind ``testbed train`` and ``testbed compare``: the BS core and every UE core of
the scenario in one process (testbed/experiment/network.py), in virtual time, over the shared medium. The
round logic is the nodes' own (testbed/node/bs_core.py, ue_core.py): registration, ASSIGN, the model
broadcast with repair, the TDMA uplinks with ARQ, the deadline, the joint update. Only the shell differs
from the daemons: the control plane is in-process, the radio is a ``FrameLink`` (``medium`` "model": the PER
table and exact burst lengths; "phy": every frame modulated, through the channel models and demodulated by the
real receiver), and compute time is charged from each UE's board.

Per round it appends one JSON line of metrics (fsynced) and then writes a verified checkpoint
(testbed/learning/checkpoint.py: manifest with scheme, seed, medium, scenario hash and round; atomic), so a
damaged or foreign checkpoint is refused with one line. A resumed run restarts the network at the round
boundary: the model, the optimizer, every generator and what the BS had measured continue.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import torch

from testbed.errors import ConfigError, LearningError, LinkError, StateError
from testbed.experiment.executor import Executor
from testbed.experiment.media import MEDIA, build_link, engine_air
from testbed.experiment.network import Network
from testbed.experiment.nodes import EngineFirstInfo, assigner_for, bs_section
from testbed.experiment.scenario import Scenario
from testbed.experiment.schemes import build_scheme, policy_inputs
from testbed.learning import partition, wire
from testbed.learning.checkpoint import (
    append_jsonl,
    load_checkpoint,
    read_jsonl,
    remove_stale_temps,
    save_checkpoint,
    write_atomic,
)
from testbed.learning.codec import SemanticCodec
from testbed.learning.data import ImageDataset, load_dataset, train_test_split
from testbed.learning.evaluate import evaluate_classes
from testbed.learning.modes import LocalUe
from testbed.learning.rounds import RoundRunner
from testbed.learning.schemes import Scheme
from testbed.node.bs_core import BsCore
from testbed.node.first_info import ChoiceInputs
from testbed.node.jobtime import bs_job_time, ue_job_time
from testbed.node.training import LearningBs, LearningUe
from testbed.node.ue_core import UeCore

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
# Seed offsets so data split, partition, model init, BS and each UE draw from independent streams.
_SPLIT, _PARTITION, _MODEL, _BS, _EVAL, _LINK, _STREAM, _UE = 1, 2, 3, 4, 5, 6, 7, 100
MAX_ROUND_S = 86_400.0  # virtual seconds one round may take before the run is called stuck


def split_for(scenario: Scenario) -> tuple[ImageDataset, ImageDataset]:
    """The scenario's (train, test) split; the test part stays at the BS."""
    data = load_dataset(scenario.training.dataset)
    return train_test_split(data, scenario.training.test_fraction, np.random.default_rng([scenario.seed, _SPLIT]))


@dataclass
class Totals:
    """Running totals since round 0 (virtual clock); ``clock_samples``: the air's sample clock at the last
    record, where a resumed network starts its next round."""

    virtual_time_s: float = 0.0
    energy_j: float = 0.0
    uplink_bits: float = 0.0
    clock_samples: int = 0


class Engine:
    """One scheme on one scenario over one medium: build everything from the seed, run rounds through the node
    cores, log, checkpoint, resume.

    ``scheme`` is a name from testbed/experiment/schemes.py (fixed baselines and policy variants, built for
    this run) or a ready ``Scheme`` (any ``AssignmentPolicy``). ``medium``: "model" or "phy" (``MEDIA``;
    default: the scenario's ``[medium] kind``). ``executor``: who computes the UE jobs each step starts
    together (testbed/experiment/executor.py; default: embedded, batched in this process)."""

    def __init__(
        self,
        scenario: Scenario,
        scheme: str | Scheme,
        out_dir: Path | None = None,
        medium: str | None = None,
        executor: Executor | None = None,
    ) -> None:
        medium = scenario.medium.kind if medium is None else medium
        if medium not in MEDIA:
            raise ConfigError(f"unknown medium {medium!r}; choose one of {', '.join(MEDIA)}")
        self.scenario, self.medium = scenario, medium
        self.executor = executor
        self.out_dir = Path(out_dir) if out_dir is not None else None
        seed = scenario.seed
        train, test = split_for(scenario)
        self.codec_cfg = scenario.codec_config(train.image_size_px, train.num_classes)
        self.profiles = scenario.profiles(self.codec_cfg)
        parts = self._partition(train, np.random.default_rng([seed, _PARTITION]))
        t = scenario.training
        # what each UE gathers over the run; a streaming UE gathers its share in a random order (the data set is
        # sorted by class, so its first samples would otherwise be of one class)
        self.shares = [
            train.subset(
                idx if ue.samples_per_round == 0 else np.random.default_rng([seed, _STREAM, i]).permutation(idx)
            )
            for i, (ue, idx) in enumerate(zip(scenario.ues, parts, strict=True))
        ]
        self.local = [
            LocalUe(p.name, self._held(i, 0), t.symbol_snr_db(p.snr_db),
                    torch.Generator().manual_seed(seed * 1000 + _UE + i))
            for i, p in enumerate(self.profiles)
        ]  # fmt: skip
        self.airtime = scenario.airtime()
        model = SemanticCodec(self.codec_cfg, torch.Generator().manual_seed(seed * 1000 + _MODEL))
        bs_generator = torch.Generator().manual_seed(seed * 1000 + _BS)
        sizes = [len(u.data) for u in self.local]
        self.policy_inputs = policy_inputs(
            scenario, self.codec_cfg, self.airtime, {u.name: len(u.data) for u in self.local}
        )
        self.scheme = scheme if isinstance(scheme, Scheme) else build_scheme(scheme, scenario, self.policy_inputs)
        rounds = scenario.round_config(self.codec_cfg)
        split = rounds.split_gradient or self.scheme.split_gradient  # the scenario's option, or the scheme's
        rounds = dataclasses.replace(rounds, split_gradient=split)
        runner = RoundRunner(model, rounds, self.profiles, sizes, bs_generator)
        eval_snrs = [t.symbol_snr_db(p.snr_db) for p in self.profiles]
        self.bs_training = LearningBs(t, runner, test, eval_snrs_db=eval_snrs, assumed_snr_db=0.0,
                                      airtime=self.airtime, fixed_profiles=True,
                                      eval_seed=seed * 1000 + _EVAL)  # fmt: skip
        self.ue_training = [LearningUe(u, self.codec_cfg, t.local_training, split=split) for u in self.local]
        self.air = engine_air(scenario)
        self.link_rng = np.random.default_rng([seed, _LINK])
        self.totals = Totals()
        self.network: Network | None = None
        self.ue_cores: list[UeCore] = []
        self.records: list[dict[str, Any]] = []

    def _recorded(self, record: dict[str, Any]) -> None:
        """A round's record: keep it, and the BS core's state as of now (between rounds), as the daemon
        checkpoints it (the network may open the next round within the same step); then the streaming UEs
        gather their next samples."""
        self.records.append(record)
        self._core_state = self.bs_core.state_dict()
        self._gather(self.runner.round_index)

    def _held(self, index: int, round_index: int) -> ImageDataset:
        share = self.shares[index]
        n = self.scenario.held_samples(index, len(share), round_index)
        return share if n == len(share) else share.subset(np.arange(n))

    def _gather(self, round_index: int) -> None:
        """Each streaming UE holds its samples of ``round_index``; the BS knows the new counts (as a UE's
        registration reports them), so a centralized_full UE uploads the new ones in that round."""
        for i, ue in enumerate(self.scenario.ues):
            if ue.samples_per_round == 0:
                continue
            self.local[i].data = self._held(i, round_index)
            self.runner.update_ue(self.runner.profiles[i], len(self.local[i].data))
            if self.ue_cores:
                self.ue_cores[i].first_info.num_local_samples = len(self.local[i].data)

    @property
    def runner(self) -> RoundRunner:
        return self.bs_training.runner

    def _partition(self, train: ImageDataset, rng: np.random.Generator) -> list[np.ndarray]:
        d = self.scenario.training
        labels = train.labels.numpy()
        shares = [u.data_share for u in self.scenario.ues]
        if d.partition == "iid":
            return partition.iid(labels, shares, rng)
        if d.partition == "dirichlet":
            return partition.dirichlet(labels, shares, d.dirichlet_alpha, rng)
        return partition.weak_exclusive(labels, shares, [p.weak for p in self.profiles], d.exclusive_classes, rng)

    # --- the network ----------------------------------------------------------------------------------
    def _build_network(self, state: dict[str, Any] | None = None) -> Network:
        """BS and UE cores on a fresh network; from ``state`` (a checkpoint) the BS's measurements, the round
        counter and the clock continue: the network starts two control latencies before the next round, so
        the UEs' registration ends just when it is due."""
        sc = self.scenario
        link = build_link(self.medium, sc, self.profiles, self.link_rng)
        net = Network(self.air, link, sc.clock.control_latency_s, self._recorded, self.executor)
        bs = bs_section(sc)
        deadline = self.scheme.deadline_s
        core = BsCore(bs, self.air, self.bs_training, assigner_for(self.scheme, self.profiles, self.runner),
                      now=net.now, cursor=net.cursor, wall=net.now,
                      deadline_s=deadline if deadline is not None else bs.deadline_s, ue_chooses=True)  # fmt: skip
        net.add_bs(core, bs_job_time(self.runner.cfg.clock))
        self.bs_core = core
        self.ue_cores = []
        terms = self.policy_inputs.terms or {}
        for i, (prof, training) in enumerate(zip(self.profiles, self.ue_training, strict=True)):
            choices = ChoiceInputs(self.policy_inputs.work, lambda num_ues: self.airtime, terms[prof.name])  # one air
            first_info = EngineFirstInfo(prof, len(self.local[i].data), choices)
            ue = UeCore(prof.name, i + 1, self.air, training, first_info, now=net.now, cursor=net.cursor,
                        airtime=self.airtime)  # fmt: skip
            net.add_ue(ue, ue_job_time(first_info), prof.tx_power_dbm)
            self.ue_cores.append(ue)
        if state is not None:
            core.load_state_dict(state["bs_core"], next_round_s=state["clock_samples"] / self.air.sample_rate_hz)
            net.clock = max(0, state["clock_samples"] - 2 * net.latency)
        net.start()
        return net

    # --- running ---------------------------------------------------------------------------------------
    @property
    def rounds_done(self) -> int:
        return self.runner.round_index

    def start(self, *, overwrite: bool = True) -> list[dict]:
        """Begin a fresh run in ``out_dir``; returns no history.

        An earlier run there (metrics or checkpoint) is replaced if ``overwrite``, else refused."""
        if self.out_dir is not None:
            earlier = [p.name for p in (self.out_dir / METRICS_FILE, self.out_dir / CHECKPOINT_FILE) if p.exists()]
            if earlier and not overwrite:
                resume = "pass --resume to continue it, " if CHECKPOINT_FILE in earlier else ""
                raise ConfigError(
                    f"{self.out_dir} holds an earlier run ({', '.join(earlier)}); {resume}pass --overwrite to "
                    "replace it, or choose another --out"
                )
            self.out_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(self.out_dir)
            (self.out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
            write_atomic(self.out_dir / METRICS_FILE, b"")
        self.network = self._build_network()
        return []

    def step(self) -> dict[str, Any]:
        """Run the next round through the cores, log and checkpoint it; returns its metrics."""
        if self.network is None:
            self.network = self._build_network()
        before = len(self.records)
        try:
            self.network.run(lambda: len(self.records) > before, max_s=MAX_ROUND_S)
        except LinkError as exc:
            waiting = ", ".join(self.bs_core.waiting_for) or "the BS's training step"
            raise LinkError(f"round {self.rounds_done}: {exc}; still waiting for {waiting}") from exc
        metrics = self._metrics(self.records[-1])
        if self.out_dir is not None:
            append_jsonl(self.out_dir / METRICS_FILE, metrics)  # first: a round in the checkpoint has its line
            self._checkpoint()
        return metrics

    def run(self, rounds: int, *, resume: bool = False) -> list[dict]:
        """Run until ``rounds`` rounds are done (continuing the checkpoint if ``resume``); all metrics."""
        history = self.resume() if resume else self.start()
        while self.rounds_done < rounds:
            history.append(self.step())
        return history

    def _metrics(self, record: dict[str, Any]) -> dict[str, Any]:
        net, t = self.network, self.totals
        assert net is not None
        learned = record.get("training", {})
        if "accuracy" not in learned:  # skipped or failed: the model is the one before the round
            bs = self.bs_training
            accuracy, loss, per_class = evaluate_classes(bs.model, bs.test, bs.eval_snrs_db, bs.eval_seed)
            learned = {**learned, "accuracy": accuracy, "loss": loss, "class_accuracy": per_class}
        round_time_s = (net.clock - t.clock_samples) / self.air.sample_rate_hz
        energy_j = sum(record.get("ue_energy_j", {}).values())
        uplink_bits = 8.0 * sum(u["bytes"] for u in record.get("uploads", {}).values())
        t.virtual_time_s += round_time_s
        t.energy_j += energy_j
        t.uplink_bits += uplink_bits
        t.clock_samples = net.clock
        modes = {ue: str(m) for ue, m in record.get("modes", {}).items()}
        leaked = [ue for ue in self.scenario.raw_forbidden() if modes.get(ue) == "centralized_full"]
        if leaked:  # a scheme that asks for them is refused when built; this is the last line of defence
            raise LearningError(f"round {record['round'] - 1}: {', '.join(leaked)} put in centralized_full, but "
                                "their raw samples may not leave them")  # fmt: skip
        late = [ue for ue in record["participants"] if ue not in record["done"] and modes.get(ue) != "idle"]
        return {
            "scheme": self.scheme.name,
            "medium": self.medium,
            "round": record["round"] - 1,
            "clock": "virtual",
            "outcome": record.get("outcome"),
            "accuracy": learned.get("accuracy"),
            "loss": learned.get("loss"),
            "class_accuracy": learned.get("class_accuracy"),
            "round_time_s": round_time_s,
            "virtual_time_s": t.virtual_time_s,
            "round_energy_j": energy_j,
            "energy_j": t.energy_j,
            "round_uplink_bits": uplink_bits,
            "uplink_bits": t.uplink_bits,
            "raw_samples": sum(self.runner.raw_uploaded),  # raw samples the BS holds so far (what left the UEs)
            "modes": modes,
            "late": late,
            "refused": learned.get("refused", {}),
            "broadcast_mcs": record.get("broadcast_mcs"),
            "uplink_mcs": record.get("uplink_mcs"),
            "broadcast_frames_sent": record.get("broadcast_frames_sent"),
            "ue_energy_j": record.get("ue_energy_j", {}),  # each UE's round against its per-round budget
            "ue_energy_budget_j": record.get("ue_energy_budget_j", {}),
            "ue_work": record.get("ue_work", {}),
            "analog": record.get("analog", {}),  # per symbol UE: analog frames sent / received, noise, SNR
        }

    # --- checkpoints -----------------------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed by this engine (the round count may change)."""
        fixed = msgspec.to_builtins(self.scenario)
        del fixed["run"]["rounds"]
        return {
            "scheme": self.scheme.name,
            "seed": self.scenario.seed,
            "medium": self.medium,
            "scenario_sha256": hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest(),
        }

    def _checkpoint(self) -> None:
        state = {
            "runner": self.runner.state_dict(),
            "ue_generators": [u.generator.get_state() for u in self.local],
            "ue_training": [u.state_dict() for u in self.ue_training],
            "totals": vars(self.totals).copy(),
            "link_rng": json.dumps(self.link_rng.bit_generator.state),
            "bs_core": self._core_state,
        }
        identity = {**self._identity(), "round": self.runner.round_index}
        save_checkpoint(self.out_dir / CHECKPOINT_FILE, state, identity)

    def resume(self) -> list[dict]:
        """Restore the checkpoint in ``out_dir``; returns the metrics of the rounds it covers.

        Refuses (:class:`StateError`, one line) a damaged checkpoint, one of another scheme, seed, medium or
        scenario, and a metrics log with fewer rounds than the checkpoint; drops a torn last metrics line."""
        path = None if self.out_dir is None else self.out_dir / CHECKPOINT_FILE
        if path is None or not path.exists():
            raise ConfigError(f"nothing to resume: no {CHECKPOINT_FILE} in {self.out_dir}; run without --resume")
        remove_stale_temps(self.out_dir)
        manifest, state = load_checkpoint(path, self._identity())
        try:
            self._gather(int(state["runner"]["round_index"]))  # the samples held then, before any raw refetch
            self.runner.load_state_dict(state["runner"], refetch=self._raw_block)
            for ue, g in zip(self.local, state["ue_generators"], strict=True):
                ue.generator.set_state(g)
            for training, saved in zip(self.ue_training, state["ue_training"], strict=True):
                training.load_state_dict(saved)
            totals = Totals(**state["totals"])
            self.link_rng.bit_generator.state = json.loads(state["link_rng"])
            self.network = self._build_network({**state, "clock_samples": totals.clock_samples})
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError, msgspec.ValidationError) as exc:
            detail = " ".join(str(exc).split())[:200]  # one line, whatever torch says
            raise StateError(f"checkpoint {path} does not fit this run ({type(exc).__name__}: {detail})") from exc
        done = self.runner.round_index
        if manifest.get("round") != done:
            raise StateError(f"checkpoint {path}: manifest says round {manifest.get('round')}, payload {done}")
        self.totals = totals
        history = read_jsonl(self.out_dir / METRICS_FILE)
        if len(history) < done or [m.get("round") for m in history[:done]] != list(range(done)):
            raise StateError(
                f"{self.out_dir / METRICS_FILE} does not hold rounds 0..{done - 1} of the checkpoint; "
                "start a fresh run with another --out"
            )
        history = history[:done]  # a round logged but not checkpointed is run again
        write_atomic(self.out_dir / METRICS_FILE, "".join(json.dumps(m) + "\n" for m in history).encode())
        return history

    def _raw_block(self, index: int, count: int) -> ImageDataset:
        """The first ``count`` raw samples UE ``index`` uploaded before the checkpoint: the same bytes through
        the same wire format (8-bit pixels), with no airtime charged."""
        cfg = self.codec_cfg
        data = wire.encode_raw(self.local[index].raw(0, count), 0, 0)
        return wire.decode_raw(data, self.local[index].name, cfg.image_size_px, cfg.num_classes, (0, count))
