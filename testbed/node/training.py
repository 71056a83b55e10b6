"""The training step inside a round, as the daemons see it: bytes in, bytes out.

BS: ``model_bytes(round, orders, views)`` plans the round and returns the broadcast; ``consume(round,
uploads, analog)`` takes the verified uploads of the UEs that finished in time, and the analog frames the BS
received from each, and returns fields for the round record. UE: ``upload_bytes(round, model, assign, link)``
turns the verified model into its upload (a centralized-decoder UE: the symbols' index; the symbols
themselves in ``last_analog``, for the core to send as analog frames).

``LearningBs`` / ``LearningUe`` (a [training] section) run the method: ``RoundRunner.plan_round`` ->
``wire.encode_model``; at the UE ``wire.decode_model`` -> its mode's local work (``LocalUe``) -> ``wire``
bytes; back at the BS each upload is decoded against the plan (malformed bytes: refused with the reason,
the round goes on) and ``RoundRunner.finish_round`` applies the guards and the joint update; the BS then
evaluates on its test split. ``PlaceholderBs`` / ``PlaceholderUe`` (no [training]) send seeded bytes that a
test can recompute exactly, for link-level tests.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from testbed.control.protocol import Assign
from testbed.errors import LearningError
from testbed.learning import wire
from testbed.learning.assignment import UeAssignment
from testbed.learning.clock import ClockConfig
from testbed.learning.codec import SemanticCodec
from testbed.learning.codec_config import CodecConfig, compute_fractions
from testbed.learning.data import ImageDataset, load_dataset
from testbed.learning.evaluate import evaluate_classes
from testbed.learning.guards import Update
from testbed.learning.modes import LocalUe, SentSymbols
from testbed.learning.rounds import Contribution, RoundConfig, RoundPlan, RoundReport, RoundRunner
from testbed.learning.sources import to_images
from testbed.learning.spec import LocalTraining, TrainingSpec
from testbed.learning.split import PendingSymbols, encoder_gradient, split_reference
from testbed.learning.wire_format import WIDEST
from testbed.link.airtime import DEFAULT_ANALOG_FRAME_SYMBOLS, LinkAirtime
from testbed.link.framelink import Heard
from testbed.mode import Mode
from testbed.node.assigners import Orders, UeView, learning_profile
from testbed.node.config import AirConfig
from testbed.node.jobtime import bs_clock
from testbed.node.shards import bs_seed, load_shard, model_seed, shard_indices, ue_seed
from testbed.node.step import UeLink, centralized_work_options
from testbed.policy.budget import WorkOption

log = logging.getLogger(__name__)


# --- the method --------------------------------------------------------------------------------------------
def training_data(t: TrainingSpec, num_shards: int) -> tuple[list[ImageDataset], ImageDataset]:
    """(``num_shards`` IID shards, the BS's test split), identical on every node with the same [training]."""
    data = load_dataset(t.dataset)
    parts, test = shard_indices(t, data.labels.numpy(), data.num_classes, num_shards)
    return [data.subset(idx) for idx in parts], data.subset(test)


def codec_config(t: TrainingSpec, data: ImageDataset) -> CodecConfig:
    return t.codec_config(data.image_size_px, data.num_classes)


class LearningBs:
    """The BS's half of the method: RoundRunner without endpoints, the test split, accuracy per round."""

    def __init__(
        self,
        t: TrainingSpec,
        runner: RoundRunner,
        test: ImageDataset,
        *,
        eval_snrs_db: Sequence[float],
        assumed_snr_db: float,
        airtime: LinkAirtime,
        fixed_profiles: bool = False,
        eval_seed: int | None = None,
    ) -> None:
        """``fixed_profiles``: the runner's UE profiles stay as given (the in-process engine knows each UE's
        board and link); else each round's views (capability report, measured uplink SNR) replace them."""
        self.t, self.runner, self.test = t, runner, test
        self.ues, self.codec, self.airtime = list(runner.names), runner.model.cfg, airtime
        self.eval_snrs_db, self.assumed_snr_db, self.fixed_profiles = list(eval_snrs_db), assumed_snr_db, fixed_profiles
        self.eval_seed = t.seed if eval_seed is None else eval_seed
        self._plan: RoundPlan | None = None

    @classmethod
    def for_ues(
        cls, t: TrainingSpec, ues: Sequence[str], air: AirConfig, assumed_snr_db: float, board: str = "laptop"
    ) -> LearningBs:
        """The daemon's BS: IID shards of [training]'s dataset, one per UE of [bs.ues] in order, planned as the
        reference board until each reports; its own training step on ``board`` ([bs] board)."""
        if len(ues) > (t.num_shards or len(ues)):
            raise LearningError(f"{len(ues)} UEs in [bs.ues] but [training] num_shards={t.num_shards}")
        shards, test = training_data(t, t.num_shards or len(ues))
        codec = codec_config(t, test)
        model = SemanticCodec(codec, torch.Generator().manual_seed(model_seed(t)))
        cfg = RoundConfig(
            work=t.local_training,
            server=t.server,
            clock=bs_clock(board, codec),
            raw_block_samples=t.raw_block_samples,
            norm_factor=t.norm_factor,
            split_gradient=t.split_gradient,
        )
        profiles = [learning_profile(UeView(ue, None, None), assumed_snr_db, 0.0) for ue in ues]
        sizes = [len(s) for s in shards[: len(ues)]]  # shard i = i-th UE of [bs.ues] until it reports
        gen = torch.Generator().manual_seed(bs_seed(t))
        airtime = air.airtime(len(ues))  # the link's model of this air: the virtual clock and the policy
        runner = RoundRunner(model, cfg, profiles, sizes, gen)
        return cls(t, runner, test, eval_snrs_db=[t.symbol_snr_db()], assumed_snr_db=assumed_snr_db, airtime=airtime)

    @property
    def model(self) -> SemanticCodec:
        return self.runner.model

    @property
    def clock(self) -> ClockConfig:
        return self.runner.cfg.clock

    def model_bytes(self, round_no: int, orders: Mapping[str, Orders], views: Sequence[UeView]) -> bytes:
        for v in views if not self.fixed_profiles else ():
            if v.ue_id in self.ues:
                size = v.capability.num_local_samples if v.capability is not None else self.runner.registered[v.ue_id]
                power = orders[v.ue_id].tx_power_dbm if v.ue_id in orders else 0.0
                self.runner.update_ue(learning_profile(v, self.assumed_snr_db, power), size)
        assignments = []
        for ue, prof in zip(self.ues, self.runner.profiles, strict=True):
            o = orders.get(ue)
            mode = o.mode if o is not None else Mode.IDLE
            assignments.append(UeAssignment(mode, prof.cpu_freq_hz, o.tx_power_dbm if o else prof.tx_power_dbm))
        self._plan = self.runner.plan_round(assignments)
        return wire.encode_model(self.model, self._plan.round_index, self._plan.raw_requests, self._plan.symbol_grads)

    def consume(
        self, round_no: int, uploads: Mapping[str, bytes], analog: Mapping[str, Mapping[int, Heard]] | None = None
    ) -> dict[str, Any]:
        plan, self._plan = self._plan, None
        analog = analog or {}
        if plan is None:
            raise LearningError(f"round {round_no}: consume without model_bytes")
        arrived: dict[str, Contribution] = {}
        refused: dict[str, str] = {}
        for i, ue in enumerate(self.ues):
            if ue in uploads and plan.mode_of(i) is not Mode.IDLE:
                try:
                    got = self._decode(plan, i, uploads[ue], analog.get(ue, {}))
                except LearningError as exc:
                    refused[ue] = str(exc)
                    log.warning("round %d: upload of %s refused: %s", round_no, ue, exc)
                    continue
                if got is not None:
                    arrived[ue] = got
        expected = [ue for i, ue in enumerate(self.ues) if plan.mode_of(i) is not Mode.IDLE]
        late = [ue for ue in expected if ue not in uploads]
        report = self._finish_or_roll_back(plan, arrived, late, refused)
        accuracy, loss, per_class = evaluate_classes(self.model, self.test, self.eval_snrs_db, self.eval_seed)
        finite = all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
        return {"training": {"round_index": report.round_index, "accuracy": accuracy, "loss": loss,
                             "class_accuracy": per_class, "modes": report.modes, "late": report.late,
                             "refused": report.refused, "model_finite": finite,
                             "bs_train_samples": report.bs_train_samples}}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """The runner's state with the raw samples themselves (the UEs are not asked for them again) and what
        each UE registered."""
        return {"runner": self.runner.state_dict(with_raw=True), "registered": dict(self.runner.registered)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.runner.load_state_dict(state["runner"])
        self.runner.registered.update({ue: int(n) for ue, n in state["registered"].items() if ue in self.ues})

    def _finish_or_roll_back(
        self, plan: RoundPlan, arrived: Mapping[str, Contribution], late: list[str], refused: dict[str, str]
    ) -> RoundReport:
        """The joint update; if it raises part-way, the model and the server optimizer are put back as they were
        before it, so a failed round leaves the last good model (the daemon records the round as failed)."""
        saved = copy.deepcopy((self.model.state_dict(), self.runner.optimizer.state_dict()))
        try:
            return self.runner.finish_round(plan, arrived, late=late, refused=refused)
        except BaseException:
            self.model.load_state_dict(saved[0])
            self.runner.optimizer.load_state_dict(saved[1])
            raise

    def _decode(self, plan: RoundPlan, i: int, data: bytes, analog: Mapping[int, Heard]) -> Contribution | None:
        ue, mode, cfg = self.ues[i], plan.mode_of(i), self.codec
        if mode is Mode.DISTRIBUTED:
            reference = {n: p.detach() for n, p in self.model.named_parameters()}
            return wire.decode_update(data, ue, reference, plan.round_index)
        if mode is Mode.CENTRALIZED_DECODER:  # the symbols as received over the air, not bytes
            frames = {f: (h.symbols, float(h.noise_var or 0.0)) for f, h in analog.items() if h.symbols is not None}
            encoder = split_reference(self.model) if self.runner.cfg.split_gradient else None
            return wire.decode_symbols(data, frames, ue, cfg.num_symbols, cfg.num_classes, plan.round_index, encoder)
        request = plan.raw_requests.get(ue)
        if request is None:  # nothing left to send: the UE's empty upload says so
            if data:
                raise LearningError(f"{ue} sent {len(data)} bytes of raw samples; none were requested")
            return None
        return wire.decode_raw(data, ue, cfg.image_size_px, cfg.num_classes, request, plan.round_index)


class LearningUe:
    """A UE's half: its shard, the broadcast model, its mode's local work. ``last_work`` = (samples, fraction
    of a full training step per sample) of the latest upload, for the energy account."""

    def __init__(self, local: LocalUe, codec: CodecConfig, work: LocalTraining, *, split: bool = False) -> None:
        """``split``: split learning (testbed/learning/split.py): keep what a symbol upload needs for the gradient
        the BS returns, and send the encoder gradient with the next symbols."""
        self.codec, self.ue_id, self.work, self.local = codec, local.name, work, local
        self.model = SemanticCodec(codec, torch.Generator().manual_seed(0))  # replaced by every broadcast
        self.scratch = SemanticCodec(codec, torch.Generator().manual_seed(0))
        self.last_work: tuple[int, float] = (0, 1.0)
        self.split, self.pending = split, None  # pending: PendingSymbols of the last symbol upload
        self.split_refused: str | None = None  # why the last symbol gradient for this UE was not used
        self.last_analog: tuple[np.ndarray, ...] = ()

    @classmethod
    def for_shard(cls, t: TrainingSpec, ue_id: str, shard: int) -> LearningUe:
        """The daemon's UE: IID shard ``shard`` of [training]'s dataset; its local training simulates
        [training]'s SNR until the UE has measured its link. Only the shard is loaded (``training_data``'s
        shard ``shard``, without the rest of the set)."""
        pixels, labels, max_value, num_classes = load_shard(t, shard)
        data = ImageDataset(torch.from_numpy(to_images(pixels, max_value)), torch.from_numpy(labels), num_classes)
        gen = torch.Generator().manual_seed(ue_seed(t, shard))
        local = LocalUe(ue_id, data, t.symbol_snr_db(), gen)
        return cls(local, codec_config(t, data), t.local_training, split=t.split_gradient)

    @property
    def num_samples(self) -> int:
        return len(self.local.data)

    def work_options(self, model: bytes, assign: Assign) -> list[WorkOption]:
        """Distributed: every number of local steps from the full round down to one, with the update's size (an
        upper bound: the wire format's integers at their widest); the other modes: ``centralized_work_options``."""
        w = self.work
        if assign.mode is Mode.DISTRIBUTED:
            size = self._update_bytes()
            return [WorkOption(k, k * w.batch_size, 1.0, size) for k in range(w.steps, 0, -1)]

        def raw_bytes() -> int | None:
            request = wire.decode_model(model, self.model).raw_requests.get(self.ue_id)
            return None if request is None else self._raw_bytes(*request)

        return centralized_work_options(assign.mode, w, self.codec, self._index_bytes, raw_bytes)

    def upload_bytes(
        self, round_no: int, model: bytes, assign: Assign, local_steps: int | None = None, link: UeLink = UeLink()
    ) -> bytes:
        state = wire.decode_model(model, self.model)
        self.model.load_state_dict(state.tensors)
        mode, r = assign.mode, state.round_index
        work = self.work if local_steps is None else dataclasses.replace(self.work, steps=local_steps)
        self.last_work, self.last_analog = (0, 1.0), ()
        self.local.measured(link.snr_db)  # local training through this UE's own link
        pending, self.pending = self.pending, None  # a symbol gradient answers only the very next round
        if mode is Mode.DISTRIBUTED:
            self.last_work = (work.samples_per_round, 1.0)
            update = self.local.distributed(self.model, work)
            if work.steps < self.work.steps:  # a reduced round weighs in by the share of its steps it trained
                weight = max(1, update.num_samples * work.steps // self.work.steps)
                update = Update(update.source, update.tensors, weight)
            return wire.encode_update(update, r)
        if mode is Mode.CENTRALIZED_DECODER:
            self.last_work = (work.samples_per_round, compute_fractions(self.codec)[0])
            idx = self.local.symbol_indices(work)
            sent = self.local.symbols(self.model, work, idx)
            if self.split:
                sent = self._split_symbols(state, pending, sent, idx)
            index, frames = wire.encode_symbols(sent, r, link.analog_frame_symbols)
            self.last_analog = tuple(frames)
            return index
        request = state.raw_requests.get(self.ue_id)
        if mode is Mode.CENTRALIZED_FULL and request is not None:
            return wire.encode_raw(self.local.raw(*request), request[0], r)
        return b""  # idle, or no raw samples left: an empty upload completes the round for this UE

    def _update_bytes(self) -> int:
        zeros = {n: torch.zeros_like(p) for n, p in self.model.named_parameters()}
        return len(wire.encode_update(Update(self.ue_id, zeros, WIDEST), WIDEST))

    def _index_bytes(self, rows: int) -> int:
        """The digital index of a symbol upload of ``rows`` rows (its analog frames are priced apart)."""
        sent = SentSymbols(self.ue_id, torch.ones(rows, self.codec.num_symbols, dtype=torch.complex64),
                           torch.zeros(rows, dtype=torch.int64))  # fmt: skip
        return len(wire.encode_symbols(sent, WIDEST, DEFAULT_ANALOG_FRAME_SYMBOLS)[0])

    def _raw_bytes(self, start: int, count: int) -> int:
        return len(wire.encode_raw(self.local.raw(start, count), WIDEST, WIDEST))

    # --- split learning (testbed/learning/split.py) --------------------------------------------------------
    def _split_symbols(
        self, state: wire.ModelState, pending: PendingSymbols | None, sent: SentSymbols, idx: torch.Tensor
    ) -> SentSymbols:
        """This round's symbols (of samples ``idx``) with the encoder gradient for last round's symbols if the BS
        sent theirs; this round's samples and phi are kept for the next round's symbol gradient."""
        split = self._encoder_gradient(state, pending)
        phi = {n: t.detach().clone() for n, t in self.model.encoder.state_dict().items()}
        self.pending = PendingSymbols(state.round_index, idx, phi)
        if split is not None:  # phi forward and backward over last round's samples, on top of the encoding
            samples, fraction = self.last_work
            self.last_work = (samples, fraction + 3.0 * fraction * len(pending.indices) / samples)  # type: ignore[union-attr]
        return dataclasses.replace(sent, split=split)

    def _encoder_gradient(self, state: wire.ModelState, pending: PendingSymbols | None) -> Update | None:
        """The encoder gradient at phi_{r-1} for the BS's symbol gradient of round r-1; None (logged, reason in
        ``split_refused``) when there is none or it does not fit what this UE sent."""
        got = state.symbol_grads.get(self.ue_id)
        self.split_refused = None
        if got is None:
            return None
        if isinstance(got, str):
            self.split_refused = got
        elif pending is None or got.round_index != pending.round_index:
            sent = "no symbols" if pending is None else f"symbols in round {pending.round_index}"
            self.split_refused = f"symbol gradient for round {got.round_index}, but this UE sent {sent} last round"
        else:
            self.scratch.encoder.load_state_dict(pending.encoder)
            images = self.local.data.images[pending.indices]
            try:
                tensors = encoder_gradient(self.scratch.encoder, images, got.grads)
            except LearningError as exc:
                self.split_refused = str(exc)
            else:
                return Update(self.ue_id, tensors, len(self.local.data))
        log.warning("round %d: %s refuses its symbol gradient: %s", state.round_index, self.ue_id, self.split_refused)
        return None

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to answer the next symbol gradient: the pending symbol upload."""
        return {"pending": None if self.pending is None else self.pending.state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.pending = None if state["pending"] is None else PendingSymbols.from_state(state["pending"])


# --- the placeholder ---------------------------------------------------------------------------------------
class PlaceholderBs:
    """Model of ``model_size_bytes`` seeded bytes per round; keeps the SHA-256 of what it consumed."""

    clock = ClockConfig()  # it trains nothing: its step takes no time on the virtual air

    def __init__(self, model_size_bytes: int, seed: int) -> None:
        self.model_size_bytes, self.seed = model_size_bytes, seed
        self.consumed: dict[int, dict[str, str]] = {}

    def model_bytes(
        self, round_no: int, orders: Mapping[str, Orders] | None = None, views: Sequence[UeView] = ()
    ) -> bytes:
        return np.random.default_rng([self.seed, round_no]).bytes(self.model_size_bytes)

    def consume(
        self, round_no: int, uploads: Mapping[str, bytes], analog: Mapping[str, Mapping[int, Heard]] | None = None
    ) -> dict[str, Any]:
        self.consumed[round_no] = {ue: hashlib.sha256(data).hexdigest() for ue, data in uploads.items()}
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}  # its model is a function of the round number

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class PlaceholderUe:
    """Upload of ``upload_size_bytes``: SHA-256 in counter mode over (model digest, UE id), so the BS (or a
    test) can check that each upload came from the right model and the right UE."""

    def __init__(self, ue_id: str, upload_size_bytes: int) -> None:
        self.ue_id, self.upload_size_bytes = ue_id, upload_size_bytes
        self.last_work: tuple[int, float] = (0, 1.0)
        self.last_analog: tuple[np.ndarray, ...] = ()

    def work_options(self, model: bytes, assign: Assign) -> list[WorkOption]:
        return [WorkOption(0, 0, 1.0, self.upload_size_bytes)]

    def upload_bytes(
        self, round_no: int, model: bytes, assign: Assign, local_steps: int | None = None, link: UeLink = UeLink()
    ) -> bytes:
        return placeholder_upload(model, self.ue_id, self.upload_size_bytes)


def placeholder_upload(model: bytes, ue_id: str, size_bytes: int) -> bytes:
    """The placeholder upload of ``ue_id`` for ``model`` (SHA-256 blocks of digest || id || counter)."""
    seed = hashlib.sha256(model).digest() + ue_id.encode()
    blocks = (hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(-(-size_bytes // 32)))
    return b"".join(blocks)[:size_bytes]
