"""Synchronisation figures of the real receiver (issue 2): detection, false alarms, CFO, clock offset.

Every figure comes from whole buffers handed to ``OfdmModem.demodulate``, as in the PER sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from testbed.channel import ChannelModel, SamplingClockOffset
from testbed.experiment.phylab.link import FrameTrial, awgn_only, random_cfo
from testbed.phy import OfdmModem

# Operating points named by issue 2 ("Must reach")
DETECTION_SNR_DB = 4.0
CFO_SNR_DB = 10.0
CFO_RANGE_SPACINGS = 2.0
SCO_PPM = 40.0
SCO_PAYLOAD_BYTES = 4000
QPSK_SNR_DB = 5.0
QPSK_PAYLOAD_BYTES = 1000
# Our choices where the issue names none
SYNC_MCS = "qpsk-1/2"
SYNC_PAYLOAD_BYTES = 100  # detection and CFO depend on preamble and header only; short frames are cheaper
SCO_MCS = "16qam-1/2"  # the MCS of the RX speed target
SCO_SNR_DB = 20.0  # 10 dB above the 16QAM 1/2 reference, so losses are the clock's doing
NOISE_BLOCK_SAMPLES = 2**20  # false-alarm test: noise is fed in blocks of this size

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SyncConfig:
    """How much to measure: frames per figure and noise-only samples for the false-alarm rate."""

    frames: int = 100
    sco_frames: int = 20
    noise_samples: int = 10_000_000


def _sco(rng: np.random.Generator) -> Sequence[ChannelModel]:
    return (SamplingClockOffset(SCO_PPM * rng.choice([-1.0, 1.0])),)


def sync_figures(modem: OfdmModem, cfg: SyncConfig, rng: np.random.Generator, progress: Progress) -> dict:
    """The "sync" section of the report (see module docstring for the operating points)."""
    spacing_hz = modem.cfg.subcarrier_spacing_hz
    short = FrameTrial(modem, SYNC_MCS, SYNC_PAYLOAD_BYTES, rng)

    detected = sum(short(DETECTION_SNR_DB, awgn_only, rng).detected for _ in range(cfg.frames))
    progress(f"sync: detection at {DETECTION_SNR_DB} dB {detected}/{cfg.frames}")

    false_frames, fed = 0, 0
    while fed < cfg.noise_samples:
        n = min(NOISE_BLOCK_SAMPLES, cfg.noise_samples - fed)
        noise = rng.standard_normal(2 * n, dtype=np.float32).view(np.complex64) * np.float32(np.sqrt(0.5))
        false_frames += len(modem.demodulate(noise))
        fed += n
    progress(f"sync: {false_frames} false detections in {fed} noise samples")

    cfo_channel = random_cfo(modem, CFO_RANGE_SPACINGS)
    residual_pct, cfo_missed = [], 0
    for _ in range(cfg.frames):
        rx = short(CFO_SNR_DB, cfo_channel, rng)
        if rx.frame is None:
            cfo_missed += 1
            continue
        residual_pct.append(100.0 * (rx.frame.cfo_hz - rx.channel_models[0].cfo_hz) / spacing_hz)
    res = np.abs(np.array(residual_pct)) if residual_pct else np.array([np.nan])
    progress(f"sync: CFO residual rms {np.sqrt(np.mean(res**2)):.2f} % of a spacing")

    sco = FrameTrial(modem, SCO_MCS, SCO_PAYLOAD_BYTES, rng)
    sco_ok = sum(sco(SCO_SNR_DB, _sco, rng).delivered for _ in range(cfg.sco_frames))
    progress(f"sync: {SCO_PPM:g} ppm {SCO_PAYLOAD_BYTES}-byte frames decoded {sco_ok}/{cfg.sco_frames}")

    qpsk = FrameTrial(modem, "qpsk-1/2", QPSK_PAYLOAD_BYTES, rng)
    qpsk_ok = sum(qpsk(QPSK_SNR_DB, awgn_only, rng).delivered for _ in range(cfg.frames))
    progress(f"sync: qpsk-1/2 at {QPSK_SNR_DB} dB delivered {qpsk_ok}/{cfg.frames}")

    return {
        "detection_rate_at_4db": detected / cfg.frames,
        "detection_frames": cfg.frames,
        "false_detections": false_frames,
        "noise_samples": fed,
        "false_detections_per_1e7_samples": false_frames * 1e7 / fed if fed else None,
        "cfo_residual_rms_pct_spacing": float(np.sqrt(np.mean(res**2))),
        "cfo_residual_p95_pct_spacing": float(np.percentile(res, 95)),
        "cfo_residual_max_pct_spacing": float(np.max(res)),
        "cfo_frames": cfg.frames,
        "cfo_missed": cfo_missed,
        "sco_40ppm_4000b_decoded": sco_ok / cfg.sco_frames,
        "sco_frames": cfg.sco_frames,
        "sco_mcs": SCO_MCS,
        "sco_snr_db": SCO_SNR_DB,
        "qpsk_1_2_success_at_5db": qpsk_ok / cfg.frames,
        "qpsk_frames": cfg.frames,
    }
