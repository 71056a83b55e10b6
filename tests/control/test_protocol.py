"""The wire protocol: every message round-trips, and anything else is refused with a counted reason."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.control.protocol import (
    BODY_TYPES,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    REASONS,
    Assign,
    Bye,
    CapabilityEnquiry,
    CapabilityReport,
    ChannelReport,
    Envelope,
    Error,
    FirstInfo,
    GroupMode,
    Heartbeat,
    Hello,
    ModeChoice,
    Nack,
    Rejected,
    RoundEnd,
    RoundStart,
    UplinkDone,
    Welcome,
    decode,
    encode,
    make_envelope,
    reply_to,
)
from testbed.errors import ProtocolError
from testbed.link.messages import ChannelReport as LinkChannelReport
from testbed.link.messages import SlotGrant, make_nack, nack_missing
from testbed.mode import Mode

EXAMPLES = [
    Hello(123, "0.1.0"),
    Welcome(123, 456, 0.5, 7),
    CapabilityEnquiry(),
    CapabilityReport(6e8, 1.5e9, 1e8, 3e6, 5000.0, 7.0, 600, 4 * 2**30, 1.1e-27, -82.75),
    ChannelReport(LinkChannelReport(0, 3, 12, 14.5, -3.0, 1200.0, 0.95, [1.0, 0.5], [0.0, -0.5])),
    Assign(Mode.CENTRALIZED_DECODER, 2, 5.0, 40.0, 1.2e9, "16qam-1/2", SlotGrant(3, 48_000, 9_600)),
    FirstInfo(3, "joint", [GroupMode(0, "distributed"), GroupMode(1, "centralized_decoder")], "samples_per_s",
              1200.0, 30.0, 15.0, 0.0, 40, 8, 5.0, 60.0, 1.2e9, 12.5),
    ModeChoice(3, Mode.CENTRALIZED_DECODER, 1, 800.0, 12.5, "uplink", "capability 800 < 1200 samples/s"),
    RoundStart(bytes(range(32)), 1_000_000, 12.5),
    UplinkDone(77, 420, 400_000, 3.2, 11.0),
    Nack(make_nack(77, np.array([True, False, False, True, False, False, False, False, True]))),
    RoundEnd("deadline", 4),
    Heartbeat(),
    Error("not_registered", "send HELLO first"),
    Bye("shutting down"),
]


def envelope(body: object, **header: object) -> bytes:
    """Raw msgpack of an envelope (bypassing encode's own validation)."""
    fields = {"version": PROTOCOL_VERSION, "ue_id": "ue-1", "seq": 5, "corr_id": 0, "round": 2, "timestamp_s": 1.0}
    return msgspec.msgpack.encode(fields | header | {"body": body})


def test_examples_cover_every_message_type():
    assert {type(b) for b in EXAMPLES} == set(BODY_TYPES)


@pytest.mark.parametrize("body", EXAMPLES, ids=lambda b: type(b).__name__)
def test_every_message_round_trips_exactly(body):
    env = make_envelope(body, ue_id="ue-7", seq=9, round=3, corr_id=4)
    back = decode(encode(env))
    assert back == env and back.type == type(body).__struct_config__.tag


def test_nack_carries_the_link_layer_bitmap_unchanged():
    env = decode(encode(make_envelope(next(b for b in EXAMPLES if isinstance(b, Nack)), ue_id="ue-1", seq=1, round=1)))
    assert nack_missing(env.body.nack, 9).tolist() == [0, 3, 8]


@pytest.mark.parametrize("mode", list(Mode))
def test_assign_carries_the_one_mode_vocabulary(mode: Mode) -> None:
    body = Assign(mode, 0, 0.0, 1.0, 1e9, "qpsk-1/2", SlotGrant(1, 0, 100))
    data = encode(make_envelope(body, ue_id="ue-1", seq=1, round=1))
    assert msgspec.msgpack.decode(data)["body"]["mode"] == mode.value  # the enum's value is the wire string
    assert decode(data).body.mode is mode
    renamed = msgspec.msgpack.decode(data)
    renamed["body"]["mode"] = "centralized-symbols"  # protocol version 1's name
    with pytest.raises(Rejected, match="mode"):
        decode(msgspec.msgpack.encode(renamed))


def test_first_info_groups_must_be_one_to_one_with_modes() -> None:
    with pytest.raises(ProtocolError, match="one-to-one"):
        FirstInfo(1, "joint", [GroupMode(0, "distributed"), GroupMode(1, "distributed")], "samples_per_s",
                  1200.0, 30.0, 15.0, 0.0, 40, 8, 5.0, 60.0, 1.2e9)  # fmt: skip


def test_reply_is_built_from_the_request():
    request = make_envelope(Heartbeat(), ue_id="ue-3", seq=41, round=2)
    answer = reply_to(request, Heartbeat(), seq=7, round=5)
    assert (answer.ue_id, answer.corr_id, answer.seq, answer.round) == ("ue-3", 41, 7, 5)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "malformed"),
        (b"\xc1", "malformed"),
        (msgspec.msgpack.encode({"version": 1}), "malformed"),
        (envelope({"type": "HEARTBEAT"}, version=PROTOCOL_VERSION + 1), "bad_version"),
        (envelope({"type": "REBOOT"}), "unknown_type"),
        (envelope({"no": "type"}), "malformed"),
        (envelope({"type": "HEARTBEAT", "pad": "x" * 1000}), "oversized"),
        (b"\x00" * (MAX_MESSAGE_BYTES + 1), "oversized"),
        (envelope({"type": "HEARTBEAT"}, seq=0), "out_of_bounds"),
        (envelope({"type": "HEARTBEAT"}, ue_id="ue-1\n"), "out_of_bounds"),
        (envelope({"type": "HEARTBEAT"}, extra=1), "out_of_bounds"),
        (envelope({"type": "HEARTBEAT"}, timestamp_s=float("nan")), "out_of_bounds"),
        (envelope({"type": "ROUND_START", "model_digest": b"short", "model_size_bytes": 1, "deadline_s": 1.0}),
         "out_of_bounds"),
        (envelope({"type": "ROUND_START", "model_digest": bytes(32), "model_size_bytes": 1, "deadline_s": 0.0}),
         "out_of_bounds"),
        (envelope({"type": "ERROR", "code": "because", "detail": ""}), "out_of_bounds"),
        (envelope({"type": "NACK", "nack": {"object_id": 1, "frame_count": 3, "missing": b"\x08"}}), "out_of_bounds"),
        (envelope({"type": "NACK", "nack": {"object_id": 1, "frame_count": 9, "missing": b"\x01"}}), "out_of_bounds"),
        (envelope({"type": "CAPABILITY_REPORT", "cpu_freq_min_hz": 2e9, "cpu_freq_max_hz": 1e9,
                   "cpu_freq_step_hz": 1e8, "cycles_per_sample": 1.0, "energy_available_j": 1.0,
                   "max_tx_power_dbm": 0.0, "num_local_samples": 1, "memory_bytes": 1}), "out_of_bounds"),
        (envelope({"type": "CHANNEL_REPORT", "report": {
            "tx_node": 0, "rx_node": 1, "num_frames": 1, "snr_db": float("inf"), "mean_gain_db": None,
            "cfo_hz": 0.0, "frame_success": 1.0}}), "out_of_bounds"),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{len(v)}B",
)  # fmt: skip
def test_bad_input_is_refused_with_its_reason(raw, reason):
    with pytest.raises(Rejected) as info:
        decode(raw)
    assert info.value.reason == reason and info.value.reason in REASONS


def test_encode_refuses_to_send_what_the_peer_would_reject():
    bad = Assign("distributed", 0, 99.0, 1.0, 1e9, "qpsk-1/2", SlotGrant(0, 0, 10))  # 99 dBm
    with pytest.raises(ProtocolError, match="tx_power_dbm"):
        encode(make_envelope(bad, ue_id="ue-1", seq=1, round=0))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_are_decoded_or_refused_never_crash(data):
    try:
        assert isinstance(decode(data), Envelope)
    except Rejected as exc:
        assert exc.reason in REASONS


scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=9)
json_like = st.recursive(
    scalars | st.binary(max_size=9),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(
    body_type=st.sampled_from(sorted(t.__struct_config__.tag for t in BODY_TYPES)),
    fields=st.dictionaries(st.sampled_from(["session_id", "code", "nack", "report", "mode", "deadline_s", "x"]),
                           json_like, max_size=4),
    header=st.dictionaries(st.sampled_from(["seq", "round", "ue_id", "corr_id", "version"]), json_like, max_size=2),
)  # fmt: skip
def test_structured_garbage_with_valid_types_is_refused_never_crash(body_type, fields, header):
    try:
        decode(envelope({"type": body_type, **fields}, **header))
    except Rejected as exc:
        assert exc.reason in REASONS


@settings(max_examples=200, deadline=None)
@given(
    index=st.sampled_from(range(len(EXAMPLES))),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_bit_flipped_messages_decode_in_bounds_or_are_refused(index, flips):
    data = bytearray(encode(make_envelope(EXAMPLES[index], ue_id="ue-1", seq=1, round=1)))
    for position, mask in flips:
        data[position % len(data)] ^= mask
    try:
        env = decode(bytes(data))
    except Rejected as exc:
        assert exc.reason in REASONS
    else:
        assert encode(env)  # whatever got through is within every bound, so it re-encodes
