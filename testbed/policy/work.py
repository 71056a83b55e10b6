"""What one round of each training mode asks of a UE, in the learning layer's sizes.

``WorkSizes`` is shared by the cost-aware grouping (centralized_cost.py prices the two centralized modes with
it) and the policy (assign.py turns it into the allocator's ``RoundWork`` per mode); it lives here, below
both, so neither imports the other. ``codec_work_sizes`` reads the sizes off a codec and a training spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from testbed.errors import PolicyError
from testbed.learning.assignment import Mode
from testbed.learning.clock import ClockConfig
from testbed.policy.allocation import AnalogUpload, DigitalUpload, RoundWork

if TYPE_CHECKING:
    from testbed.learning.codec_config import CodecConfig
    from testbed.learning.spec import LocalTraining


@dataclass(frozen=True)
class WorkSizes:
    """Per-round work in the learning layer's terms (sizes of one round of each mode)."""

    samples_per_round: int
    update_bytes: int
    symbols_per_sample: int
    raw_bytes_per_sample: int
    encoder_fraction: float
    raw_samples_per_round: int = 0  # raw samples a centralized-full UE sends per round (0: all in its first)
    analog_min_snr_db: float = 5.0  # semantic symbols are sent at >= 5 dB (the codec degrades gracefully below)
    label_bytes_per_sample: int = 1  # class label sent with each sample's symbols (ClockConfig.bytes_per_label)

    def for_mode(self, mode: Mode) -> RoundWork:
        """The RoundWork a UE in ``mode`` does each round."""
        n = self.samples_per_round
        if mode is Mode.DISTRIBUTED:
            return RoundWork(n, DigitalUpload(self.update_bytes))
        if mode is Mode.CENTRALIZED_DECODER:
            upload = AnalogUpload(n * self.symbols_per_sample, self.analog_min_snr_db)
            return RoundWork(n, upload, self.encoder_fraction)
        if mode is Mode.CENTRALIZED_FULL:
            return RoundWork(0, DigitalUpload(self.raw_samples_per_round * self.raw_bytes_per_sample))
        raise PolicyError(f"mode {mode!r} has no round work")


def codec_work_sizes(
    codec: CodecConfig | None = None, training: LocalTraining | None = None, raw_block_samples: int = 0
) -> WorkSizes:
    """Per-round work of ``codec`` trained as ``training`` says (the learning layer's defaults if None);
    ``raw_block_samples`` as in testbed.learning.rounds.RoundConfig (0: raw data go up once, in round 0)."""
    from testbed.learning.codec_config import CodecConfig, compute_fractions, num_parameters
    from testbed.learning.spec import LocalTraining

    cfg = codec or CodecConfig()
    work, clock = training or LocalTraining(), ClockConfig()
    n_params = num_parameters(cfg)
    return WorkSizes(
        samples_per_round=work.samples_per_round,
        update_bytes=n_params * clock.bytes_per_param,
        symbols_per_sample=cfg.num_symbols,
        raw_bytes_per_sample=cfg.image_size_px**2 * clock.bytes_per_pixel + clock.bytes_per_label,
        encoder_fraction=compute_fractions(cfg)[0],
        raw_samples_per_round=raw_block_samples,
        label_bytes_per_sample=clock.bytes_per_label,
    )
