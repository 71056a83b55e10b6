"""The BS core without any I/O: events in, actions out, a hand-turned clock. With [training] the first round
waits for every live UE's CAPABILITY_REPORT (no grouping on an assumed board), or for capability_wait_s; then
the BS sounds the links, offers FIRST_INFO and starts the round with the modes the UEs chose."""

from __future__ import annotations

import numpy as np
import pytest

from testbed.control import protocol
from testbed.control.config import Event
from testbed.control.protocol import make_envelope
from testbed.link.analog import ANALOG_MCS, analog_seq
from testbed.link.framelink import Heard
from testbed.mode import Mode
from testbed.node.actions import OnAir, OpenRound, Received, Record, Send, Transmit
from testbed.node.assigners import config_assigner
from testbed.node.bs_core import BsCore
from testbed.node.config import AirConfig, Assignment, BsSection
from testbed.node.training import PlaceholderBs

BS = BsSection(ues={"ue-1": 1, "ue-2": 2}, min_ues=2, round_gap_s=0.0, capability_wait_s=5.0, state_dir="")
REPORT = protocol.CapabilityReport(6e8, 1.5e9, 1e8, 5.6e5, 50.0, 7.0, 500, 2**30, 1.1e-27, -82.75)


class Clock:
    def __init__(self) -> None:
        self.s = 0.0

    def __call__(self) -> float:
        return self.s


def core(clock: Clock, wait: bool) -> BsCore:
    return BsCore(BS, AirConfig(), PlaceholderBs(3000, 1), config_assigner(Assignment()), now=clock,
                  cursor=lambda: int(clock.s * 1e6), wall=clock, ue_chooses=wait)  # fmt: skip


def message(ue: str, body: protocol.Body, seq: int = 1) -> Event:
    return Event("message", ue, 0, make_envelope(body, ue_id=ue, seq=seq, round=0))


def report(ue: str) -> Event:
    return message(ue, REPORT)


def offers(bs: BsCore) -> dict[str, protocol.FirstInfo]:
    """Sound the links (the sounding burst goes on the air), then the FIRST_INFO of each UE."""
    sounding = [a for a in bs.timers() if isinstance(a, Transmit)]
    assert len(sounding) == 1 and not opened(bs.timers())  # nothing else until the sounding is on the air
    bs.radio(OnAir(sounding[0].job.job_id, 0))
    return {a.to: a.body for a in bs.timers() if isinstance(a, Send) and isinstance(a.body, protocol.FirstInfo)}


def reported_pair(clock: Clock) -> BsCore:
    """A BS with ue-1 and ue-2 joined and their capability reported."""
    bs = core(clock, wait=True)
    for ue in ("ue-1", "ue-2"):
        bs.control(Event("joined", ue, 0))
        bs.control(report(ue))
    return bs


def assigned(actions: list) -> dict[str, Mode]:
    return {a.to: a.body.mode for a in actions if isinstance(a, Send) and isinstance(a.body, protocol.Assign)}


def choice(info: protocol.FirstInfo, mode: Mode = Mode.DISTRIBUTED, group: int = 0) -> protocol.ModeChoice:
    return protocol.ModeChoice(info.revision, mode, group, 2678.0, None, "none", "test")


def opened(actions: list) -> bool:
    return any(isinstance(a, OpenRound) for a in actions)


def test_the_first_round_waits_for_every_capability_report() -> None:
    clock = Clock()
    bs = core(clock, wait=True)
    asked = bs.control(Event("joined", "ue-1", 0)) + bs.control(Event("joined", "ue-2", 0))
    assert [a.to for a in asked if isinstance(a, Send)] == ["ue-1", "ue-2"]  # CAPABILITY_ENQUIRY to each
    assert not opened(bs.timers())
    bs.control(report("ue-1"))
    clock.s = 1.0
    assert not opened(bs.timers())  # ue-2 has not reported
    bs.control(report("ue-2"))
    sent = offers(bs)
    assert set(sent) == {"ue-1", "ue-2"}
    assert (sent["ue-1"].rule, sent["ue-1"].assigned_mode) == ("fixed", "distributed")
    bs.control(message("ue-1", choice(sent["ue-1"]), seq=2))
    assert not opened(bs.timers())  # ue-2 has not chosen
    bs.control(message("ue-2", choice(sent["ue-2"]), seq=2))
    actions = bs.timers()
    assert opened(actions) and assigned(actions) == {"ue-1": Mode.DISTRIBUTED, "ue-2": Mode.DISTRIBUTED}


def test_an_inconsistent_choice_is_refused_with_the_reason_and_the_ue_sits_out() -> None:
    bs = reported_pair(Clock())
    sent = offers(bs)
    refused = bs.control(message("ue-1", choice(sent["ue-1"], Mode.CENTRALIZED_FULL, 2), seq=2))
    assert [a.body.code for a in refused] == ["inconsistent_choice"]
    assert "assigned distributed" in refused[0].body.detail
    bs.control(message("ue-2", choice(sent["ue-2"]), seq=2))
    assert assigned(bs.timers()) == {"ue-1": Mode.IDLE, "ue-2": Mode.DISTRIBUTED}


def test_a_ue_that_refuses_first_info_keeps_its_last_accepted_choice() -> None:
    bs = reported_pair(Clock())
    sent = offers(bs)
    for seq, ue in enumerate(("ue-1", "ue-2"), start=2):
        bs.control(message(ue, choice(sent[ue]), seq=seq))
    assert opened(bs.timers())
    assert bs.waiting_for == ["ue-1", "ue-2"]
    bs.control(Event("round_complete", "", 1))  # round 1 ends on the control plane (nothing uploaded)
    again = {a.to: a.body for a in bs.timers() if isinstance(a, Send) and isinstance(a.body, protocol.FirstInfo)}
    assert set(again) == {"ue-1", "ue-2"} and again["ue-1"].revision == sent["ue-1"].revision  # nothing changed
    bs.control(message("ue-1", protocol.Error("refused_first_info", "unknown rule"), seq=5))
    bs.control(message("ue-2", choice(again["ue-2"]), seq=5))
    assert assigned(bs.timers()) == {"ue-1": Mode.DISTRIBUTED, "ue-2": Mode.DISTRIBUTED}


def test_a_ue_that_never_reports_is_planned_after_the_wait() -> None:
    clock = Clock()
    bs = core(clock, wait=True)
    bs.control(Event("joined", "ue-1", 0))
    bs.control(Event("joined", "ue-2", 0))
    bs.control(report("ue-1"))
    clock.s = 4.9
    assert not opened(bs.timers())
    clock.s = 5.0
    sent = offers(bs)  # planned without ue-2's report: it is offered the same first information
    assert set(sent) == {"ue-1", "ue-2"}
    bs.control(message("ue-1", choice(sent["ue-1"]), seq=2))
    clock.s = 9.9
    assert not opened(bs.timers())
    clock.s = 10.0  # ue-2 never chose: it sits the round out
    actions = bs.timers()
    assert opened(actions) and assigned(actions) == {"ue-1": Mode.DISTRIBUTED, "ue-2": Mode.IDLE}


def test_without_training_nothing_is_awaited() -> None:
    bs = core(Clock(), wait=False)
    bs.control(Event("joined", "ue-1", 0))
    bs.control(Event("joined", "ue-2", 0))
    assert opened(bs.timers())


def test_analog_frames_are_kept_by_round_and_index_and_counted_in_the_record() -> None:
    """The BS keeps the first copy of each analog frame of the open round from a participant; a frame tagged
    with another round, or from a node outside [bs.ues], is dropped; the record sets frames received against
    UPLINK_DONE's count and reports the receiver's noise estimate."""
    clock = Clock()
    bs = core(clock, wait=False)
    bs.control(Event("joined", "ue-1", 0))
    bs.control(Event("joined", "ue-2", 0))
    assert opened(bs.timers())

    def analog(node: int, round_no: int, index: int, noise_var: float) -> Received:
        values = np.ones(48, np.complex64)
        return Received(0, Heard(None, node, ANALOG_MCS, 10.0, 0.0, symbols=values, noise_var=noise_var,
                                 seq=analog_seq(round_no, index)))  # fmt: skip

    for ev in (analog(2, 1, 0, 0.1), analog(2, 1, 0, 9.0), analog(2, 1, 2, 0.1), analog(2, 0, 1, 9.0),
               analog(7, 1, 1, 9.0)):  # fmt: skip
        assert bs.radio(ev) == []
    done = protocol.UplinkDone(1, 0, 0, 0.1, 0.0, analog_frames=3)
    bs.control(Event("message", "ue-2", 1, make_envelope(done, ue_id="ue-2", seq=2, round=1)))
    actions = bs.control(Event("round_deadline", "", 1))  # no digital upload arrived: the round is skipped
    record = next(a for a in actions if isinstance(a, Record)).fields
    assert record["outcome"] == "skipped"
    assert record["analog"] == {"ue-2": {"frames_sent": 3, "frames_received": 2, "noise_var": 0.1,
                                         "snr_db": pytest.approx(10.0)}}  # fmt: skip
