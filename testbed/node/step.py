"""The training step's interfaces as the daemons' cores see them: bytes in, bytes out (no torch here, so a core
and a UE that only runs the encoder forward load without it). The method behind them is testbed/node/training.py
(LearningBs, LearningUe and the placeholders) or testbed/node/encoder_ue.py (EncoderUe, without torch)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from testbed.control.protocol import Assign
from testbed.learning.clock import ClockConfig
from testbed.learning.codec_config import CodecConfig, compute_fractions
from testbed.learning.spec import LocalTraining
from testbed.link.airtime import DEFAULT_ANALOG_FRAME_SYMBOLS
from testbed.mode import Mode
from testbed.policy.budget import WorkOption

if TYPE_CHECKING:
    from testbed.link.framelink import Heard
    from testbed.node.assigners import Orders, UeView


class BsTraining(Protocol):
    """BS side of a round. ``clock``: the round's fixed costs, with the BS's own training speed (what its step
    takes on the virtual air, testbed/node/jobtime.py)."""

    clock: ClockConfig

    def model_bytes(self, round_no: int, orders: Mapping[str, Orders], views: Sequence[UeView]) -> bytes:
        """The model to broadcast at the start of round ``round_no``; ``orders`` are the participants' ASSIGN."""
        ...

    def consume(
        self, round_no: int, uploads: Mapping[str, bytes], analog: Mapping[str, Mapping[int, Heard]] | None = None
    ) -> dict[str, Any]:
        """The verified uploads (UE id -> bytes) of the UEs that finished in time, and the analog frames heard
        from each (frame index -> frame); called only when the round counts. Returns fields for the round
        record."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """What a restarted BS needs to continue with the same model (tensors, numbers, lists, dicts)."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class UeLink:
    """What the UE core knows of its link when it trains: its latest measured SNR in dB (None before any
    measurement: the configured [training] value is used) and the complex values one analog frame carries."""

    snr_db: float | None = None
    analog_frame_symbols: int = DEFAULT_ANALOG_FRAME_SYMBOLS


class UeTraining(Protocol):
    """UE side of a round. ``last_work``: (samples, fraction of a full training step per sample) of the latest
    upload, for the UE's energy account; ``last_analog``: the analog frames ((n,) complex64 each) that go
    with it, empty unless the mode sends symbols."""

    last_work: tuple[int, float]
    last_analog: tuple[np.ndarray, ...]

    def work_options(self, model: bytes, assign: Assign) -> list[WorkOption]:
        """The ways to do this round, most work first (the UE keeps to its energy budget with the first that
        fits, testbed/policy/budget.py)."""
        ...

    def upload_bytes(
        self, round_no: int, model: bytes, assign: Assign, local_steps: int | None = None, link: UeLink = UeLink()
    ) -> bytes:
        """The upload (update, symbols' index or samples, per ASSIGN's mode) computed from the verified model,
        with ``local_steps`` of a ``work_options`` entry (None: the full round) over this UE's ``link``."""
        ...


def centralized_work_options(
    mode: Mode, work: LocalTraining, codec: CodecConfig, index_bytes: Callable[[int], int],
    raw_bytes: Callable[[], int | None],
) -> list[WorkOption]:  # fmt: skip
    """The ways to do a round that is not distributed, most work first: symbols, every number of local steps from
    the full round down to one, with the digital index's size (``index_bytes(rows)``); a raw upload, the one
    block the BS asked for (``raw_bytes()``: its size, None if it asked for none); idle, nothing."""
    if mode is Mode.CENTRALIZED_DECODER:
        b, fraction, k_sym = work.batch_size, compute_fractions(codec)[0], codec.num_symbols
        return [WorkOption(k, k * b, fraction, index_bytes(k * b), k * b * k_sym) for k in range(work.steps, 0, -1)]
    size = raw_bytes() if mode is Mode.CENTRALIZED_FULL else None
    return [WorkOption(0, 0, 1.0, 0 if size is None else size)]
