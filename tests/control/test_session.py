"""A whole control session over real CURVE sockets: every message type in its place, server and client loops
driven alternately from the test thread."""

from __future__ import annotations

import time

import numpy as np
import pytest
from control_helpers import WAIT_S, client_config, kinds, poll_until

from testbed.control.client import ControlClient
from testbed.control.config import Event
from testbed.control.protocol import (
    Assign,
    CapabilityEnquiry,
    CapabilityReport,
    ChannelReport,
    Nack,
    UplinkDone,
)
from testbed.control.server import ControlServer
from testbed.errors import ProtocolError
from testbed.link.messages import ChannelReport as LinkChannelReport
from testbed.link.messages import SlotGrant, make_nack, nack_missing

DIGEST = bytes(range(32))


class Pair:
    """One server and one client, pumped in turn until a condition holds on either side's events."""

    def __init__(self, server: ControlServer, client: ControlClient) -> None:
        self.server, self.client = server, client

    def pump(self, until, *, timeout_s: float = WAIT_S) -> tuple[list[Event], list[Event]]:
        bs: list[Event] = []
        ue: list[Event] = []
        end = time.monotonic() + timeout_s
        while not until(bs, ue):
            if time.monotonic() > end:
                raise AssertionError(f"not reached in {timeout_s} s; BS saw {bs}, UE saw {ue}")
            bs += self.server.poll(0.01)
            ue += self.client.poll(0.01)
        return bs, ue


@pytest.fixture
def pair(make_server, keys):
    server = make_server()
    client = ControlClient(client_config("ue-1", server.endpoint), keys.client("ue-1"))
    p = Pair(server, client)
    p.pump(lambda bs, ue: "registered" in [e.kind for e in ue])
    yield p
    client.close(say_bye=False)


def messages(events: list[Event], type_name: str) -> list:
    return [e.message for e in events if e.message is not None and e.message.type == type_name]


def test_capability_enquiry_is_answered_with_the_request_as_correlation(pair):
    enquiry = pair.server.send("ue-1", CapabilityEnquiry())
    _, ue = pair.pump(lambda bs, ue: messages(ue, "CAPABILITY_ENQUIRY"))
    request = messages(ue, "CAPABILITY_ENQUIRY")[0]
    report = CapabilityReport(6e8, 1.5e9, 1e8, 3e6, 5000.0, 7.0, 600, 2**32, 1.1e-27, -82.75)
    pair.client.reply(request, report)
    bs, _ = pair.pump(lambda bs, ue: messages(bs, "CAPABILITY_REPORT"))
    answer = messages(bs, "CAPABILITY_REPORT")[0]
    assert answer.corr_id == enquiry.seq and answer.body == report
    assert pair.server.registry.ues["ue-1"].capability == report


def test_assignment_channel_report_and_nacks_both_ways_within_a_round(pair):
    channel = ChannelReport(LinkChannelReport(0, 1, 20, 17.5, -2.0, 850.0, 0.9, [1.0, 0.9], [0.0, 0.1]))
    pair.client.send(channel)
    bs, _ = pair.pump(lambda bs, ue: messages(bs, "CHANNEL_REPORT"))
    assert pair.server.registry.ues["ue-1"].channel == channel

    assign = Assign("distributed", 1, 3.0, 25.0, 1.2e9, "qpsk-3/4", SlotGrant(1, 96_000, 19_200))
    pair.server.send("ue-1", assign)
    pair.server.start_round(DIGEST, 4096, deadline_s=30.0)
    _, ue = pair.pump(lambda bs, ue: messages(ue, "ROUND_START"))
    assert messages(ue, "ASSIGN")[0].body == assign and pair.client.round == 1

    mask = np.zeros(20, dtype=bool)
    mask[[2, 19]] = True
    pair.client.send(Nack(make_nack(5, mask)))  # the model broadcast missed frames 2 and 19
    bs, _ = pair.pump(lambda bs, ue: messages(bs, "NACK"))
    assert nack_missing(messages(bs, "NACK")[0].body.nack, 20).tolist() == [2, 19]

    pair.server.send("ue-1", Nack(make_nack(9, mask[:10])))  # and the BS misses frame 2 of the uplink
    _, ue = pair.pump(lambda bs, ue: messages(ue, "NACK"))
    assert nack_missing(messages(ue, "NACK")[0].body.nack, 10).tolist() == [2]

    pair.client.send(UplinkDone(9, 10, 9000, 1.5, 2.0))
    bs, _ = pair.pump(lambda bs, ue: "round_complete" in [e.kind for e in bs])
    pair.server.end_round()
    _, ue = pair.pump(lambda bs, ue: messages(ue, "ROUND_END"))
    assert messages(ue, "ROUND_END")[0].body.num_uplinks == 1


def test_missed_deadline_is_reported_and_bye_ends_the_registration(pair):
    pair.server.start_round(DIGEST, 1, deadline_s=0.2)
    bs, _ = pair.pump(lambda bs, ue: "round_deadline" in [e.kind for e in bs])
    assert pair.server.round_state.outstanding == {"ue-1"}
    pair.server.end_round("deadline")
    pair.client.close()  # says BYE
    poll_until(pair.server, lambda bs: kinds(bs, "left") == ["ue-1"])
    assert pair.server.live_ues == []
    with pytest.raises(ProtocolError, match="closed"):
        pair.client.send(UplinkDone(1, 1, 1, 0.0, 0.0))
    with pytest.raises(ProtocolError, match="not registered"):
        pair.server.send("ue-1", CapabilityEnquiry())
