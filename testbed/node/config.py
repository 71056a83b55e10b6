"""Typed TOML configuration of the two daemons (``testbed bs --config``, ``testbed ue --config``).

Three parts: ``[air]`` (the air interface; BS and UEs must agree on every field, as on the PHY numerology),
``[radio]`` (this node's radio backend) and ``[control]`` (this node's end of the ZeroMQ control plane), plus
``[bs]`` / ``[ue]`` for the daemon itself, and ``[training]``: the one training spec
(testbed/learning/spec.py), the same section as in scenario files. Every number carries its unit in its name;
msgspec checks bounds while decoding, so a config that loads is in range. Example files:
firmware_cfg/nodes/*.toml; reference: docs/nodes.md.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from testbed.control.config import ClientConfig, ServerConfig
from testbed.control.protocol import UE_ID_PATTERN
from testbed.control.security import CurveClientKeys, CurveServerKeys, Plaintext
from testbed.errors import ConfigError
from testbed.learning.spec import RETIRED_TRAINING_FIELDS, TrainingSpec, refuse_retired
from testbed.link.abstraction import report_effective_snr_db
from testbed.link.airtime import DEFAULT_ANALOG_FRAME_SYMBOLS, MOST_ROBUST_MCS, LinkAirtime, McsPolicy, default_errors
from testbed.link.messages import ChannelReport as LinkChannelReport
from testbed.link.segment import HEADER_BYTES, MAX_NODE_ID
from testbed.mode import Mode
from testbed.phy.layout import MAX_ANALOG_SYMBOLS, analog_burst_num_samples, burst_num_samples
from testbed.phy.mcs import CODED_MCS
from testbed.phy.numerology import MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ, PhyConfig
from testbed.policy.assign import DEFAULT_DEADLINE_FACTOR
from testbed.policy.profiles import default_profiles
from testbed.radio.pluto import check_uri

Seconds = Annotated[float, Meta(gt=0.0, le=86400.0)]
Samples = Annotated[int, Meta(ge=1, le=1 << 40)]
NodeId = Annotated[int, Meta(ge=1, le=MAX_NODE_ID)]  # link-layer id of a UE; the BS is node 0
BS_NODE_ID = 0
SOUNDING_OBJECT_ID = 0  # the BS's sounding burst before a first round: measured, never a download (rounds start at 1)
ADAPTIVE = "adaptive"


GROUPING_MCS = "qpsk-1/2"  # the MCS whose EESM beta maps measured channel coefficients to the grouping's SNR


class AirConfig(Struct, frozen=True, forbid_unknown_fields=True):
    """The air interface. BS and UEs must use identical values (a mismatch shows as lost frames).

    mcs : a coded MCS for every frame, or "adaptive": the BS picks the broadcast MCS from the weakest
        participant's CHANNEL_REPORT and each UE's uplink MCS from its own measurement of that UE's frames
        (the link's one chooser, link.airtime.McsPolicy, margin MCS_MARGIN_DB); unmeasured links use bpsk-1/2.
    window_samples : one radio receive block; the radio pump demodulates block by block.
    tdma_cycle_samples : the TDMA cycle: the BS's downlink slot, then one uplink slot per UE. ASSIGN's slot
        grant is an offset inside every cycle of the shared sample clock (the hub's clock in simulation).
    nack_quiet_samples : a receiver missing frames NACKs after one cycle plus this much silence from the
        sender (``quiet_samples``): a sender's slots are a cycle apart.
    realtime_factor : pace the sample clock at this multiple of real time (0: as fast as the peers allow).
    analog_frame_symbols : semantic symbols per analog frame (the airtime model's figure; a slot holds one).
    """

    sample_rate_hz: Annotated[float, Meta(ge=MIN_SAMPLE_RATE_HZ, le=MAX_SAMPLE_RATE_HZ)] = 1_000_000.0
    center_freq_hz: Annotated[float, Meta(gt=0.0, le=100e9)] = 2.4e9
    frame_payload_bytes: Annotated[int, Meta(ge=HEADER_BYTES + 1, le=8192)] = 1024
    mcs: str = "qpsk-1/2"
    guard_samples: Annotated[int, Meta(ge=0, le=1 << 20)] = 80
    window_samples: Annotated[int, Meta(ge=1024, le=1 << 22)] = 20_000
    tdma_cycle_samples: Annotated[int, Meta(ge=1024, le=1 << 32)] = 200_000
    nack_quiet_samples: Annotated[int, Meta(ge=1, le=1 << 32)] = 40_000
    max_passes: Annotated[int, Meta(ge=1, le=64)] = 8
    realtime_factor: Annotated[float, Meta(ge=0.0, le=1000.0)] = 1.0
    analog_frame_symbols: Annotated[int, Meta(ge=1, le=MAX_ANALOG_SYMBOLS)] = DEFAULT_ANALOG_FRAME_SYMBOLS

    def __post_init__(self) -> None:
        if self.mcs != ADAPTIVE and self.mcs not in CODED_MCS:
            raise ConfigError(f"air.mcs={self.mcs!r} is neither {ADAPTIVE!r} nor a coded MCS ({', '.join(CODED_MCS)})")

    @property
    def fixed_mcs(self) -> str | None:
        return None if self.mcs == ADAPTIVE else self.mcs

    @property
    def mcs_policy(self) -> McsPolicy:
        """How senders pick the MCS: fixed, or adaptive on measured SNR (the most robust for unmeasured links),
        with thresholds for this air's frame size."""
        return McsPolicy.from_errors(default_errors(), self.frame_payload_bytes, self.fixed_mcs)

    def effective_snr_db(self, report: LinkChannelReport | None) -> float | None:
        """The channel figure the policy groups by: the EESM effective SNR of a measured link at this air's MCS
        (``GROUPING_MCS`` when adaptive) for its frame size; None for a link nobody measured."""
        if report is None:
            return None
        mcs = self.fixed_mcs or GROUPING_MCS
        return report_effective_snr_db(default_errors(), report, mcs, self.frame_payload_bytes)  # type: ignore[arg-type]

    def airtime(self, num_ues: int) -> LinkAirtime:
        """The link's airtime model of this air shared by ``num_ues`` UEs (the BS's virtual clock, the UE's
        energy account); ConfigError if a slot cannot hold one frame."""
        return LinkAirtime(
            self.phy, num_ues, frame_payload_bytes=self.frame_payload_bytes, tdma_cycle_samples=self.tdma_cycle_samples,
            guard_samples=self.guard_samples, fixed_mcs=self.fixed_mcs, analog_frame_symbols=self.analog_frame_symbols,
        )  # fmt: skip

    @property
    def phy(self) -> PhyConfig:
        return PhyConfig(sample_rate_hz=self.sample_rate_hz)

    @property
    def quiet_samples(self) -> int:
        """Silence after which a receiver NACKs: one TDMA cycle plus ``nack_quiet_samples``."""
        return self.tdma_cycle_samples + self.nack_quiet_samples

    @property
    def slowest_mcs(self) -> str:
        """The MCS with the longest bursts this air may use."""
        return self.fixed_mcs or MOST_ROBUST_MCS

    @property
    def max_burst_samples(self) -> int:
        """Longest burst a frame of this air can occupy (a full frame at ``slowest_mcs``, or a full analog frame)."""
        return max(
            burst_num_samples(self.phy, self.frame_payload_bytes, self.slowest_mcs),
            analog_burst_num_samples(self.phy, self.analog_frame_symbols),
        )


class RadioSection(Struct, frozen=True, forbid_unknown_fields=True):
    """This node's radio backend.

    kind "hub": a client of ``testbed hub`` at ``endpoint`` as scenario node ``node`` (simulation).
    kind "pluto": the ADALM-Pluto at ``uri`` (``ip:ADDRESS``, ``usb:BUS.DEV.IF``, ``xml:PATH``...: checked at
    load by testbed.radio.pluto.check_uri; never scanned), TX power through the board calibration in
    ``calibration_file`` (testbed/radio/calibration.py; nominal if empty).
    """

    kind: Literal["hub", "pluto"] = "hub"
    endpoint: str = "tcp://127.0.0.1:5600"
    node: Annotated[str, Meta(min_length=1, max_length=64)] = "bs"
    uri: str = ""
    calibration_file: str = ""
    tx_power_dbm: Annotated[float, Meta(ge=-90.0, le=30.0)] = 0.0
    rx_gain_mode: Literal["manual", "slow_attack", "fast_attack", "hybrid"] = "manual"
    rx_gain_db: Annotated[float, Meta(ge=-20.0, le=100.0)] = 0.0
    timeout_s: Seconds = 30.0

    def __post_init__(self) -> None:
        if self.kind == "pluto" and not self.uri:
            raise ConfigError('radio.kind = "pluto" needs radio.uri (e.g. "ip:192.168.2.1"); it is never scanned')
        if self.kind == "pluto":
            try:
                check_uri(self.uri)
            except ConfigError as exc:
                raise ConfigError(f"radio.uri: {exc}") from exc


class Security(Struct, frozen=True, forbid_unknown_fields=True):
    """CURVE keys (``testbed keys``) or, for local debugging only, ``plaintext = true``."""

    plaintext: bool = False
    secret_key_file: str = ""  # this node's NAME.key_secret
    allowed_dir: str = ""  # BS: directory of <ue_id>.key public keys
    server_key_file: str = ""  # UE: the BS's bs.key

    def server(self) -> CurveServerKeys | Plaintext:
        if self.plaintext:
            return Plaintext()
        _need(("secret_key_file", self.secret_key_file), ("allowed_dir", self.allowed_dir))
        return CurveServerKeys.from_files(Path(self.secret_key_file), Path(self.allowed_dir))

    def client(self) -> CurveClientKeys | Plaintext:
        if self.plaintext:
            return Plaintext()
        _need(("secret_key_file", self.secret_key_file), ("server_key_file", self.server_key_file))
        return CurveClientKeys.from_files(Path(self.secret_key_file), Path(self.server_key_file))


def _need(*fields: tuple[str, str]) -> None:
    missing = [name for name, value in fields if not value]
    if missing:
        raise ConfigError(f"[control.security] needs {', '.join(missing)} (or plaintext = true for debugging)")


class BsControl(Struct, frozen=True, forbid_unknown_fields=True):
    bind_endpoint: str = "tcp://127.0.0.1:5555"
    heartbeat_interval_s: Annotated[float, Meta(ge=0.01, le=60.0)] = 1.0
    security: Security = Security()

    def server_config(self) -> ServerConfig:
        return ServerConfig(bind_endpoint=self.bind_endpoint, heartbeat_interval_s=self.heartbeat_interval_s)


class UeControl(Struct, frozen=True, forbid_unknown_fields=True):
    server_endpoint: str = "tcp://127.0.0.1:5555"
    security: Security = Security()


class Assignment(Struct, frozen=True, forbid_unknown_fields=True):
    """What ASSIGN tells each UE: from ``policy`` (a grouping rule of testbed/policy: mode, CPU frequency and
    TX power from the UEs' capability reports and the measured uplink SNR) or, with ``policy = ""``, from the
    fields below (``modes`` overrides ``mode`` per UE id). ``deadline_factor``: the policy's allocation deadline
    as a multiple of the shortest round (1: fastest rounds; larger: less energy, docs/policy.md).
    ``raw_upload_budget_s``: the ``joint`` rule's one-time airtime a weak UE may spend on its raw data (0: none;
    a scenario's [policy] field of the same name)."""

    policy: Literal["", "joint", "joint_snr", "capability", "channel"] = ""
    deadline_factor: Annotated[float, Meta(ge=1.0, le=100.0)] = DEFAULT_DEADLINE_FACTOR
    raw_upload_budget_s: Annotated[float, Meta(ge=0.0, le=86400.0)] = 0.0
    mode: Mode = Mode.DISTRIBUTED
    modes: dict[str, Mode] = {}
    tx_power_dbm: Annotated[float, Meta(ge=-100.0, le=30.0)] = 0.0
    energy_budget_j: Annotated[float, Meta(ge=0.0, le=1e7)] = 1000.0
    cpu_freq_hz: Annotated[float, Meta(ge=1e6, le=1e10)] = 1.5e9
    assumed_snr_db: Annotated[float, Meta(ge=-50.0, le=80.0)] = 20.0  # policy input until a UE's frames are heard


class BsSection(Struct, frozen=True, forbid_unknown_fields=True):
    """The BS daemon.

    ues : control-plane UE id -> link-layer node id (1..65534); a UE not listed gets no uplink slot.
    num_rounds : rounds to run, then exit 0 (0: until SIGTERM).
    min_ues : live UEs needed before a round starts.
    min_fraction : share of a round's participants whose upload must arrive by the deadline for the round
        to count; otherwise it is skipped (ROUND_END aborted, nothing consumed).
    round_gap_s : pause between the end of a round and the next ROUND_START.
    capability_wait_s : with [training], a round waits until every live UE of [bs.ues] has sent its
        CAPABILITY_REPORT (so none is grouped on an assumed board), but for a UE at most this long after it
        joined (then it is planned as the reference board, logged).
    nack_gather_s : after the first NACK of a broadcast pass, wait at most this long for the others before resending
        (the resend goes at once when every receiver still expected has answered).
    state_dir : where rounds.jsonl (one JSON record per finished round) is appended.
    model_size_bytes, seed : the placeholder training step (testbed/node/training.py; no [training]).
    board : the board the BS trains on in simulation (profiles.toml): on the virtual air (hub, unpaced) its
        training step takes this board's time on the air's clock (testbed/node/jobtime.py).
    With [training] the real step runs; its ``num_shards`` 0 means one shard per UE of ``ues``.
    """

    ues: dict[Annotated[str, Meta(pattern=UE_ID_PATTERN)], NodeId]
    state_dir: str = "/var/lib/testbed"
    num_rounds: Annotated[int, Meta(ge=0, le=2**31 - 1)] = 0
    min_ues: Annotated[int, Meta(ge=1, le=65535)] = 1
    deadline_s: Seconds = 30.0
    min_fraction: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.5
    round_gap_s: Annotated[float, Meta(ge=0.0, le=3600.0)] = 1.0
    nack_gather_s: Annotated[float, Meta(ge=0.0, le=60.0)] = 0.1
    capability_wait_s: Annotated[float, Meta(ge=0.0, le=3600.0)] = 30.0
    model_size_bytes: Annotated[int, Meta(ge=1, le=1 << 30)] = 4096
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0
    board: str = "laptop"

    def __post_init__(self) -> None:
        boards = default_profiles().profiles
        if self.board not in boards:
            raise ConfigError(f"[bs] board={self.board!r} is not in testbed/policy/profiles.toml ({', '.join(boards)})")
        ids = list(self.ues.values())
        if len({i & 0xFF for i in ids}) != len(ids):  # the PHY header's stream id is the node id mod 256
            raise ConfigError(f"[bs.ues] gives two UEs the same node id (modulo 256): {self.ues}")


class UeSection(Struct, frozen=True, forbid_unknown_fields=True):
    """The UE daemon: its control-plane id, its link-layer node id (as in the BS's [bs.ues]), the size of
    the placeholder upload; with [training]: its data shard, the board it is (profiles.toml: cpufreq table,
    kappa, relative speed), whether that board is simulated (``SimulatedCpuFreq``, the host's measured
    speed scaled to the board) or this machine (Linux cpufreq), its energy budget (0: the board's) and what its
    radio draws while transmitting above its RF output (None: the board table's ``tx_draw_offset_db``)."""

    ue_id: Annotated[str, Meta(pattern=UE_ID_PATTERN)]
    node_id: NodeId
    upload_size_bytes: Annotated[int, Meta(ge=1, le=1 << 30)] = 2048
    shard: Annotated[int, Meta(ge=0, le=4095)] = 0
    board: str = "pi_4"
    simulated_board: bool = True
    energy_budget_j: Annotated[float, Meta(ge=0.0, le=1e7)] = 0.0
    tx_draw_offset_db: Annotated[float, Meta(ge=0.0, le=60.0)] | None = None

    def __post_init__(self) -> None:
        boards = default_profiles().profiles
        if self.board not in boards:
            raise ConfigError(f"[ue] board={self.board!r} is not in testbed/policy/profiles.toml ({', '.join(boards)})")


class BsConfig(Struct, frozen=True, forbid_unknown_fields=True):
    bs: BsSection
    air: AirConfig = AirConfig()
    radio: RadioSection = RadioSection()
    control: BsControl = BsControl()
    assign: Assignment = Assignment()
    training: TrainingSpec | None = None

    def __post_init__(self) -> None:
        _daemon_training(self.training)
        if self.training is None and self.assign.policy:
            raise ConfigError(
                f"[assign] policy = {self.assign.policy!r} needs a [training] section (the codec's sizes)"
            )
        if self.training is not None and 0 < self.training.num_shards < len(self.bs.ues):
            raise ConfigError(
                f"[training] num_shards={self.training.num_shards} is below the {len(self.bs.ues)} UEs of [bs.ues]"
            )
        if self.bs.ues:
            _check_fit(self.air, len(self.bs.ues), f"the {len(self.bs.ues)} UEs of [bs.ues]")


class UeConfig(Struct, frozen=True, forbid_unknown_fields=True):
    ue: UeSection
    air: AirConfig = AirConfig()
    radio: RadioSection = RadioSection()
    control: UeControl = UeControl()
    training: TrainingSpec | None = None

    def __post_init__(self) -> None:
        _daemon_training(self.training)
        if self.training is not None and self.training.num_shards == 0:
            raise ConfigError("[training] num_shards must be set on a UE (the number of UEs in the BS's [bs.ues])")
        if self.training is not None and self.ue.shard >= self.training.num_shards:
            raise ConfigError(
                f"[ue] shard={self.ue.shard} must be below [training] num_shards={self.training.num_shards}"
            )
        _check_fit(self.air, 1, "this UE")

    def client_config(self, heartbeat_interval_s: float = 1.0) -> ClientConfig:
        return ClientConfig(self.ue.ue_id, self.control.server_endpoint, heartbeat_interval_s=heartbeat_interval_s)


def _check_fit(air: AirConfig, num_ues: int, whose: str) -> None:
    """Refuse on load an [air] whose TDMA cycle cannot give ``num_ues`` UEs a slot that holds one full frame at
    the slowest MCS: the daemons build this airtime when they start and the BS this cycle every round."""
    default_errors(air.phy)  # a broken PER table is its own error: it names its file, not [air]
    try:
        air.airtime(num_ues)
    except ConfigError as exc:
        raise ConfigError(f"[air] cannot serve {whose}: {exc}") from exc


def _daemon_training(t: TrainingSpec | None) -> None:
    if t is not None and t.partition != "iid":
        raise ConfigError(f'[training] partition={t.partition!r}: the daemons cut IID shards; use "iid"')


C = TypeVar("C", BsConfig, UeConfig)


def parse_config(text: str | bytes, kind: type[C], source: str = "<config>") -> C:
    """Decode and validate TOML text; ConfigError names the file, the field and what is wrong (a field of the
    older training schema: where it lives now)."""
    try:
        raw = tomllib.loads(text.decode() if isinstance(text, bytes) else text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    if isinstance(raw.get("training"), dict):
        refuse_retired(raw["training"], RETIRED_TRAINING_FIELDS, f"{source}: [training]")
    try:
        return msgspec.convert(raw, type=kind)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: invalid {kind.__name__}: {exc}") from exc


def load_config(path: str | Path, kind: type[C]) -> C:
    """Read a daemon config file (``BsConfig`` or ``UeConfig``)."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    return parse_config(text, kind, source=str(path))
