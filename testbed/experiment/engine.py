"""The fast in-process engine behind ``testbed train``: all UEs in one process, the channel simulated,
airtime from the PHY's frame sizes. It replaces only the radio and control plane with direct calls;
every round goes through ``testbed.learning.rounds.RoundRunner``.

Per round it appends one JSON line of metrics and writes a checkpoint atomically (temp file, then
``os.replace``) holding the runner's state and every generator, so a resumed run continues exactly.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from testbed.errors import ConfigError
from testbed.experiment.airtime import LinkModel, PhyAirtime
from testbed.experiment.scenario import Scenario
from testbed.experiment.schemes import build_scheme, policy_inputs
from testbed.learning import partition
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

    def start(self) -> list[dict]:
        """Begin a fresh run (an existing metrics file in ``out_dir`` is emptied); returns no history."""
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / METRICS_FILE).write_text("")
        return []

    def step(self) -> dict[str, Any]:
        """Run the next round, log and checkpoint it; returns its metrics."""
        r = self.runner.round_index
        report = self.runner.run_round(self.scheme.policy.assign(r, self.profiles), self.scheme.deadline_s)
        metrics = self._metrics(report)
        if self.out_dir is not None:
            with (self.out_dir / METRICS_FILE).open("a") as f:
                f.write(json.dumps(metrics) + "\n")
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
    def _checkpoint(self) -> None:
        state = {
            "scheme": self.scheme.name,
            "runner": self.runner.state_dict(),
            "ue_generators": [u.generator.get_state() for u in self.ues],
            "totals": vars(self.totals).copy(),
        }
        path = self.out_dir / CHECKPOINT_FILE
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def resume(self) -> list[dict]:
        """Restore the checkpoint in ``out_dir``; returns the metrics of the rounds it covers."""
        if self.out_dir is None or not (self.out_dir / CHECKPOINT_FILE).exists():
            raise ConfigError(f"nothing to resume: no {CHECKPOINT_FILE} in {self.out_dir}; run without --resume")
        state = torch.load(self.out_dir / CHECKPOINT_FILE, weights_only=False)
        if state["scheme"] != self.scheme.name:
            raise ConfigError(f"checkpoint is for scheme {state['scheme']!r}, not {self.scheme.name!r}")
        self.runner.load_state_dict(state["runner"])
        for ue, g in zip(self.ues, state["ue_generators"], strict=True):
            ue.generator.set_state(g)
        self.totals = Totals(**state["totals"])
        done = self.runner.round_index
        lines = (self.out_dir / METRICS_FILE).read_text().splitlines()
        history = [json.loads(line) for line in lines if line.strip()][:done]
        (self.out_dir / METRICS_FILE).write_text("".join(json.dumps(m) + "\n" for m in history))
        return history
