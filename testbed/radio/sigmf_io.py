"""SigMF recording of any backend, and replay of a recording as a receive source.

``RecordingRadio(inner, stem)`` is a Radio that passes everything to ``inner`` and writes its receive stream
to ``<stem>-rx.sigmf-data/-meta`` and its bursts to ``<stem>-tx.sigmf-*``. A new capture segment starts
whenever the radio clock jumps, an overflow is flagged or the settings change; each capture carries the
carrier, the radio-clock sample (``core:global_index``) and the gains. ``annotate`` marks decoded frames.
``SigmfReplayRadio(stem)`` serves any complex recording back through ``receive`` with the original sample
times, whoever wrote it (REPLAY_DATATYPES).

Sample scaling: ``cf32_le`` stores full-scale units as they are (bit-exact replay); ``ci16_le`` stores
round(x * 2^15) clipped, so the sigmf library's autoscale reads back full-scale units (TX bursts, which
may exceed 1.0 by design, are stored with 2^14 per unit, the Pluto DAC mapping). ``testbed:scale`` (file
value per full-scale unit) says which; a recording without it (another tool's) is read at its datatype's
full scale, 2^(bits-1) per unit for integers (SigMF's fixed-point convention), 1.0 for floats.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import sigmf
from sigmf import SigMFFile
from sigmf.error import SigMFError

from testbed import __version__
from testbed.errors import ConfigError, RadioError
from testbed.radio.base import Radio, RadioConfig, RxBlock

DATATYPES = ("cf32_le", "ci16_le")  # what the recorder writes
REPLAY_DATATYPES = ("cf32_le", "cf32_be", "ci16_le", "ci16_be", "ci8")  # what replay reads
#: File value per full-scale unit of a recording that does not say (no ``testbed:scale``): 2^(bits-1).
FULL_SCALE = {"cf32": 1.0, "ci16": 32768.0, "ci8": 128.0}
CI16_SCALE = {"rx": 32767.0, "tx": 16384.0}  # file value per full-scale unit (see module docstring)
NS = "testbed"  # our metadata namespace, declared in core:extensions
EXTENSION = {"name": NS, "version": "1.0.0", "optional": True}


class SigmfStream:
    """Appends blocks to one SigMF dataset ``<stem>-<kind>.sigmf-data`` and keeps its captures and annotations
    (RecordingRadio's two streams, and the hub's captures of what a node receives)."""

    def __init__(self, stem: Path, kind: str, datatype: str) -> None:
        self.base = Path(f"{stem}-{kind}")
        self.kind, self.datatype = kind, datatype
        self.scale = 1.0 if datatype == "cf32_le" else CI16_SCALE[kind]
        self._file = open(self.base.with_suffix(".sigmf-data"), "wb")  # noqa: SIM115 - closed in close()
        self.count = 0
        self.captures: list[dict[str, Any]] = []
        self.annotations: list[tuple[int, int, dict[str, Any]]] = []
        self._next_global: int | None = None
        self._config: RadioConfig | None = None

    def append(self, iq: np.ndarray, global_index: int, config: RadioConfig, force_new: bool = False) -> None:
        if force_new or global_index != self._next_global or config != self._config:
            self.captures.append(
                {
                    "core:sample_start": self.count,
                    "core:global_index": int(global_index),
                    "core:frequency": float(config.center_freq_hz),
                    "core:datetime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    f"{NS}:rx_gain_mode": config.rx_gain_mode,
                    f"{NS}:rx_gain_db": float(config.rx_gain_db),
                    f"{NS}:tx_power_dbm": float(config.tx_power_dbm),
                    f"{NS}:rf_bandwidth_hz": float(config.bandwidth_hz),
                }
            )
        if self.datatype == "cf32_le":
            data = np.ascontiguousarray(iq, dtype="<c8")
        else:
            parts = np.stack([iq.real, iq.imag], axis=-1) * self.scale
            data = np.clip(np.round(parts), -32768, 32767).astype("<i2")
        self._file.write(data.tobytes())
        self.count += iq.size
        self._next_global, self._config = int(global_index) + iq.size, config

    def file_index(self, global_index: int) -> int | None:
        """Where radio-clock sample ``global_index`` sits in this file (None if it was not recorded)."""
        bounds = [c["core:sample_start"] for c in self.captures[1:]] + [self.count]
        for cap, end in zip(self.captures, bounds[: len(self.captures)], strict=True):
            offset = global_index - cap["core:global_index"]
            if 0 <= offset < end - cap["core:sample_start"]:
                return cap["core:sample_start"] + offset
        return None

    def close(self, sample_rate_hz: float, hw: str, description: str, hardware: dict[str, str] | None = None) -> None:
        """Finish the dataset and write its metadata (a stream that saw no samples leaves no files).

        hardware : the receiver's identity (model, serial, firmware...), stored as ``testbed:hw_<key>``."""
        self._file.close()
        if self.count == 0:
            self.base.with_suffix(".sigmf-data").unlink()
            return
        meta = SigMFFile(
            data_file=self.base.with_suffix(".sigmf-data"),
            global_info={
                "core:datatype": self.datatype,
                "core:sample_rate": float(sample_rate_hz),
                "core:hw": hw,
                "core:recorder": f"testbed {__version__}",
                "core:description": f"{description} ({self.kind})".strip(),
                "core:extensions": [EXTENSION],
                f"{NS}:version": __version__,
                f"{NS}:scale": self.scale,
                f"{NS}:stream": self.kind,
                **{f"{NS}:hw_{key}": str(value) for key, value in (hardware or {}).items()},
            },
        )
        for cap in self.captures:
            meta.add_capture(cap["core:sample_start"], metadata=cap)
        for start, length, fields in self.annotations:
            meta.add_annotation(start, length, metadata=fields)
        meta.tofile(self.base.with_suffix(".sigmf-meta"), overwrite=True)


class RecordingRadio(Radio):
    """Records ``inner``'s receive stream and bursts to SigMF; closing it closes ``inner`` and writes metadata.

    hw : the ``core:hw`` text (board, URI, node id); description : ``core:description``;
    hardware : the receiver's identity fields (e.g. a Pluto's hw_model, hw_serial, fw_version), kept in the
    global metadata beside the settings each capture carries.
    """

    def __init__(
        self,
        inner: Radio,
        stem: str | Path,
        datatype: str = "cf32_le",
        hw: str = "",
        description: str = "",
        hardware: dict[str, str] | None = None,
    ):
        super().__init__()
        if datatype not in DATATYPES:
            raise ConfigError(f"SigMF datatype {datatype!r} is not supported; use one of {DATATYPES}")
        self.inner, self.stem = inner, Path(stem)
        self._hw, self._description = hw or type(inner).__name__, description
        self._hardware = dict(hardware or {})
        self.stem.parent.mkdir(parents=True, exist_ok=True)
        self._rx = SigmfStream(self.stem, "rx", datatype)
        self._tx = SigmfStream(self.stem, "tx", datatype)

    def _apply(self, config: RadioConfig) -> None:
        self.inner.configure(config)

    def _set_tx_power(self, tx_power_dbm: float) -> float:
        return self.inner.set_tx_power(tx_power_dbm)

    def _transmit(self, iq: np.ndarray, at_sample: int | None) -> int:
        start = self.inner.transmit(iq, at_sample)
        self._tx.append(iq, start, self.config, force_new=True)  # one capture per burst
        return start

    def _receive(self, num_samples: int) -> RxBlock:
        block = self.inner.receive(num_samples)
        self._rx.append(block.iq, block.start_sample, self.config, force_new=block.overflow)
        return block

    def annotate(
        self,
        start_sample: int,
        num_samples: int,
        label: str,
        freq_edges_hz: tuple[float, float] | None = None,
        **fields: float | int | str | bool,
    ) -> None:
        """Mark samples [start_sample, +num_samples) of the receive clock, e.g. a decoded frame with its band,
        SNR, CFO and CRC; ``freq_edges_hz`` (lower, upper) is the occupied band in absolute Hz
        (``core:freq_lower_edge``/``upper_edge``, which viewers draw as a box); ``fields`` are stored as
        ``testbed:<name>``."""
        index = self._rx.file_index(start_sample)
        if index is None:
            raise RadioError(f"sample {start_sample} of the receive clock was not recorded; cannot annotate it")
        meta: dict[str, Any] = {"core:label": str(label)}
        if freq_edges_hz is not None:
            lower, upper = (float(f) for f in freq_edges_hz)
            if not lower < upper:
                raise RadioError(f"freq_edges_hz must be (lower, upper) with lower < upper, got {freq_edges_hz}")
            meta["core:freq_lower_edge"], meta["core:freq_upper_edge"] = lower, upper
        for key, value in fields.items():
            meta[f"{NS}:{key}"] = value.item() if isinstance(value, np.generic) else value
        self._rx.annotations.append((index, int(num_samples), meta))

    def _close(self) -> None:
        try:
            rate = self.config.sample_rate_hz if self._config is not None else 1.0
            self._rx.close(rate, self._hw, self._description, self._hardware)
            self._tx.close(rate, self._hw, self._description)
        finally:
            self.inner.close()


def _refusal(datatype: object) -> str | None:
    """Why ``datatype`` cannot be replayed (None if it can)."""
    if datatype in REPLAY_DATATYPES:
        return None
    text = str(datatype)
    if not text.startswith("c"):
        return "real-valued samples; replay needs complex baseband (a c... datatype)"
    if text.startswith("cu"):
        return "unsigned integers (offset binary, e.g. rtl-sdr's cu8); convert to ci8 or cf32_le"
    return "this sample format is not read"


def open_recording(path: str | Path) -> SigMFFile:
    """Open and check a recording with the official sigmf library; ConfigError says what is wrong."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec = sigmf.fromfile(str(path))
    except (SigMFError, OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: not a usable SigMF recording: {exc}") from exc
    problems = [str(w.message) for w in caught]
    if problems:
        raise ConfigError(f"{path}: the recording is damaged: {'; '.join(problems)}")
    if not isinstance(rec, SigMFFile):
        raise ConfigError(f"{path}: expected one recording, got a {type(rec).__name__}")
    datatype = rec.get_global_field("core:datatype")
    why = _refusal(datatype)
    if why is not None:
        raise ConfigError(f"{path}: datatype {datatype!r} cannot be replayed: {why}; supported: {REPLAY_DATATYPES}")
    rate = rec.get_global_field("core:sample_rate")
    if not isinstance(rate, (int, float)) or not rate > 0:
        raise ConfigError(f"{path}: core:sample_rate must be a positive number, got {rate!r}")
    if rec.num_channels != 1:
        raise ConfigError(f"{path}: only single-channel recordings can be replayed")
    if not rec.get_captures():
        raise ConfigError(f"{path}: the recording has no captures (no carrier frequency or start time)")
    return rec


def recording_scale(rec: SigMFFile) -> tuple[float, str]:
    """(file value per full-scale unit, where that number comes from) for a recording open_recording accepted:
    ``testbed:scale`` if the metadata has it, else the datatype's full scale (FULL_SCALE)."""
    scale = rec.get_global_field(f"{NS}:scale")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < 1e12:
            raise ConfigError(f"{NS}:scale must be a positive number of file units per full-scale unit, got {scale!r}")
        return float(scale), f"{NS}:scale in the metadata"
    kind = str(rec.get_global_field("core:datatype")).split("_")[0]
    return FULL_SCALE[kind], f"full scale of {kind}: no {NS}:scale in the metadata"


class SigmfReplayRadio(Radio):
    """A receive-only Radio serving a recording: ``receive`` returns its samples with their recorded times;
    a block that spans a jump in the recorded clock is flagged ``overflow``. ``scale`` and ``scale_source``
    say how file values became full-scale units (``recording_scale``). Samples are read from the file block by
    block, so a long recording needs no more memory than the blocks asked for."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._rec = open_recording(path)
        self.datatype = str(self._rec.get_global_field("core:datatype"))
        self.scale, self.scale_source = recording_scale(self._rec)
        self._rec.autoscale = False  # raw file values; the scale is ours (a recording may say it)
        self._count = int(self._rec.sample_count)
        caps = self._rec.get_captures()
        starts = [c["core:sample_start"] for c in caps]
        self._globals = [c.get("core:global_index", c["core:sample_start"]) for c in caps]
        self._cap_starts, self._pos = starts, 0
        self.recorded_sample_rate_hz = float(self._rec.get_global_field("core:sample_rate"))
        self.recorded_center_freq_hz = caps[0].get("core:frequency")

    @property
    def remaining(self) -> int:
        return self._count - self._pos

    def annotations(self) -> list[dict[str, Any]]:
        """The recording's annotations (frame labels, SNR, CFO...)."""
        return self._rec.get_annotations()

    def _apply(self, config: RadioConfig) -> None:
        if config.sample_rate_hz != self.recorded_sample_rate_hz or (
            self.recorded_center_freq_hz is not None and config.center_freq_hz != self.recorded_center_freq_hz
        ):
            raise ConfigError(
                f"{self.path} was recorded at {self.recorded_center_freq_hz} Hz, {self.recorded_sample_rate_hz:g} "
                f"S/s; configure the replay with those (asked {config.center_freq_hz:g} Hz, "
                f"{config.sample_rate_hz:g} S/s)"
            )

    def _transmit(self, iq: np.ndarray, at_sample: int | None) -> int:
        raise RadioError("a SigMF replay is a receive-only source; it cannot transmit")

    @property
    def num_samples(self) -> int:
        return self._count

    def clock_at(self, index: int) -> int:
        """The recorded radio-clock sample of file sample ``index``."""
        k = int(np.searchsorted(self._cap_starts, index, side="right")) - 1
        return self._globals[k] + index - self._cap_starts[k]

    def _receive(self, num_samples: int) -> RxBlock:
        if num_samples > self.remaining:
            raise RadioError(f"{self.path}: asked for {num_samples} samples, {self.remaining} of {self._count} remain")
        lo, hi = self._pos, self._pos + num_samples
        crosses = any(lo < s < hi for s in self._cap_starts)
        jump = crosses and any(self.clock_at(s) != self.clock_at(s - 1) + 1 for s in self._cap_starts if lo < s < hi)
        self._pos = hi
        raw = np.asarray(self._rec.read_samples(lo, num_samples), np.complex64)
        iq = raw if self.scale == 1.0 else (raw / np.float32(self.scale)).astype(np.complex64)
        return RxBlock(iq, self.clock_at(lo), overflow=jump)

    def _close(self) -> None:
        self._count = self._pos  # nothing more to serve
