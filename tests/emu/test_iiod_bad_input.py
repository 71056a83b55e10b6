"""Bad protocol input costs the sender an error reply or its connection; the board keeps serving the others."""

from __future__ import annotations

import socket

import pytest
from emu_helpers import Raw

from testbed.emu.iiod import MAX_LINE_BYTES


def assert_still_serving(uri: str) -> None:
    raw = Raw(uri)
    try:
        assert raw.ask("VERSION").startswith("0.24.")
        assert raw.ask("READ ad9361-phy INPUT voltage0 gain_control_mode") == str(len("slow_attack") + 1)
    finally:
        raw.close()


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("FROBNICATE", "-22"),  # EINVAL
        ("READ", "-22"),
        ("READ no-such-device frequency", "-19"),  # ENODEV
        ("READ ad9361-phy INPUT voltage0 no_such_attr", "-2"),  # ENOENT
        ("READ ad9361-phy OUTPUT voltage9 frequency", "-2"),
        ("READ ad9361-phy INPUT voltage0", "-22"),  # a channel without an attribute
        ("OPEN cf-ad9361-lpc 99999999999 00000003", "-12"),  # ENOMEM: more than the board holds
        ("OPEN cf-ad9361-lpc 4096 zz", "-22"),
        ("OPEN cf-ad9361-lpc 4096 00000004", "-22"),  # no such channel
        ("OPEN ad9361-phy 4096 00000003", "-19"),
        ("READBUF cf-ad9361-lpc 4096", "-9"),  # EBADF: nothing open on this connection
        ("TIMEOUT x", "-22"),
        ("ZPRINT", "-38"),  # ENOSYS: a 1.x client falls back to PRINT
        ("SET cf-ad9361-lpc BUFFERS_COUNT 1000", "-22"),
    ],
)
def test_malformed_or_unknown_gets_an_errno(plutos, line, reply):
    raw = Raw(plutos.uris["bs"])
    assert raw.ask(line) == reply
    assert raw.ask("VERSION").startswith("0.24.")  # the same connection goes on
    raw.close()


def test_huge_lengths(plutos):
    uri = plutos.uris["bs"]
    raw = Raw(uri)
    assert raw.ask("OPEN cf-ad9361-lpc 1024 00000003") == "0"
    assert raw.ask("READBUF cf-ad9361-lpc 99999999999") == "-22"  # more than the buffer
    raw.send(b"WRITE ad9361-phy filter_fir_config 99999999999\r\n")  # a payload that cannot be skipped
    assert raw.closed()
    long = Raw(uri)
    long.send(b"READ " + b"x" * (2 * MAX_LINE_BYTES))  # no end of line in sight
    assert long.closed()
    assert_still_serving(uri)


def test_client_vanishing_mid_buffer_releases_the_air(plutos):
    tx, rx = plutos.uris["bs"], plutos.uris["ue-1"]
    writer = Raw(tx)
    assert writer.ask("OPEN cf-ad9361-dds-core-lpc 4096 00000003") == "0"
    assert writer.ask("WRITEBUF cf-ad9361-dds-core-lpc 16384") == "0"
    writer.send(b"\x00" * 1000)  # then gone, mid-payload
    writer.sock.close()
    reader = Raw(rx)
    assert reader.ask("OPEN cf-ad9361-lpc 4096 00000003") == "0"
    reader.send(b"READBUF cf-ad9361-lpc 16384\r\n")
    assert reader.line() == "16384"  # served: the vanished board holds no clock
    assert reader.line() == "00000003"
    assert len(reader.exact(16384)) == 16384
    reader.close()
    assert_still_serving(tx)


def test_a_thousand_connections_opened_and_dropped(plutos):
    uri = plutos.uris["bs"]
    host, port = uri.split(":")[1:]
    keeper = Raw(uri)  # a client that stays connected through it all
    assert keeper.ask("VERSION").startswith("0.24.")
    for k in range(1000):
        sock = socket.create_connection((host, int(port)), timeout=10)
        if k % 3 == 0:
            sock.sendall(b"PRINT\r\n")  # and leave before reading the context
        elif k % 3 == 1:
            sock.sendall(b"OPEN cf-ad9361-lpc 4096 00000003\r\nREADBUF cf-ad9361-lpc 16384\r\n")
        sock.close()
    assert keeper.ask("READ ad9361-phy OUTPUT altvoltage0 frequency") == str(len("2400000000") + 1)
    keeper.close()
    assert_still_serving(uri)
