"""``testbed bs --config FILE`` and ``testbed ue --config FILE``: the two daemons (docs/nodes.md).

Logs are JSON lines on stderr; SIGTERM or SIGINT ends a daemon gracefully (BYE, radio closed, exit 0).
Under systemd (``Type=notify``) they report READY=1, WATCHDOG=1 and STOPPING=1.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from testbed.learning.spec import TrainingSpec
    from testbed.node.assigners import Assigner
    from testbed.node.config import BsConfig
    from testbed.node.encoder_ue import EncoderUe
    from testbed.node.step import BsTraining
    from testbed.node.training import LearningUe


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, what in (("bs", "the base-station daemon"), ("ue", "a UE agent daemon")):
        parser = subparsers.add_parser(
            name,
            help=f"run {what} (control plane + radio; rounds with deadlines)",
            description=f"Run {what}. Config: TOML with [{name}], [air], [radio], [control] "
            "(examples in firmware_cfg/nodes/). Stops on SIGTERM/SIGINT.",
        )
        parser.add_argument("--config", required=True, help="daemon config TOML")
        parser.set_defaults(func=_run_bs if name == "bs" else _run_ue)


def _run_bs(args: argparse.Namespace) -> int:
    from testbed.node.bs import BsDaemon
    from testbed.node.config import BsConfig, load_config
    from testbed.node.runtime import setup_logging, stop_on_signals
    from testbed.node.sdnotify import Notifier

    cfg = load_config(args.config, BsConfig)
    setup_logging("bs", args.verbose)
    training, assigner = _bs_training(cfg)
    return BsDaemon(cfg, training, stop_on_signals(), Notifier(), assigner).run()


def _bs_training(cfg: BsConfig) -> tuple[BsTraining, Assigner | None]:
    """The placeholder without [training]; else the method, with ASSIGN from the policy if [assign] names one."""
    from testbed.node.assigners import daemon_policy_assigner
    from testbed.node.training import LearningBs, PlaceholderBs

    if cfg.training is None:
        return PlaceholderBs(cfg.bs.model_size_bytes, cfg.bs.seed), None
    training = LearningBs.for_ues(cfg.training, list(cfg.bs.ues), cfg.air, cfg.assign.assumed_snr_db, cfg.bs.board)
    if not cfg.assign.policy:
        return training, None
    assigner = daemon_policy_assigner(
        cfg.assign,
        cfg.training,
        training.codec,
        airtime=training.airtime,  # the BS's own clock prices raw data against symbols and sizes the allocation
        horizon_rounds=cfg.bs.num_rounds or None,
        shard_samples=training.runner.registered,
    )
    return training, assigner


def _run_ue(args: argparse.Namespace) -> int:
    from testbed.node.config import UeConfig, load_config
    from testbed.node.first_info import ChoiceInputs, UeFirstInfo
    from testbed.node.runtime import setup_logging, stop_on_signals
    from testbed.node.sdnotify import Notifier
    from testbed.node.ue import UeDaemon
    from testbed.policy.work import codec_work_sizes

    cfg = load_config(args.config, UeConfig)
    setup_logging(cfg.ue.ue_id, args.verbose)
    if cfg.training is None:
        from testbed.node.training import PlaceholderUe

        return UeDaemon(cfg, PlaceholderUe(cfg.ue.ue_id, cfg.ue.upload_size_bytes), stop_on_signals(), Notifier()).run()
    t = cfg.training
    training = _ue_training(t, cfg.ue.ue_id, cfg.ue.shard)
    work = codec_work_sizes(training.codec, t.local_training, t.raw_block_samples)  # as the BS's policy prices it
    choice_inputs = ChoiceInputs(work, cfg.air.airtime)
    first_info = UeFirstInfo(cfg.ue, training.model, training.num_samples, choice_inputs=choice_inputs)
    return UeDaemon(cfg, training, stop_on_signals(), Notifier(), first_info).run()


def _ue_training(t: TrainingSpec, ue_id: str, shard: int) -> LearningUe | EncoderUe:
    """The method's UE where torch is installed (every mode); else the UE without torch (the centralized modes
    only: a board installed without the learn extra, docs/nodes.md "Memory")."""
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        from testbed.node.encoder_ue import EncoderUe

        return EncoderUe.for_shard(t, ue_id, shard)
    from testbed.node.training import LearningUe

    return LearningUe.for_shard(t, ue_id, shard)
