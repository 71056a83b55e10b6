"""The BS's side of one round's first information: what each UE was offered, the FIRST_INFO it was sent
(a new revision whenever that changes), its answer, and each UE's last accepted mode.

No I/O: the BS core (bs_core.py) decides when to offer and when to stop waiting; this holds the exchange and
checks each MODE_CHOICE with the assigner (docs/control-protocol.md, "First information").
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

import msgspec

from testbed.control.protocol import Error, FirstInfo, ModeChoice
from testbed.mode import Mode
from testbed.node.actions import Action, Send
from testbed.node.assigners import Assigner, Offer, UeView
from testbed.node.runtime import event
from testbed.policy.wire import choice_from_wire, first_info_to_wire

log = logging.getLogger(__name__)

REFUSED_PREFIX = "refused FIRST_INFO: "


class FirstInfoExchange:
    """See the module docstring. ``revision`` counts the FIRST_INFO versions sent (kept in the BS's state)."""

    def __init__(self, assigner: Assigner) -> None:
        self.assigner = assigner
        self.revision = 0
        self.offered_s: float | None = None  # when this round's offer went out (None: no offer open)
        self._sent: dict[str, FirstInfo] = {}
        self._offers: dict[str, Offer] = {}
        self._views: dict[str, UeView] = {}
        self._answers: dict[str, ModeChoice | str] = {}  # this round: the accepted choice, or why none
        self._accepted: dict[str, Mode] = {}  # each UE's last accepted mode (kept if it refuses a FIRST_INFO)

    def offer(self, views: Sequence[UeView], now_s: float) -> list[Action]:
        """FIRST_INFO to every UE of ``views``."""
        self._views = {v.ue_id: v for v in views}
        self._offers = self.assigner.offers(views)
        self._answers = {}
        self.offered_s = now_s
        actions: list[Action] = []
        for v in views:
            offer = self._offers[v.ue_id]
            body = first_info_to_wire(offer.policy, offer.allocation, v.uplink_snr_db)
            last = self._sent.get(v.ue_id)
            same = last is not None and msgspec.structs.replace(last, revision=0) == body
            if not same:
                self.revision += 1
            body = msgspec.structs.replace(body, revision=last.revision if same else self.revision)  # type: ignore[union-attr]
            self._sent[v.ue_id] = body
            actions.append(Send(body, v.ue_id))
        event(log, "first_info", ues=list(self._views), revision=self.revision)
        return actions

    def offered_view(self, ue: str) -> UeView | None:
        return self._views.get(ue)

    def answer(self, ue: str, body: ModeChoice, view: UeView | None) -> list[Action]:
        """A UE's MODE_CHOICE, checked against its offer on ``view`` (its figures as the BS holds them now):
        accepted, or refused with ERROR inconsistent_choice and the reason (the UE sits the round out)."""
        offer, sent = self._offers.get(ue), self._sent.get(ue)
        if offer is None or sent is None or body.revision != sent.revision or ue in self._answers:
            log.info("MODE_CHOICE of %s (revision %d) answers no open offer; ignored", ue, body.revision)
            return []
        choice = choice_from_wire(body)
        reason = "not in this round's plan" if view is None else self.assigner.check(view, offer, choice)
        event(log, "mode_choice", ue=ue, mode=body.mode, group=body.group, capability=body.capability,
              channel_snr_db=body.channel_snr_db, channel_source=body.channel_source, refused=reason,
              why=body.reason)  # fmt: skip
        if reason is not None:
            self._answers[ue] = reason
            return [Send(Error("inconsistent_choice", reason[:256]), ue)]
        self._answers[ue] = body
        self._accepted[ue] = body.mode
        return []

    def refused(self, ue: str, detail: str) -> None:
        """ERROR refused_first_info: the UE keeps its last valid first information."""
        if ue in self._offers and ue not in self._answers:
            log.warning("UE %s refused FIRST_INFO: %s", ue, detail)
            self._answers[ue] = REFUSED_PREFIX + detail

    def waiting(self, live: Collection[str]) -> list[str]:
        """Offered UEs still live that have not answered."""
        return [ue for ue in self._offers if ue not in self._answers and ue in live]

    def chosen(self) -> dict[str, Mode]:
        """Each offered UE's mode for the round: its accepted choice; after a refusal its last accepted one;
        else idle (no answer, or an inconsistent one)."""
        out = {}
        for ue in self._offers:
            answer = self._answers.get(ue)
            if isinstance(answer, ModeChoice):
                out[ue] = answer.mode
            elif isinstance(answer, str) and answer.startswith(REFUSED_PREFIX):
                out[ue] = self._accepted.get(ue, Mode.IDLE)
            else:
                out[ue] = Mode.IDLE
        return out

    def close(self) -> tuple[dict[str, Any], dict[str, str]]:
        """End the exchange for the round: (the accepted choices as plain data, why the others have none)."""
        choices = {ue: msgspec.to_builtins(a) for ue, a in self._answers.items() if isinstance(a, ModeChoice)}
        refused = {ue: a for ue, a in self._answers.items() if isinstance(a, str)}
        self.offered_s, self._offers, self._answers = None, {}, {}
        return choices, refused
