"""A UE's training step without torch (issue 14: "fits the smallest board"): the centralized modes only.

A UE in centralized-decoder mode runs the encoder forward and sends symbols; in centralized-full mode it sends
raw samples; idle, nothing. None of that needs torch: ``EncoderUe`` decodes the model broadcast into numpy
(learning/wire_format.py), runs phi with learning/encoder_np.py and writes the same upload bytes as
LearningUe (testbed/node/training.py) would for the same model, shard and round. Its batches are the torch
UE's too: ``TorchBatches`` draws them as ``torch.randperm`` does with a generator seeded alike (a Fisher-Yates
shuffle driven by MT19937's 32-bit outputs, the generator seeded with the seed's low 32 bits), which the
tests check against torch. Distributed training and split learning's encoder backward need torch: told to
train, this UE refuses (LearningError here, PolicyError when its own mode choice says distributed,
node/first_info.py); split learning is refused at start-up (ConfigError).
"""

from __future__ import annotations

import numpy as np

from testbed.control.protocol import Assign
from testbed.errors import ConfigError, LearningError
from testbed.learning.codec_config import CodecConfig, compute_fractions
from testbed.learning.encoder_np import NumpyEncoder
from testbed.learning.sources import to_images
from testbed.learning.spec import LocalTraining, TrainingSpec
from testbed.learning.wire_format import WIDEST, encode_raw_arrays, encode_symbol_arrays, raw_requests
from testbed.link.airtime import DEFAULT_ANALOG_FRAME_SYMBOLS
from testbed.mode import Mode
from testbed.node.shards import load_shard, ue_seed
from testbed.node.step import UeLink, centralized_work_options
from testbed.policy.budget import WorkOption

NEEDS_TORCH = (
    "this UE runs without torch (the learn extra is not installed) and cannot train in {mode} mode; install "
    "the learn extra on it (docs/lab-guide.md), or have the BS assign it a centralized mode"
)


class TorchBatches:
    """Minibatch indices as ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:batch]``
    draws them, call after call (modes.draw_batch), without torch."""

    def __init__(self, seed: int) -> None:
        self._mt = np.random.RandomState(seed & 0xFFFFFFFF)  # MT19937 seeded as torch seeds its CPU generator

    def draw(self, n: int, batch_size: int) -> np.ndarray:
        """(min(n, batch_size),) int64 indices drawn without replacement."""
        if n < 1:
            raise LearningError("cannot draw a batch from an empty data set")
        perm = np.arange(n, dtype=np.int64)
        draws = self._mt.randint(0, 2**32, size=n - 1, dtype=np.uint32)  # one 32-bit output per position
        for i, r in enumerate(draws.tolist()):
            j = i + r % (n - i)
            perm[i], perm[j] = perm[j], perm[i]
        return perm[: min(n, batch_size)]


class EncoderUe:
    """UeTraining for the centralized modes without torch (see module docstring). The UE's shard: ``pixels``
    (N, ...) as the data set stores them (MNIST: bytes, a quarter of float32's memory) with full-scale value
    ``max_value``, and ``labels`` (N,) int64; ``images`` turns rows into what the encoder takes."""

    def __init__(
        self, ue_id: str, pixels: np.ndarray, labels: np.ndarray, max_value: float, codec: CodecConfig,
        work: LocalTraining, seed: int,
    ) -> None:  # fmt: skip
        if len(labels) == 0:
            raise ConfigError(f"UE {ue_id} holds no data; check the partition")
        self.ue_id, self.pixels, self.labels, self.max_value = ue_id, pixels, labels, max_value
        self.codec, self.work = codec, work
        self.model = NumpyEncoder(codec)  # what UeFirstInfo measures
        self.batches = TorchBatches(seed)
        self.last_work: tuple[int, float] = (0, 1.0)
        self.last_analog: tuple[np.ndarray, ...] = ()

    @classmethod
    def for_shard(cls, t: TrainingSpec, ue_id: str, shard: int) -> EncoderUe:
        """The daemon's UE: IID shard ``shard`` of [training]'s dataset, as LearningUe.for_shard takes it."""
        if t.split_gradient:
            raise ConfigError(
                "[training] split_gradient = true: the UE trains its encoder (backward), which needs torch; install "
                "the learn extra on this UE (docs/lab-guide.md) or turn split learning off"
            )
        pixels, labels, max_value, num_classes = load_shard(t, shard)
        codec = t.codec_config(to_images(pixels[:1], max_value).shape[-1], num_classes)
        return cls(ue_id, pixels, labels, max_value, codec, t.local_training, ue_seed(t, shard))

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def images(self, rows: np.ndarray | slice) -> np.ndarray:
        """(M, 1, H, W) float32 in [0, 1]: the samples at ``rows``, converted as data.py converts the set."""
        side = self.codec.image_size_px
        picked = self.pixels[rows]
        if not len(picked):
            return np.zeros((0, 1, side, side), np.float32)
        return to_images(picked, self.max_value)

    def work_options(self, model: bytes, assign: Assign) -> list[WorkOption]:
        """As LearningUe's for the modes this UE can run."""
        if assign.mode is Mode.DISTRIBUTED:
            raise LearningError(NEEDS_TORCH.format(mode=assign.mode))

        def raw_bytes() -> int | None:
            request = raw_requests(self.model.load_broadcast(model)).get(self.ue_id)
            return None if request is None else self._raw_bytes(*request)

        return centralized_work_options(assign.mode, self.work, self.codec, self._index_bytes, raw_bytes)

    def upload_bytes(
        self, round_no: int, model: bytes, assign: Assign, local_steps: int | None = None, link: UeLink = UeLink()
    ) -> bytes:
        """The symbols' index (frames in ``last_analog``) or the raw block, from the verified broadcast."""
        mode = assign.mode
        if mode is Mode.DISTRIBUTED:
            raise LearningError(NEEDS_TORCH.format(mode=mode))
        msg = self.model.load_broadcast(model)
        r = msg.round_index
        steps = self.work.steps if local_steps is None else local_steps
        self.last_work, self.last_analog = (0, 1.0), ()
        if mode is Mode.CENTRALIZED_DECODER:
            m = steps * self.work.batch_size
            self.last_work = (m, compute_fractions(self.codec)[0])
            idx = np.concatenate([self.batches.draw(self.num_samples, self.work.batch_size) for _ in range(steps)])
            symbols = self.model(self.images(idx))  # (M, k) complex64
            index, frames = encode_symbol_arrays(symbols, self.labels[idx], r, link.analog_frame_symbols)
            self.last_analog = tuple(frames)
            return index
        request = raw_requests(msg).get(self.ue_id)
        if mode is Mode.CENTRALIZED_FULL and request is not None:
            return self._raw(*request, r)
        return b""  # idle, or no raw samples left: an empty upload completes the round for this UE

    def _raw(self, start: int, count: int, round_index: int, start_field: int | None = None) -> bytes:
        """Samples ``start .. start+count-1`` (as many as there are); ``start_field``: the start written (to
        price the upload at the format's widest integers)."""
        end = min(start + count, self.num_samples)
        first = start if start_field is None else start_field
        return encode_raw_arrays(self.images(slice(start, end)), self.labels[start:end], first, round_index)

    def _raw_bytes(self, start: int, count: int) -> int:
        return len(self._raw(start, count, WIDEST, WIDEST))

    def _index_bytes(self, rows: int) -> int:
        """The digital index of a symbol upload of ``rows`` rows (its analog frames are priced apart)."""
        ones = np.ones((rows, self.codec.num_symbols), np.complex64)
        return len(encode_symbol_arrays(ones, np.zeros(rows, np.int64), WIDEST, DEFAULT_ANALOG_FRAME_SYMBOLS)[0])
