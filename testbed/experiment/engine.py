"""The fast in-process engine behind ``testbed train``: all UEs in one process, the channel simulated,
airtime from the PHY's frame sizes. It replaces only the radio and control plane with direct calls;
every round goes through ``testbed.learning.rounds.RoundRunner``.

Per round it appends one JSON line of metrics (fsynced) and then writes a verified checkpoint
(testbed/learning/checkpoint.py: manifest with scheme, seed, scenario hash and round; atomic) holding the
runner's state and every generator, so a resumed run continues exactly, and a damaged or foreign checkpoint is
refused with one line.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import torch

from testbed.errors import ConfigError, StateError
from testbed.experiment.airtime import LinkModel, PhyAirtime
from testbed.experiment.scenario import Scenario
from testbed.experiment.schemes import build_scheme, policy_inputs
from testbed.learning import partition
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
from testbed.learning.evaluate import evaluate
from testbed.learning.modes import LocalUe
from testbed.learning.rounds import RoundReport, RoundRunner
from testbed.learning.schemes import Scheme

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
# Seed offsets so data split, partition, model init, BS and each UE draw from independent streams.
_SPLIT, _PARTITION, _MODEL, _BS, _EVAL, _UE = 1, 2, 3, 4, 5, 100


def split_for(scenario: Scenario) -> tuple[ImageDataset, ImageDataset]:
    """The scenario's (train, test) split; the test part stays at the BS."""
    data = load_dataset(scenario.training.dataset)
    return train_test_split(data, scenario.training.test_fraction, np.random.default_rng([scenario.seed, _SPLIT]))


@dataclass
class Totals:
    """Running totals since round 0 (virtual clock)."""

    virtual_time_s: float = 0.0
    energy_j: float = 0.0
    uplink_bits: float = 0.0


class Engine:
    """One scheme on one scenario: build everything from the seed, run rounds, log, checkpoint, resume.

    ``scheme`` is a name from testbed/experiment/schemes.py (fixed baselines and policy variants, built for
    this run) or a ready ``Scheme`` (any ``AssignmentPolicy``)."""

    def __init__(self, scenario: Scenario, scheme: str | Scheme, out_dir: Path | None = None) -> None:
        self.scenario = scenario
        self.out_dir = Path(out_dir) if out_dir is not None else None
        seed = scenario.seed
        train, self.test = split_for(scenario)
        self.codec_cfg = scenario.codec_config(train.image_size_px, train.num_classes)
        self.profiles = scenario.profiles(self.codec_cfg)
        parts = self._partition(train, np.random.default_rng([seed, _PARTITION]))
        self.ues = [
            LocalUe(
                p.name,
                train.subset(idx),
                scenario.training.symbol_snr_db(p.snr_db),
                torch.Generator().manual_seed(seed * 1000 + _UE + i),
            )
            for i, (p, idx) in enumerate(zip(self.profiles, parts, strict=True))
        ]
        self.airtime = PhyAirtime(
            scenario.phy_config(),
            LinkModel(
                scenario.link.frame_payload_bytes,
                scenario.link.analog_frame_symbols,
                scenario.link.mcs_margin_db,
                scenario.link.per_slope_db_per_decade,
            ),
        )
        model = SemanticCodec(self.codec_cfg, torch.Generator().manual_seed(seed * 1000 + _MODEL))
        self.runner = RoundRunner(
            model,
            scenario.round_config(self.codec_cfg),
            self.profiles,
            self.ues,
            [len(u.data) for u in self.ues],
            self.airtime,
            torch.Generator().manual_seed(seed * 1000 + _BS),
        )
        self.policy_inputs = policy_inputs(
            scenario, self.codec_cfg, self.airtime, {u.name: len(u.data) for u in self.ues}
        )
        self.scheme = scheme if isinstance(scheme, Scheme) else build_scheme(scheme, scenario, self.policy_inputs)
        self.totals = Totals()
        self.eval_snrs = [scenario.training.symbol_snr_db(p.snr_db) for p in self.profiles]

    def _partition(self, train: ImageDataset, rng: np.random.Generator) -> list[np.ndarray]:
        d = self.scenario.training
        labels = train.labels.numpy()
        shares = [u.data_share for u in self.scenario.ues]
        if d.partition == "iid":
            return partition.iid(labels, shares, rng)
        if d.partition == "dirichlet":
            return partition.dirichlet(labels, shares, d.dirichlet_alpha, rng)
        return partition.weak_exclusive(labels, shares, [p.weak for p in self.profiles], d.exclusive_classes, rng)

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
        return []

    def step(self) -> dict[str, Any]:
        """Run the next round, log and checkpoint it; returns its metrics."""
        r = self.runner.round_index
        report = self.runner.run_round(self.scheme.policy.assign(r, self.profiles), self.scheme.deadline_s)
        metrics = self._metrics(report)
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

    def _metrics(self, report: RoundReport) -> dict[str, Any]:
        t = self.totals
        t.virtual_time_s += report.time_s
        t.energy_j += report.energy_j
        t.uplink_bits += report.uplink_bits
        accuracy, loss = evaluate(self.runner.model, self.test, self.eval_snrs, self.scenario.seed * 1000 + _EVAL)
        return {
            "scheme": self.scheme.name,
            "round": report.round_index,
            "clock": "virtual",
            "accuracy": accuracy,
            "loss": loss,
            "round_time_s": report.time_s,
            "virtual_time_s": t.virtual_time_s,
            "round_energy_j": report.energy_j,
            "energy_j": t.energy_j,
            "round_uplink_bits": report.uplink_bits,
            "uplink_bits": t.uplink_bits,
            "modes": report.modes,
            "late": report.late,
            "refused": report.refused,
        }

    # --- checkpoints -----------------------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed by this engine (the round count may change)."""
        fixed = msgspec.to_builtins(self.scenario)
        del fixed["run"]["rounds"]
        return {
            "scheme": self.scheme.name,
            "seed": self.scenario.seed,
            "scenario_sha256": hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest(),
        }

    def _checkpoint(self) -> None:
        state = {
            "runner": self.runner.state_dict(),
            "ue_generators": [u.generator.get_state() for u in self.ues],
            "totals": vars(self.totals).copy(),
        }
        identity = {**self._identity(), "round": self.runner.round_index}
        save_checkpoint(self.out_dir / CHECKPOINT_FILE, state, identity)

    def resume(self) -> list[dict]:
        """Restore the checkpoint in ``out_dir``; returns the metrics of the rounds it covers.

        Refuses (:class:`StateError`, one line) a damaged checkpoint, one of another scheme, seed or scenario,
        and a metrics log with fewer rounds than the checkpoint; drops a torn last metrics line."""
        path = None if self.out_dir is None else self.out_dir / CHECKPOINT_FILE
        if path is None or not path.exists():
            raise ConfigError(f"nothing to resume: no {CHECKPOINT_FILE} in {self.out_dir}; run without --resume")
        remove_stale_temps(self.out_dir)
        manifest, state = load_checkpoint(path, self._identity())
        try:
            self.runner.load_state_dict(state["runner"])
            for ue, g in zip(self.ues, state["ue_generators"], strict=True):
                ue.generator.set_state(g)
            totals = Totals(**state["totals"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
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
