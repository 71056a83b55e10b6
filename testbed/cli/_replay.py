"""``testbed radio replay FILE``: decode the OFDM frames of any SigMF recording (ours or another tool's).

The recording is served by ``SigmfReplayRadio`` (datatypes cf32/ci16 either byte order and ci8, scaled by
``testbed:scale`` or the datatype's full scale; the output says which) and demodulated in overlapping
windows, so a long capture needs memory for one window, not for the whole file at once.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.cli._output import Progress, add_json_flag, emit, format_table
from testbed.errors import ConfigError

WINDOW_SAMPLES = 1 << 22  # demodulated at once (32 MiB of complex64), plus the overlap


@dataclass(frozen=True)
class ReplayedFrame:
    """One frame found in a recording: ``start_sample`` on the recorded radio clock, the rest from RxFrame."""

    start_sample: int
    frame_type: str
    mcs: str
    stream_id: int
    seq: int
    crc_ok: bool
    snr_db: float
    cfo_hz: float
    payload: bytes | None


@dataclass(frozen=True)
class Replay:
    """What a recording holds: its format and how it was scaled, and every frame found in it."""

    path: str
    datatype: str
    sample_rate_hz: float
    center_freq_hz: float | None
    num_samples: int
    scale: float
    scale_source: str
    clock_jumps: int
    frames: list[ReplayedFrame]


def add_parser(sub: argparse._SubParsersAction) -> None:
    replay = sub.add_parser(
        "replay",
        help="decode the OFDM frames of a SigMF recording: frames found and decoded, PER, SNR, CFO",
        description="Read FILE (a .sigmf-meta, .sigmf-data, their common stem or a .sigmf archive) with the sigmf "
        "library and "
        "demodulate it at its recorded sample rate. Datatypes cf32_le/be, ci16_le/be, ci8; samples are scaled "
        "by testbed:scale when the metadata has it, else by the datatype's full scale (2^15 for ci16, 2^7 "
        "for ci8), and the output says which.",
    )
    replay.add_argument("file", help="the recording (STEM, STEM.sigmf-meta, STEM.sigmf-data or ARCHIVE.sigmf)")
    replay.add_argument("--frames-sent", type=int,
                        help="frames the transmitter sent: PER counts the ones never decoded (default: PER over "
                        "the frames found)")  # fmt: skip
    add_json_flag(replay)
    replay.set_defaults(func=_run)


def _stem(file: str) -> Path:
    path = Path(file)
    return path.with_suffix("") if path.suffix in (".sigmf-meta", ".sigmf-data") else path


def decode_recording(
    file: str | Path,
    window_samples: int = WINDOW_SAMPLES,
    max_frame_samples: int | None = None,
    progress: Any = None,
) -> Replay:
    """Every frame in the recording at ``file``; ConfigError if it cannot be read or decoded at its rate.

    Windows of ``window_samples`` overlap by ``max_frame_samples`` (default: the longest data frame the PHY
    allows), so every frame lies wholly inside the window where it starts."""
    import numpy as np

    from testbed.phy import OfdmModem, PhyConfig
    from testbed.phy.layout import burst_num_samples
    from testbed.phy.mcs import MCS_TABLE
    from testbed.radio.base import RadioConfig
    from testbed.radio.sigmf_io import SigmfReplayRadio

    radio = SigmfReplayRadio(_stem(str(file)))
    with radio:
        rate, centre = radio.recorded_sample_rate_hz, radio.recorded_center_freq_hz
        phy = PhyConfig(sample_rate_hz=rate)
        modem = OfdmModem(phy)
        radio.configure(RadioConfig(sample_rate_hz=rate, **({"center_freq_hz": centre} if centre else {})))
        # a frame starting before a window's last `overlap` samples lies wholly inside the window
        overlap = max_frame_samples or max(burst_num_samples(phy, phy.max_payload_bytes, m) for m in MCS_TABLE)
        total, frames, jumps = radio.num_samples, [], 0
        buf, buf_index = np.zeros(0, np.complex64), 0  # buf[0] is file sample buf_index
        while radio.remaining or buf.size:
            if radio.remaining:
                block = radio.receive(min(window_samples, radio.remaining))
                jumps += int(block.overflow)
                buf = np.concatenate([buf, block.iq])
                if progress is not None:
                    progress(block.iq.size)
            last = radio.remaining == 0
            if not last and buf.size < window_samples + overlap:
                continue
            keep_below = buf.size if last else buf.size - overlap
            for f in modem.demodulate(buf):
                if f.start < keep_below:
                    frames.append(
                        ReplayedFrame(
                            radio.clock_at(buf_index + f.start), f.frame_type, f.mcs, f.stream_id, f.seq,
                            bool(f.crc_ok), float(f.snr_db), float(f.cfo_hz), f.payload,
                        )
                    )  # fmt: skip
            buf, buf_index = (buf[:0], buf_index + buf.size) if last else (buf[keep_below:], buf_index + keep_below)
        return Replay(str(file), radio.datatype, rate, centre, total, radio.scale, radio.scale_source, jumps, frames)


def summary(frames: list[Any], decoded: int, sent: int | None) -> dict[str, Any]:
    """PER, mean SNR and CFO of data frames (the figures ``txrx`` and ``replay`` report alike): PER over
    ``sent`` frames when known, else over the frames found."""
    import numpy as np

    base = sent if sent is not None else len(frames)
    return {
        "per": 1.0 - decoded / base if base else None,
        "snr_db_mean": float(np.mean([f.snr_db for f in frames])) if frames else None,
        "cfo_hz_mean": float(np.mean([f.cfo_hz for f in frames])) if frames else None,
    }


def _run(args: argparse.Namespace) -> int:
    if args.frames_sent is not None and args.frames_sent < 1:
        raise ConfigError(f"--frames-sent must be at least 1, got {args.frames_sent}")
    with Progress("radio replay", unit="samples") as bar:
        rep = decode_recording(args.file, progress=bar.update)
    data = [f for f in rep.frames if f.frame_type == "data"]
    decoded = {(f.stream_id, f.seq) for f in data if f.crc_ok} if args.frames_sent else [f for f in data if f.crc_ok]
    result = {
        "file": rep.path,
        "datatype": rep.datatype,
        "sample_rate_hz": rep.sample_rate_hz,
        "center_freq_hz": rep.center_freq_hz,
        "samples": rep.num_samples,
        "duration_s": rep.num_samples / rep.sample_rate_hz,
        "scale": rep.scale,
        "scale_source": rep.scale_source,
        "clock_jumps": rep.clock_jumps,
        "frames_found": len(data),
        "frames_decoded": len(decoded),
        "analog_frames": len(rep.frames) - len(data),
        **summary(data, len(decoded), args.frames_sent),
        "frames": [
            {"start_sample": f.start_sample, "mcs": f.mcs, "stream_id": f.stream_id, "seq": f.seq,
             "crc_ok": f.crc_ok, "snr_db": f.snr_db, "cfo_hz": f.cfo_hz,
             "payload_len": None if f.payload is None else len(f.payload)}
            for f in data
        ],
    }  # fmt: skip

    def human(r: dict[str, Any]) -> str:
        rows = [[k, v] for k, v in r.items() if k not in ("frames", "scale", "scale_source")]
        scale = f"samples scaled by 1/{r['scale']:g} ({r['scale_source']})"
        return f"{scale}\n{format_table(['field', 'value'], rows)}"

    emit(result, as_json=args.json, human=human)
    return 0
