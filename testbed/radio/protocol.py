"""Wire protocol between hub clients (one per node) and the virtual-RF hub: version, messages, framing.

Transport: a client's DEALER talks to the hub's ROUTER. A message is one ZeroMQ frame holding a msgpack
header (a tagged msgspec struct below), followed for ``Transmit`` and ``Samples`` by one frame of raw
little-endian complex64 samples (no copy through msgpack). Every request gets exactly one reply, built
from the request; ``Error`` replaces the reply when the request was refused, and the hub keeps serving.

    client                        hub
    Query()                       -> AirInfo(carrier, rate, nodes' TX power)   (before or instead of Hello)
    Hello(version, node_id, ...)  -> Welcome(start_sample, ...) | Error
    Configure(tx_power_dbm, ...)  -> Ok | Error
    Transmit(at_sample, n) + iq   -> TxAck(start_sample) | Error
    Receive(n)                    -> Samples(start_sample, n) + iq   (held until the window is complete)
    Bye()                         -> Ok
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

import msgspec
import numpy as np

from testbed.errors import ConfigError, ProtocolError
from testbed.radio.base import MAX_BLOCK_SAMPLES

PROTOCOL_VERSION = 1
MAX_HEADER_BYTES = 4096

_LOCAL_ENDPOINT = re.compile(r"^(tcp://127\.0\.0\.1:(\*|\d{1,5})|ipc://.+)$")


def check_local_endpoint(endpoint: str) -> str:
    """Only loopback TCP or ipc:// endpoints: the hub is a simulator, never a service on the network."""
    if not _LOCAL_ENDPOINT.match(endpoint):
        raise ConfigError(
            f"hub endpoint {endpoint!r} is not local; use tcp://127.0.0.1:PORT (PORT may be *) or ipc://PATH"
        )
    return endpoint


Count = Annotated[int, msgspec.Meta(ge=1, le=MAX_BLOCK_SAMPLES)]
SampleTime = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
NodeId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
GainMode = Literal["manual", "slow_attack", "fast_attack", "hybrid"]  # base.GAIN_MODES


class Query(msgspec.Struct, tag="query", forbid_unknown_fields=True):
    """What air does this hub serve? Lets a client configure its radio to match before it joins."""


class AirInfo(msgspec.Struct, tag="air_info", forbid_unknown_fields=True):
    version: int
    center_freq_hz: float
    sample_rate_hz: float
    tx_power_dbm: dict[str, float]  # every node id of the scenario, in scenario order -> its TX power


class Hello(msgspec.Struct, tag="hello", forbid_unknown_fields=True):
    version: int
    node_id: NodeId
    center_freq_hz: float
    sample_rate_hz: float


class Welcome(msgspec.Struct, tag="welcome", forbid_unknown_fields=True):
    version: int
    node_id: str
    start_sample: int
    center_freq_hz: float
    sample_rate_hz: float
    tx_power_dbm: float
    nodes: list[str]


class Configure(msgspec.Struct, tag="configure", forbid_unknown_fields=True):
    tx_power_dbm: Annotated[float, msgspec.Meta(ge=-150.0, le=40.0)]
    rx_gain_mode: GainMode
    rx_gain_db: Annotated[float, msgspec.Meta(ge=-20.0, le=100.0)]


class Transmit(msgspec.Struct, tag="tx", forbid_unknown_fields=True):
    num_samples: Count
    at_sample: SampleTime | None = None


class TxAck(msgspec.Struct, tag="tx_ack", forbid_unknown_fields=True):
    start_sample: int
    num_samples: int


class Receive(msgspec.Struct, tag="rx", forbid_unknown_fields=True):
    num_samples: Count


class Samples(msgspec.Struct, tag="samples", forbid_unknown_fields=True):
    start_sample: int
    num_samples: int


class Bye(msgspec.Struct, tag="bye", forbid_unknown_fields=True):
    pass


class Ok(msgspec.Struct, tag="ok", forbid_unknown_fields=True):
    pass


class Error(msgspec.Struct, tag="error", forbid_unknown_fields=True):
    code: str
    message: str


Request = Query | Hello | Configure | Transmit | Receive | Bye
Reply = AirInfo | Welcome | Ok | TxAck | Samples | Error

_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(Request)
_reply_decoder = msgspec.msgpack.Decoder(Reply)


def encode(message: msgspec.Struct, iq: np.ndarray | None = None) -> list[bytes | memoryview]:
    """Frames for ``message`` (plus its samples as raw complex64 when given)."""
    frames: list[bytes | memoryview] = [_encoder.encode(message)]
    if iq is not None:
        frames.append(memoryview(np.ascontiguousarray(iq, dtype=np.complex64)).cast("B"))
    return frames


def _samples(frames: list, expected: int, what: str) -> np.ndarray:
    if len(frames) != 2:
        raise ProtocolError(f"{what} must be followed by exactly one sample frame, got {len(frames) - 1}")
    raw = frames[1]
    nbytes = len(raw)
    if nbytes != 8 * expected:
        raise ProtocolError(f"{what} announced {expected} samples ({8 * expected} bytes), the frame holds {nbytes}")
    return np.frombuffer(raw, dtype="<c8")


def _header(frames: list, decoder: msgspec.msgpack.Decoder, side: str, max_bytes: float) -> msgspec.Struct:
    if not frames:
        raise ProtocolError(f"empty {side} message")
    head = bytes(frames[0])
    if len(head) > max_bytes:
        raise ProtocolError(f"{side} header of {len(head)} bytes exceeds {max_bytes}")
    try:
        return decoder.decode(head)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"malformed {side} message: {exc}") from exc


def decode_request(frames: list) -> tuple[msgspec.Struct, np.ndarray | None]:
    """Parse a client's frames; ProtocolError says what is wrong. Samples must be finite."""
    msg = _header(frames, _request_decoder, "request", MAX_HEADER_BYTES)
    if isinstance(msg, Transmit):
        iq = _samples(frames, msg.num_samples, "Transmit")
        if not np.isfinite(iq.view(np.float32)).all():
            raise ProtocolError("Transmit samples contain NaN or infinity; refusing to put them on the air")
        return msg, iq
    if len(frames) != 1:
        raise ProtocolError(f"{type(msg).__name__} takes no extra frames, got {len(frames) - 1}")
    return msg, None


def decode_reply(frames: list) -> tuple[msgspec.Struct, np.ndarray | None]:
    """Parse the hub's frames (client side). Not size-capped: Welcome and AirInfo list up to 256 node ids."""
    msg = _header(frames, _reply_decoder, "reply", math.inf)
    if isinstance(msg, Samples):
        return msg, _samples(frames, msg.num_samples, "Samples")
    return msg, None
