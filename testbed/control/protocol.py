"""The control-plane wire protocol: version, message types, bounds, encoding and the one decode path.

Every message is an :class:`Envelope` (protocol version, UE id, sequence number, correlation id, round,
timestamp) around one typed body; the body's ``type`` tag names the message. Each field carries its bounds as
msgspec ``Meta`` constraints, so decoding *is* validation: a message that decodes is in range. Malformed,
unknown, oversized or out-of-bounds input raises :class:`Rejected` with a machine-readable ``reason`` that the
server and client count. docs/control-protocol.md describes each message, its units and the state machines.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Literal, get_args

import msgspec
from msgspec import Meta, Struct

from testbed.errors import ProtocolError
from testbed.link.messages import MAX_BITMAP_BYTES, SlotGrant
from testbed.link.messages import ChannelReport as LinkChannelReport
from testbed.link.messages import Nack as LinkNack
from testbed.mode import Mode
from testbed.phy.mcs import MCS_TABLE

#: Bumped on every incompatible change; a peer with another version is refused with ERROR bad_version.
#: 2: ASSIGN's modes are testbed.mode.Mode's values (centralized_decoder, centralized_full); CAPABILITY_REPORT
#: carries kappa and the minimum TX power, so the BS holds the UE's whole report.
#: 3: FIRST_INFO (the policy the UE chooses its mode by, and its allocation) and MODE_CHOICE (its choice);
#: UPLINK_DONE carries the TX power applied, the work the energy budget allowed and the analog frames sent.
PROTOCOL_VERSION = 3
#: Hard cap on one frame, set as ZMQ_MAXMSGSIZE on every socket: libzmq drops a peer that sends more.
#: The largest message is a CHANNEL_REPORT (about 18.5 KiB); a NACK's bitmap is at most MAX_BITMAP_BYTES (8 KiB).
MAX_MESSAGE_BYTES = 32 * 1024

#: Every reason a message can be refused; the server and client count rejections under these names.
Reason = Literal[
    "malformed",  # not msgpack, or the envelope does not match the schema
    "bad_version",  # another protocol version
    "unknown_type",  # a body type this version does not know
    "out_of_bounds",  # the body fails a field bound or a cross-field check
    "oversized",  # larger than the limit for its type
    "bad_frames",  # wrong number of ZeroMQ frames
    "wrong_direction",  # a BS-only message from a UE or the reverse
    "wrong_ue_id",  # the claimed UE id differs from the one bound to the sender's CURVE key / our id
    "not_registered",  # a message other than HELLO from a UE without a live registration
    "replayed_seq",  # sequence number not above the last accepted one (duplicate or replay)
    "stale_round",  # a round-scoped message for a round other than the current one
    "not_participant",  # a round-scoped message from a UE that is not in the current round
    "unexpected",  # valid, but not expected in the receiver's state (e.g. WELCOME to a stray HELLO)
    "refused_first_info",  # a UE cannot apply the FIRST_INFO it got (detail: why); it keeps the last valid one
    "inconsistent_choice",  # the BS's check of a MODE_CHOICE against the policy it sent failed (detail: why)
]
REASONS: tuple[str, ...] = get_args(Reason)

# Bounds shared by several fields. Float bounds also reject NaN and infinities (any comparison with NaN fails).
UE_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,31}\Z"
UE_ID_RE = re.compile(UE_ID_PATTERN)
UeId = Annotated[str, Meta(pattern=UE_ID_PATTERN, description="lower-case, 1-32 chars")]
U32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
U63 = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Seq = Annotated[int, Meta(ge=1, le=2**63 - 1)]
Round = Annotated[int, Meta(ge=0, le=2**31 - 1)]
Seconds = Annotated[float, Meta(ge=0.0, le=86400.0)]  # a duration of at most one day
Joules = Annotated[float, Meta(ge=0.0, le=1e7)]
PowerDbm = Annotated[float, Meta(ge=-100.0, le=30.0)]  # Pluto TX tops out near +7 dBm; PAs may add more
FreqHz = Annotated[float, Meta(ge=1e6, le=1e10)]
ShortText = Annotated[str, Meta(max_length=256)]
McsName = Literal[tuple(MCS_TABLE)]  # type: ignore[valid-type]  # the PHY's table is the single source
#: SHA-256 digest of the serialised model (FIPS 180-4: 32 bytes).
Digest = Annotated[bytes, Meta(min_length=32, max_length=32)]


class _Body(Struct, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of every message body; the subclass's tag is the message type on the wire."""


class Hello(_Body, tag="HELLO"):
    """UE -> BS: register (or re-register). ``session_id`` is fresh per UE process; a new one resets seq."""

    session_id: U63
    software_version: Annotated[str, Meta(max_length=32)] = ""


class Welcome(_Body, tag="WELCOME"):
    """BS -> UE, reply to HELLO: accepted; the UE adopts the BS's heartbeat interval."""

    session_id: U63  # echo of the HELLO's
    server_session_id: U63  # fresh per BS process: a change tells the UE the BS restarted
    heartbeat_interval_s: Annotated[float, Meta(ge=0.01, le=60.0)]
    current_round: Round  # the UE is eligible from the next ROUND_START


class CapabilityEnquiry(_Body, tag="CAPABILITY_ENQUIRY"):
    """BS -> UE: send a CAPABILITY_REPORT now."""


class CapabilityReport(_Body, tag="CAPABILITY_REPORT"):
    """UE -> BS: what the UE can do (inputs of testbed.learning.cost and the resource allocator), whole: the BS
    needs no board table to plan for it (docs/policy.md, "On the wire")."""

    cpu_freq_min_hz: FreqHz
    cpu_freq_max_hz: FreqHz
    cpu_freq_step_hz: Annotated[float, Meta(ge=0.0, le=1e10)]  # 100 MHz on a Raspberry Pi (cpufreq steps)
    cycles_per_sample: Annotated[float, Meta(ge=0.0, le=1e12)]
    energy_available_j: Joules
    max_tx_power_dbm: PowerDbm
    num_local_samples: Annotated[int, Meta(ge=0, le=2**31 - 1)]
    memory_bytes: Annotated[int, Meta(ge=0, le=2**40)]
    kappa_j_per_cycle_hz2: Annotated[float, Meta(ge=1e-32, le=1e-22)]  # CMOS energy model, learning/cost.py
    min_tx_power_dbm: PowerDbm
    tx_draw_offset_db: Annotated[float, Meta(ge=0.0, le=60.0)] = 0.0  # radio draw above RF output, cost.py

    def __post_init__(self) -> None:
        if self.cpu_freq_min_hz > self.cpu_freq_max_hz:
            raise ProtocolError(f"cpu_freq_min_hz={self.cpu_freq_min_hz} > cpu_freq_max_hz={self.cpu_freq_max_hz}")
        if self.min_tx_power_dbm > self.max_tx_power_dbm:
            raise ProtocolError(f"min_tx_power_dbm={self.min_tx_power_dbm} > max_tx_power_dbm={self.max_tx_power_dbm}")


class ChannelReport(_Body, tag="CHANNEL_REPORT"):
    """UE -> BS: the downlink as the UE's receiver measured it (the link layer's report, bounds added here)."""

    report: LinkChannelReport

    def __post_init__(self) -> None:
        r = self.report
        _check_range("snr_db", r.snr_db, -50.0, 80.0)
        _check_range("cfo_hz", r.cfo_hz, -1e6, 1e6)
        if r.mean_gain_db is not None:
            _check_range("mean_gain_db", r.mean_gain_db, -200.0, 100.0)
        if r.tx_power_dbm is not None:
            _check_range("tx_power_dbm", r.tx_power_dbm, -100.0, 30.0)
        if len(r.channel_re) != len(r.channel_im):
            raise ProtocolError(f"channel_re has {len(r.channel_re)} values, channel_im {len(r.channel_im)}")
        if not all(-1e6 <= v <= 1e6 for v in (*r.channel_re, *r.channel_im)):  # also rejects NaN
            raise ProtocolError("channel coefficients must be finite and within +-1e6")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:  # False for NaN too
        raise ProtocolError(f"{name}={value!r} outside [{low}, {high}]")


class Assign(_Body, tag="ASSIGN"):
    """BS -> UE: the UE's resources and mode for rounds from ``envelope.round`` on."""

    mode: Mode  # testbed.mode.Mode: its values are the wire strings
    group: Annotated[int, Meta(ge=0, le=255)]
    tx_power_dbm: PowerDbm
    energy_budget_j: Joules
    cpu_freq_hz: FreqHz
    mcs: McsName
    uplink_slot: SlotGrant  # the link layer's TDMA grant: start_sample, length_samples in its sample clock


class GroupMode(Struct, frozen=True, forbid_unknown_fields=True):
    """One group of the grouping policy and its training mode (groups are one-to-one with modes). The mode
    travels as text so that a UE can refuse one it does not know with a reason, not a decode error."""

    group: Annotated[int, Meta(ge=0, le=255)]
    mode: Annotated[str, Meta(max_length=32)]


class FirstInfo(_Body, tag="FIRST_INFO"):
    """BS -> UE: the first information the UE chooses its training mode by, and the UE's resource allocation
    (docs/control-protocol.md, "First information"). Sent before a round whenever it changed for that UE;
    ``revision`` counts the versions, and the UE's MODE_CHOICE names the one it applied.

    The rule and the unit travel as text, so a UE that does not know them refuses with a reason (ERROR
    refused_first_info) and keeps the last valid one."""

    revision: U32
    rule: Annotated[str, Meta(max_length=32)]  # testbed/policy/grouping.py GROUPING_RULES, or "fixed"
    groups: Annotated[list[GroupMode], Meta(min_length=1, max_length=8)]
    capability_unit: Annotated[str, Meta(max_length=32)]  # "samples_per_s": training samples/s at f_max
    capability_threshold: Annotated[float, Meta(gt=0.0, le=1e12)]
    deadline_s: Annotated[float, Meta(gt=0.0, le=86400.0)]  # distributed work must fit (decision.py)
    good_channel_snr_db: Annotated[float, Meta(ge=-50.0, le=80.0)]  # the channel rules' threshold
    raw_upload_budget_s: Seconds  # the joint rule's one-time raw-upload airtime
    horizon_rounds: Annotated[int, Meta(ge=0, le=2**31 - 1)]  # rounds the training runs; 0: not known
    num_ues: Annotated[int, Meta(ge=1, le=65535)]  # UEs sharing the uplink (the airtime of the cost rule)
    tx_power_dbm: PowerDbm  # this UE's allocation
    energy_budget_j: Joules
    cpu_freq_hz: FreqHz
    uplink_snr_db: Annotated[float, Meta(ge=-50.0, le=80.0)] | None = None  # BS's effective SNR of this UE
    assigned_mode: Annotated[str, Meta(max_length=32)] = ""  # rule "fixed": this UE's mode

    def __post_init__(self) -> None:
        groups = [g.group for g in self.groups]
        modes = [g.mode for g in self.groups]
        if len(set(groups)) != len(groups) or len(set(modes)) != len(modes):
            raise ProtocolError(f"groups must be one-to-one with modes, got {[(g.group, g.mode) for g in self.groups]}")


class ModeChoice(_Body, tag="MODE_CHOICE"):
    """UE -> BS: the mode and group the UE chose by FIRST_INFO ``revision``, with the figures it used."""

    revision: U32
    mode: Mode
    group: Annotated[int, Meta(ge=0, le=255)]
    capability: Annotated[float, Meta(ge=0.0, le=1e12)]  # in FIRST_INFO's capability_unit
    channel_snr_db: Annotated[float, Meta(ge=-50.0, le=80.0)] | None  # the effective SNR it grouped by
    channel_source: Literal["uplink", "downlink", "none"]  # whose measurement that SNR is
    reason: ShortText = ""


class RoundStart(_Body, tag="ROUND_START"):
    """BS -> UE: round ``envelope.round`` begins; UPLINK_DONE is due ``deadline_s`` after receipt."""

    model_digest: Digest
    model_size_bytes: Annotated[int, Meta(ge=0, le=2**40)]
    deadline_s: Annotated[float, Meta(gt=0.0, le=86400.0)]


class UplinkDone(_Body, tag="UPLINK_DONE"):
    """UE -> BS: the UE finished its uplink transfer for ``envelope.round`` (round-scoped)."""

    object_id: U32
    num_frames: Annotated[int, Meta(ge=0, le=2**24)]
    payload_bytes: Annotated[int, Meta(ge=0, le=2**40)]
    compute_time_s: Seconds
    energy_used_j: Joules
    # the allocation applied (docs/control-protocol.md, "Applied power and energy budget"): the TX power the
    # radio applied, the radio's part of energy_used_j, what the energy budget left of the round's work
    # ("declined": nothing trained or sent) and the training samples the step processed
    tx_power_dbm: PowerDbm | None = None
    radio_energy_j: Joules = 0.0
    work: Literal["full", "reduced", "declined"] = "full"
    trained_samples: Annotated[int, Meta(ge=0, le=2**31 - 1)] = 0
    analog_frames: Annotated[int, Meta(ge=0, le=2**24)] = 0  # analog frames sent once beside the upload


class Nack(_Body, tag="NACK"):
    """Either way, round-scoped: the link layer's bitmap NACK (object id, frame count, LSB-first bitmap)."""

    nack: LinkNack

    def __post_init__(self) -> None:
        count, bitmap = self.nack.frame_count, self.nack.missing
        need = (count + 7) // 8  # frame_count 0 (nothing heard) carries an empty bitmap
        if len(bitmap) != need:
            raise ProtocolError(f"missing bitmap has {len(bitmap)} bytes; frame_count={count} needs {need}")
        spare = 8 * need - count
        if spare and bitmap[-1] >> (8 - spare):
            raise ProtocolError(f"bits past frame_count={count} must be zero")


class RoundEnd(_Body, tag="ROUND_END"):
    """BS -> UE: round ``envelope.round`` is over (UPLINK_DONE for it is now stale)."""

    status: Literal["complete", "deadline", "aborted"]
    num_uplinks: Annotated[int, Meta(ge=0, le=65535)]


class Heartbeat(_Body, tag="HEARTBEAT"):
    """UE -> BS every interval; the BS answers each with a HEARTBEAT (``corr_id`` = the UE's seq)."""


class Error(_Body, tag="ERROR"):
    """Either way: the request ``corr_id`` was refused for ``code``."""

    code: Reason
    detail: ShortText = ""


class Bye(_Body, tag="BYE"):
    """Either way: the sender leaves; the receiver forgets its registration at once."""

    reason: Annotated[str, Meta(max_length=128)] = ""


Body = (
    Hello
    | Welcome
    | CapabilityEnquiry
    | CapabilityReport
    | ChannelReport
    | Assign
    | FirstInfo
    | ModeChoice
    | RoundStart
    | UplinkDone
    | Nack
    | RoundEnd
    | Heartbeat
    | Error
    | Bye
)
BODY_TYPES: tuple[type[_Body], ...] = get_args(Body)
TYPE_NAMES: frozenset[str] = frozenset(t.__struct_config__.tag for t in BODY_TYPES)
FROM_UE: frozenset[type[_Body]] = frozenset(
    {Hello, CapabilityReport, ChannelReport, ModeChoice, UplinkDone, Nack, Heartbeat, Error, Bye}
)
FROM_BS: frozenset[type[_Body]] = frozenset(
    {Welcome, CapabilityEnquiry, Assign, FirstInfo, RoundStart, Nack, RoundEnd, Heartbeat, Error, Bye}
)
#: Only valid for the receiver's current round; anything else is rejected as stale_round.
ROUND_SCOPED_FROM_UE: frozenset[type[_Body]] = frozenset({UplinkDone, Nack})
ROUND_SCOPED_FROM_BS: frozenset[type[_Body]] = frozenset({Nack, RoundEnd})

#: Per-type size limit in bytes: a few hundred for fixed-size bodies, more where a bounded list rides along.
_SMALL_LIMIT = 512
TYPE_LIMIT_BYTES: dict[type[_Body], int] = {t: _SMALL_LIMIT for t in BODY_TYPES} | {
    ChannelReport: _SMALL_LIMIT + 2 * 9 * 1024,  # two lists of up to 1024 msgpack float64 of 9 bytes each
    Nack: _SMALL_LIMIT + MAX_BITMAP_BYTES + 5,  # bitmap plus its bin32 header
    Error: _SMALL_LIMIT + 4 * 256,  # detail: 256 chars of up to 4 UTF-8 bytes
    FirstInfo: _SMALL_LIMIT + 8 * 48,  # up to 8 groups
    ModeChoice: _SMALL_LIMIT + 4 * 256,  # reason: 256 chars
}

_LIMIT_BY_NAME: dict[str, int] = {t.__struct_config__.tag: limit for t, limit in TYPE_LIMIT_BYTES.items()}


class Envelope(Struct, frozen=True, forbid_unknown_fields=True):
    """The header every message carries, around one typed body."""

    version: Annotated[int, Meta(ge=0, le=65535)]
    ue_id: UeId  # the UE that sent it (UE -> BS) or that it is for (BS -> UE)
    seq: Seq  # per sender and session, strictly increasing
    corr_id: U63  # seq of the request this answers; 0 when not a reply
    round: Round  # the sender's current round
    timestamp_s: Annotated[float, Meta(ge=0.0, le=1e11)]  # sender's wall clock (Unix seconds), for logs only
    body: Body

    @property
    def type(self) -> str:
        """The message type, e.g. ``"HELLO"``."""
        return self.body.__struct_config__.tag


class _Header(Struct, frozen=True):
    """First decoding stage: the version and the type, before the body is trusted."""

    version: int
    body: msgspec.Raw


class _TypeOnly(Struct):
    type: str


class Rejected(ProtocolError):
    """A message was refused; ``reason`` is one of :data:`REASONS` (the key it is counted under)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


_ENCODER = msgspec.msgpack.Encoder()
_HEADER = msgspec.msgpack.Decoder(_Header)
_TYPE_ONLY = msgspec.msgpack.Decoder(_TypeOnly)
_ENVELOPE = msgspec.msgpack.Decoder(Envelope)


def decode(data: bytes | memoryview) -> Envelope:
    """Parse and validate one frame; raise :class:`Rejected` naming why it was refused.

    Stages: size cap, header (version), type tag, the type's size limit, then the full schema with bounds.
    Any other exception from the decoder is also turned into a rejection, so hostile input cannot end a loop.
    """
    try:
        return _decode(data)
    except Rejected:
        raise
    except Exception as exc:  # noqa: BLE001  (a decoder quirk must cost a count, never the BS)
        raise Rejected("malformed", f"decoder raised {type(exc).__name__}: {exc}") from exc


def _decode(data: bytes | memoryview) -> Envelope:
    if len(data) > MAX_MESSAGE_BYTES:
        raise Rejected("oversized", f"{len(data)} bytes exceed MAX_MESSAGE_BYTES={MAX_MESSAGE_BYTES}")
    try:
        header = _HEADER.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec raises the latter for bad UTF-8 keys
        raise Rejected("malformed", f"not a control envelope ({exc})") from exc
    if header.version != PROTOCOL_VERSION:
        raise Rejected("bad_version", f"protocol version {header.version!r}; this side speaks {PROTOCOL_VERSION}")
    try:
        type_name = _TYPE_ONLY.decode(header.body).type
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise Rejected("malformed", f"body has no type tag ({exc})") from exc
    if type_name not in TYPE_NAMES:
        raise Rejected("unknown_type", f"type {type_name[:40]!r}; known: {', '.join(sorted(TYPE_NAMES))}")
    limit = _LIMIT_BY_NAME[type_name]
    if len(data) > limit:
        raise Rejected("oversized", f"{type_name} of {len(data)} bytes exceeds its limit of {limit}")
    try:
        return _ENVELOPE.decode(data)
    except msgspec.ValidationError as exc:
        raise Rejected("out_of_bounds", f"{type_name}: {exc}") from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise Rejected("malformed", f"{type_name}: {exc}") from exc


def encode(envelope: Envelope) -> bytes:
    """Serialise an envelope, refusing one the peer would reject (a bug on this side, not the wire's)."""
    data = _ENCODER.encode(envelope)
    try:
        decode(data)
    except Rejected as exc:
        raise ProtocolError(f"refusing to send an invalid {envelope.type}: {exc.detail}") from exc
    return data


def make_envelope(body: _Body, *, ue_id: str, seq: int, round: int, corr_id: int = 0) -> Envelope:
    """Wrap ``body`` in a header stamped with this protocol version and the wall clock."""
    return Envelope(PROTOCOL_VERSION, ue_id, seq, corr_id, round, time.time(), body)


def reply_to(request: Envelope, body: _Body, *, seq: int, round: int) -> Envelope:
    """An envelope answering ``request``: same UE id, ``corr_id`` = the request's seq (STYLE.md #12)."""
    return make_envelope(body, ue_id=request.ue_id, seq=seq, round=round, corr_id=request.seq)
