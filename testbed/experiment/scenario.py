"""Typed scenario configuration, loaded from TOML and validated (units in every name).

A scenario fixes the data, the codec, the training hyper-parameters, the PHY used for airtime, the
clock's fixed costs, the board classes and the UEs. ``scenarios/default.toml`` is the heterogeneous
default (10 UEs, 4 weak). Compute speed is given per board as ``cycles_per_mac`` and turned into
``cycles_per_sample`` for the configured codec (3 x forward MACs per training sample), so a different
codec size is charged consistently.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path

import msgspec

from testbed.errors import ConfigError
from testbed.learning.aggregate import ServerOptimizerConfig
from testbed.learning.assignment import UeProfile
from testbed.learning.clock import ClockConfig
from testbed.learning.codec import CodecConfig, forward_macs
from testbed.learning.modes import LocalTraining
from testbed.learning.rounds import RoundConfig
from testbed.link.airtime import (
    DEFAULT_ANALOG_FRAME_SYMBOLS,
    DEFAULT_FRAME_PAYLOAD_BYTES,
    DEFAULT_GUARD_SAMPLES,
    DEFAULT_TDMA_CYCLE_SAMPLES,
    LinkAirtime,
)
from testbed.phy.numerology import PhyConfig
from testbed.policy.assign import DEFAULT_DEADLINE_FACTOR

DEFAULT_SCENARIO = Path(__file__).parent / "scenarios" / "default.toml"
TRAIN_MACS_PER_FORWARD_MAC = 3.0  # forward + backward ~ 3x forward (see codec.compute_fractions)


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{owner}: {name}={value!r} must be a finite positive number")


class DataSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """dataset: mnist | digits | folder:<path>; partition: iid | dirichlet | weak_exclusive."""

    dataset: str = "mnist"
    test_fraction: float = 0.2
    partition: str = "iid"
    dirichlet_alpha: float = 0.5
    exclusive_classes: list[int] = msgspec.field(default_factory=lambda: [6, 7, 8, 9])

    def __post_init__(self) -> None:
        if self.partition not in ("iid", "dirichlet", "weak_exclusive"):
            raise ValueError(f"data.partition={self.partition!r}; use iid, dirichlet or weak_exclusive")


class CodecSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    num_symbols: int = 16
    encoder_channels: tuple[int, int] = (8, 16)
    decoder_hidden: int = 128
    recon_weight: float = 0.0
    snr_side_info: bool = False


class TrainingSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-round work, server optimizer, guards, and what ``compare`` runs and aims for."""

    rounds: int = 60
    local_steps: int = 5
    batch_size: int = 32
    local_lr: float = 0.1
    server_optimizer: str = "sgd"
    server_lr: float = 0.1
    server_momentum: float = 0.9
    raw_block_samples: int = 0
    norm_factor: float = 10.0
    target_accuracy: float = 0.9
    deadline_s: float = 1.0

    def __post_init__(self) -> None:
        if self.rounds < 1 or not 0 < self.target_accuracy <= 1:
            raise ValueError("training.rounds must be >= 1 and target_accuracy in (0, 1]")
        _positive("training", deadline_s=self.deadline_s)


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
    control_latency_s: float = 0.01
    bs_cpu_freq_hz: float = 3.0e9
    bs_cycles_per_mac: float = 0.42


class Board(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A board class: nominal and maximum CPU clock, effective cycles per MAC, CMOS kappa [J/(cycle Hz^2)]."""

    cpu_freq_hz: float
    max_cpu_freq_hz: float
    cycles_per_mac: float
    kappa: float

    def __post_init__(self) -> None:
        _positive(
            "board", cpu_freq_hz=self.cpu_freq_hz, max_cpu_freq_hz=self.max_cpu_freq_hz,
            cycles_per_mac=self.cycles_per_mac, kappa=self.kappa,
        )  # fmt: skip


class UeSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    board: str
    weak: bool
    snr_db: float
    tx_power_dbm: float
    data_share: float = 1.0


class Scenario(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole scenario; ``load_scenario`` builds and validates it."""

    name: str
    seed: int
    boards: dict[str, Board]
    ues: list[UeSection]
    data: DataSection = DataSection()
    codec: CodecSection = CodecSection()
    training: TrainingSection = TrainingSection()
    link: LinkSection = LinkSection()
    clock: ClockSection = ClockSection()
    policy: PolicySection = PolicySection()

    def __post_init__(self) -> None:
        if not self.ues:
            raise ValueError("a scenario needs at least one [[ues]] entry")
        for ue in self.ues:
            if ue.board not in self.boards:
                raise ValueError(f"UE {ue.name}: board {ue.board!r} is not one of {sorted(self.boards)}")
        if len({ue.name for ue in self.ues}) != len(self.ues):
            raise ValueError("UE names must be unique")

    # --- typed configs for the layers below ------------------------------------------------------------
    def codec_config(self, image_size_px: int, num_classes: int) -> CodecConfig:
        c = self.codec
        return CodecConfig(
            image_size_px,
            c.num_symbols,
            num_classes,
            tuple(c.encoder_channels),
            c.decoder_hidden,
            c.recon_weight,
            c.snr_side_info,
        )

    def round_config(self, codec: CodecConfig) -> RoundConfig:
        t, c = self.training, self.clock
        return RoundConfig(
            work=LocalTraining(t.local_steps, t.batch_size, t.local_lr),
            server=ServerOptimizerConfig(t.server_optimizer, t.server_lr, t.server_momentum),
            clock=ClockConfig(
                control_latency_s=c.control_latency_s,
                bs_cpu_freq_hz=c.bs_cpu_freq_hz,
                bs_cycles_per_sample=c.bs_cycles_per_mac * _train_macs(codec),
            ),
            raw_block_samples=t.raw_block_samples,
            norm_factor=t.norm_factor,
        )

    def profiles(self, codec: CodecConfig) -> list[UeProfile]:
        out = []
        for ue in self.ues:
            b = self.boards[ue.board]
            out.append(
                UeProfile(
                    ue.name,
                    ue.weak,
                    ue.snr_db,
                    ue.tx_power_dbm,
                    b.cpu_freq_hz,
                    b.max_cpu_freq_hz,
                    b.cycles_per_mac * _train_macs(codec),
                    b.kappa,
                )  # fmt: skip
            )
        return out

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


def _train_macs(codec: CodecConfig) -> float:
    return TRAIN_MACS_PER_FORWARD_MAC * sum(forward_macs(codec))


def load_scenario(
    path: Path | str = DEFAULT_SCENARIO, overrides: Mapping[str, Mapping[str, object]] | None = None
) -> Scenario:
    """Read and validate a scenario TOML; ``overrides`` replace fields per section, e.g. {"training": {"rounds": 5}}."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read scenario {path}: {exc}") from exc
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    try:
        scenario = msgspec.convert(raw, Scenario)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"scenario {path}: {exc}") from exc
    try:
        scenario.airtime()  # refuses a shared medium whose slots cannot hold one frame
    except ConfigError as exc:
        raise ConfigError(f"scenario {path}: {exc}") from exc
    return scenario
