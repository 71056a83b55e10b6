"""Typed scenario configuration, loaded from TOML and validated (units in every name).

A scenario fixes the training (``[training]``: the one training spec of testbed/learning/spec.py, as in
node configs), what is run (``[run]``), the PHY used for airtime, the clock's fixed costs and the UEs.
``scenarios/default.toml`` is the heterogeneous default (10 UEs, 4 weak).
Each UE (and the BS, ``[clock] bs_board``) names a board of the one board table, testbed/policy/profiles.toml:
its maximum clock, kappa and ``cycles_per_mac``, turned into ``cycles_per_sample`` for the configured codec
(3 x forward MACs per training sample), so a different codec size is charged consistently.
Each UE's link is ``snr_db`` (mean Es/N0 per data subcarrier) over a ``channel``: "flat" (the default), or
"multipath", the exponential-profile Rayleigh/Rician tapped delay line of ``testbed phy ber`` and the hub
(testbed/channel/multipath.py; ``rms_delay_spread_samples``, ``k_factor_db``), one quasi-static draw per UE from
the seed, scaled to mean gain 1; the airtime model charges it by its EESM effective SNR (docs/learning.md).
What each UE's data allow (docs/learning.md, "Regimes"): ``raw_upload_allowed`` (default true; false: its raw
samples never leave it, so no scheme may put it in centralized_full) and ``samples_per_round`` (default 0: it
holds its whole share from round 0; n > 0: it gathers n new samples of its share per round, holding
min(share, (r + 1) n) in round r, so a one-time raw upload no longer covers the future).
``with_regime`` rewrites every UE's privacy or data rate at once (``--privacy``, ``--samples-per-round``).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import numpy as np

from testbed.channel.multipath import Multipath
from testbed.errors import ConfigError
from testbed.experiment.privacy import PRIVACY_SETTINGS, raw_allowed
from testbed.learning.assignment import UeProfile
from testbed.learning.codec_config import CodecConfig, train_macs
from testbed.learning.rounds import RoundConfig
from testbed.learning.spec import RETIRED_TRAINING_FIELDS, TrainingSpec, refuse_retired
from testbed.link.airtime import (
    DEFAULT_ANALOG_FRAME_SYMBOLS,
    DEFAULT_FRAME_PAYLOAD_BYTES,
    DEFAULT_GUARD_SAMPLES,
    DEFAULT_TDMA_CYCLE_SAMPLES,
    LinkAirtime,
    channel_gain,
    default_errors,
)
from testbed.node.jobtime import bs_clock
from testbed.phy.numerology import PhyConfig
from testbed.policy.assign import DEFAULT_DEADLINE_FACTOR
from testbed.policy.profiles import UeProfile as Board
from testbed.policy.profiles import default_profiles

DEFAULT_SCENARIO = Path(__file__).parent / "scenarios" / "default.toml"
#: Top-level names of the older scenario schema -> where the fact lives now.
RETIRED_SCENARIO_SECTIONS: dict[str, str] = {
    "seed": "[training] seed",
    "data": "[training] (dataset, test_fraction, partition, dirichlet_alpha, exclusive_classes)",
    "codec": "[training] (num_symbols, encoder_channels, decoder_hidden, recon_weight, snr_side_info)",
    "boards": "[[ues]] board = a name in testbed/policy/profiles.toml (the one board table)",
}
CHANNELS = ("flat", "multipath")  # a UE's [[ues]] channel
#: Seed stream of the UEs' channel draws, apart from engine.py's (split 1, partition 2, model 3, BS 4, eval 5, UE 100+)
CHANNEL_SEED_STREAM = 6
MAX_RMS_DELAY_SPREAD_SAMPLES = 64.0  # as the hub's scenario (testbed/radio/scenario.py); 16-sample CP at 64


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{owner}: {name}={value!r} must be a finite positive number")


class RunSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What ``compare`` runs and aims for: ``rounds`` per scheme, ``target_accuracy`` for the time/energy-to-target
    figures, ``deadline_s`` of the fedavg_deadline baseline (stragglers dropped)."""

    rounds: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 60
    target_accuracy: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.9
    deadline_s: Annotated[float, msgspec.Meta(gt=0.0, le=86400.0)] = 1.0


class LinkSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """PHY/link parameters of the airtime model (testbed/link/airtime.py): frames, and the shared medium's TDMA
    cycle with the same names and units as the daemons' [air] (node/config.py AirConfig): every
    ``tdma_cycle_samples`` the BS's downlink slot, then one equal slot per UE, ``guard_samples`` between."""

    sample_rate_hz: float = 2_500_000.0
    frame_payload_bytes: int = DEFAULT_FRAME_PAYLOAD_BYTES
    analog_frame_symbols: int = DEFAULT_ANALOG_FRAME_SYMBOLS
    tdma_cycle_samples: int = DEFAULT_TDMA_CYCLE_SAMPLES
    guard_samples: int = DEFAULT_GUARD_SAMPLES

    def __post_init__(self) -> None:
        _positive("link", sample_rate_hz=self.sample_rate_hz, tdma_cycle_samples=self.tdma_cycle_samples)
        if self.guard_samples < 0:
            raise ValueError(f"link: guard_samples={self.guard_samples!r} must be >= 0")


class MediumSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What carries the frames (testbed/experiment/media.py): "model", the PER table this receiver measured and
    exact burst lengths (fast), or "phy", every frame through the real modem, the channel models and the
    receiver. ``testbed train`` / ``compare --medium`` override it."""

    kind: Literal["model", "phy"] = "model"


class PolicySection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Settings of the policy schemes (testbed/policy): ``raw_upload_budget_s`` is the uplink airtime a weak UE
    may always spend once on its raw data, whatever the cost comparison says (0: none); ``deadline_factor`` is
    the allocator's deadline as a multiple of the shortest round (1: fastest rounds; more: less energy per
    round, longer rounds; default DEFAULT_DEADLINE_FACTOR). docs/policy.md."""

    raw_upload_budget_s: float = 0.0
    deadline_factor: float = DEFAULT_DEADLINE_FACTOR

    def __post_init__(self) -> None:
        if not (math.isfinite(self.raw_upload_budget_s) and self.raw_upload_budget_s >= 0):
            raise ValueError(f"policy.raw_upload_budget_s={self.raw_upload_budget_s!r} must be finite and >= 0")
        if not (math.isfinite(self.deadline_factor) and self.deadline_factor >= 1):
            raise ValueError(
                f"policy.deadline_factor={self.deadline_factor!r} must be finite and >= 1 (1: the shortest round)"
            )


class ClockSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``bs_board``: the board the BS trains on (profiles.toml), at its maximum clock."""

    control_latency_s: float = 0.01
    bs_board: str = "laptop"

    def __post_init__(self) -> None:
        _board(self.bs_board, "clock.bs_board")


def _board(name: str, field: str) -> Board:
    profiles = default_profiles()
    if name not in profiles.profiles:
        names = ", ".join(profiles.profiles)
        raise ValueError(f"{field}={name!r} is not a board of testbed/policy/profiles.toml ({names})")
    return profiles.get(name)


class UeSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    board: str
    weak: bool
    snr_db: float
    tx_power_dbm: float
    data_share: float = 1.0
    channel: str = "flat"
    rms_delay_spread_samples: float | None = None  # multipath only: rms delay spread of the mean profile
    k_factor_db: float | None = None  # multipath only: Rician K of the first tap; unset = Rayleigh
    raw_upload_allowed: bool = True  # false: raw samples never leave this UE (privacy)
    samples_per_round: int = 0  # new samples gathered per round (streaming); 0: the whole share from round 0

    def __post_init__(self) -> None:
        where = f"ues {self.name}"
        if self.samples_per_round < 0:
            raise ValueError(
                f"{where}: samples_per_round={self.samples_per_round} must be >= 0 (new samples per round; "
                "0: all its data from round 0)"
            )
        if self.channel not in CHANNELS:
            raise ValueError(f"{where}: channel={self.channel!r} is not one of {', '.join(CHANNELS)}")
        if self.channel == "flat":
            for field in ("rms_delay_spread_samples", "k_factor_db"):
                if getattr(self, field) is not None:
                    raise ValueError(f'{where}: {field} is for channel = "multipath"; remove it or set the channel')
            return
        tau = self.rms_delay_spread_samples
        if tau is None or not (math.isfinite(tau) and 0 < tau <= MAX_RMS_DELAY_SPREAD_SAMPLES):
            raise ValueError(
                f'{where}: channel = "multipath" needs rms_delay_spread_samples in (0, '
                f"{MAX_RMS_DELAY_SPREAD_SAMPLES:g}], got {tau!r}"
            )
        k = self.k_factor_db
        if k is not None and not (math.isfinite(k) and -30.0 <= k <= 60.0):
            raise ValueError(f"{where}: k_factor_db={k!r} must be in [-30, 60] dB (or unset for Rayleigh)")


class Scenario(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole scenario; ``load_scenario`` builds and validates it."""

    name: str
    ues: list[UeSection]
    training: TrainingSpec = TrainingSpec()
    run: RunSection = RunSection()
    link: LinkSection = LinkSection()
    clock: ClockSection = ClockSection()
    policy: PolicySection = PolicySection()
    medium: MediumSection = MediumSection()

    def __post_init__(self) -> None:
        if not self.ues:
            raise ValueError("a scenario needs at least one [[ues]] entry")
        for ue in self.ues:
            _board(ue.board, f"ues {ue.name}: board")
        if len({ue.name for ue in self.ues}) != len(self.ues):
            raise ValueError("UE names must be unique")
        if self.training.num_shards:
            raise ValueError("training.num_shards is for the daemons; a scenario cuts one shard per [[ues]] entry")

    @property
    def seed(self) -> int:
        """The run's seed (``[training] seed``)."""
        return self.training.seed

    # --- typed configs for the layers below ------------------------------------------------------------
    def codec_config(self, image_size_px: int, num_classes: int) -> CodecConfig:
        return self.training.codec_config(image_size_px, num_classes)

    def round_config(self, codec: CodecConfig) -> RoundConfig:
        t, c = self.training, self.clock
        _board(c.bs_board, "clock.bs_board")  # an unknown board is refused with the field named
        return RoundConfig(
            work=t.local_training,
            server=t.server,
            clock=bs_clock(c.bs_board, codec, c.control_latency_s),
            raw_block_samples=t.raw_block_samples,
            norm_factor=t.norm_factor,
            split_gradient=t.split_gradient,
        )

    def channel_gains(self) -> list[tuple[float, ...] | None]:
        """Per UE, its channel's |H_k|^2 on the data subcarriers (mean 1), None for a flat one. A multipath UE
        gets one draw from its own stream [seed, CHANNEL_SEED_STREAM, index]: same seed, same channels."""
        phy, out = self.phy_config(), []
        for i, ue in enumerate(self.ues):
            if ue.channel == "flat":
                out.append(None)
                continue
            rng = np.random.default_rng([self.seed, CHANNEL_SEED_STREAM, i])
            taps = Multipath(float(ue.rms_delay_spread_samples), rng, ue.k_factor_db, block_fading=False).taps
            out.append(channel_gain(phy, taps))
        return out

    def profiles(self, codec: CodecConfig) -> list[UeProfile]:
        """The UEs as the learning layer sees them: their board at its maximum clock (nominal = maximum), their
        channel drawn (``channel_gains``)."""
        out = []
        for ue, gain in zip(self.ues, self.channel_gains(), strict=True):
            b = _board(ue.board, f"ues {ue.name}: board")
            out.append(
                UeProfile(
                    ue.name,
                    ue.weak,
                    ue.snr_db,
                    ue.tx_power_dbm,
                    b.cpu_freq_max_hz,
                    b.cpu_freq_max_hz,
                    b.cycles_per_mac * train_macs(codec),
                    b.kappa_j_per_cycle_hz2,
                    ue.board,
                    gain,
                )  # fmt: skip
            )
        return out

    def raw_forbidden(self) -> list[str]:
        """Names of the UEs whose raw samples may not leave them."""
        return [ue.name for ue in self.ues if not ue.raw_upload_allowed]

    def held_samples(self, index: int, share: int, round_index: int) -> int:
        """Samples UE ``index`` holds in round ``round_index`` out of its ``share`` (the module docstring)."""
        rate = self.ues[index].samples_per_round
        return share if rate == 0 else min(share, (round_index + 1) * rate)

    def phy_config(self) -> PhyConfig:
        return PhyConfig(sample_rate_hz=self.link.sample_rate_hz)

    def airtime(self) -> LinkAirtime:
        """The shared medium of this scenario's UEs (ConfigError if a slot cannot hold one frame)."""
        k = self.link
        try:
            return LinkAirtime(
                self.phy_config(), len(self.ues), frame_payload_bytes=k.frame_payload_bytes,
                tdma_cycle_samples=k.tdma_cycle_samples, guard_samples=k.guard_samples,
                analog_frame_symbols=k.analog_frame_symbols,
            )  # fmt: skip
        except ConfigError as exc:
            raise ConfigError(f"[link] {exc}") from exc


def with_regime(scenario: Scenario, privacy: str = "file", samples_per_round: int | None = None) -> Scenario:
    """``scenario`` with every UE's privacy set by ``privacy`` (a key of privacy.PRIVACY_SETTINGS) and, unless
    None, every UE's ``samples_per_round``. ConfigError names the bad value."""
    if privacy not in PRIVACY_SETTINGS:
        raise ConfigError(f"privacy={privacy!r} is not one of {', '.join(PRIVACY_SETTINGS)}")
    if samples_per_round is not None and samples_per_round < 0:
        raise ConfigError(f"samples_per_round={samples_per_round} must be >= 0 (0: all data from round 0)")
    ues = []
    for ue in scenario.ues:
        allowed = raw_allowed(privacy, ue.weak, ue.raw_upload_allowed)
        rate = ue.samples_per_round if samples_per_round is None else samples_per_round
        ues.append(msgspec.structs.replace(ue, raw_upload_allowed=allowed, samples_per_round=rate))
    return msgspec.structs.replace(scenario, ues=ues)


def load_scenario(
    path: Path | str = DEFAULT_SCENARIO, overrides: Mapping[str, Mapping[str, object]] | None = None
) -> Scenario:
    """Read and validate a scenario TOML; ``overrides`` replace fields per section, e.g. {"run": {"rounds": 5}}.
    Sections and fields of the older schema ([data], [codec], [boards], top-level seed, [training] lr ...) are
    refused with where the fact lives now."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read scenario {path}: {exc}") from exc
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    refuse_retired(raw, RETIRED_SCENARIO_SECTIONS, f"scenario {path}")
    refuse_retired(raw.get("training", {}), RETIRED_TRAINING_FIELDS, f"scenario {path}: [training]")
    try:
        scenario = msgspec.convert(raw, Scenario)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"scenario {path}: {exc}") from exc
    default_errors(scenario.phy_config())  # a broken PER table is its own error, naming its file, not the scenario
    try:
        scenario.airtime()  # refuses a shared medium whose slots cannot hold one frame
    except ConfigError as exc:
        raise ConfigError(f"scenario {path}: {exc}") from exc
    return scenario
