"""The hub's wire format: round trips, and any byte soup is a ProtocolError (never a crash)."""

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.errors import ConfigError, ProtocolError
from testbed.radio.protocol import (
    AirInfo,
    Configure,
    Hello,
    Query,
    Receive,
    Samples,
    Transmit,
    check_local_endpoint,
    decode_reply,
    decode_request,
    encode,
)


def test_round_trips():
    iq = (np.arange(6) * (1 + 2j)).astype(np.complex64)
    msg, got = decode_request([bytes(f) for f in encode(Transmit(6, at_sample=7), iq)])
    assert msg == Transmit(6, at_sample=7) and np.array_equal(got, iq)
    msg, _ = decode_request(encode(Hello(1, "bs", 2.4e9, 2.5e6)))
    assert msg == Hello(1, "bs", 2.4e9, 2.5e6)
    msg, got = decode_reply([bytes(f) for f in encode(Samples(100, 6), iq)])
    assert msg.start_sample == 100 and np.array_equal(got, iq)
    assert decode_request(encode(Query())) == (Query(), None)
    info = AirInfo(1, 2.4e9, 1e6, {f"node-{k:03d}-{'x' * 50}": -3.5 for k in range(256)})  # 18 KB: no cap
    assert decode_reply(encode(info)) == (info, None)


@pytest.mark.parametrize(
    "frames",
    [
        [],
        [msgspec.msgpack.encode({"type": "rx", "num_samples": 0})],
        [msgspec.msgpack.encode({"type": "rx", "num_samples": 2**40})],
        [msgspec.msgpack.encode({"type": "configure", "tx_power_dbm": 0.0, "rx_gain_mode": "max", "rx_gain_db": 1.0})],
        [msgspec.msgpack.encode({"type": "tx", "num_samples": 2, "at_sample": -5}), bytes(16)],
        [encode(Receive(4))[0], b"x"],
        [b"\x00" * 5000],
    ],
)
def test_malformed_requests(frames):
    with pytest.raises(ProtocolError):
        decode_request(frames)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=0, max_size=3))
def test_any_bytes_decode_or_raise_protocol_error(frames):
    try:
        decode_request(frames)
    except ProtocolError:
        pass


def test_protocol_gain_modes_match_the_interface():
    from typing import get_args

    from testbed.radio.base import GAIN_MODES
    from testbed.radio.protocol import GainMode

    assert get_args(GainMode) == GAIN_MODES


def test_configure_validates_gain_mode():
    with pytest.raises(ProtocolError, match="rx_gain_mode"):
        decode_request([msgspec.msgpack.encode(Configure(0.0, "turbo", 1.0))])  # the hub checks, not the sender


@pytest.mark.parametrize("endpoint", ["tcp://0.0.0.0:5", "tcp://192.168.1.2:5", "tcp://*:5", "tcp://localhost:5"])
def test_only_local_endpoints(endpoint):
    with pytest.raises(ConfigError):
        check_local_endpoint(endpoint)
