"""PHY abstraction: frame error rate from a PER table measured with this project's receiver, and EESM.

A system-level medium does not run the DSP for every frame: it maps the frame's channel to one number and
looks the error rate up (ns-3's table-based Wi-Fi error model; Sionna's PHYAbstraction). Here:

- ``PerTable`` holds, per coded MCS and PHY payload length, PER against SNR (Es/N0 per data subcarrier, dB)
  on AWGN, measured by ``testbed phy table`` (testbed/experiment/phylab/table.py) with the real receiver (timing,
  CFO and channel estimation included). Between table points PER is interpolated linearly in log10(PER);
  beyond the last point the last segment's slope continues (a waterfall keeps falling), and below the first
  point the first segment's slope continues up to PER 1 (a link far below the table loses every frame).
- A payload length that was not measured is scaled from the nearest measured one L0 by the first-order rule
  PER_L = 1 - (1 - PER_L0)^(L / L0). It is an approximation: bit errors of one Viterbi error event are not
  independent across a short frame, so measure the lengths that are used.
- EESM (exponential effective SINR mapping; 3GPP TR 25.892 annex A, IEEE 802.16m evaluation methodology):
  SNR_eff = -beta ln((1/N) sum_k exp(-SNR_k / beta)) over the N data subcarriers, linear SNRs, one beta per
  MCS, least-squares calibrated on fading draws of the multipath + CFO channel (stored in the same JSON).

The JSON carries a schema version and the numerology (the PhyConfig fields that change the waveform); a table
measured for another numerology is refused. Sample rate is not among them: SNR, delay spread in samples and
CFO in subcarrier spacings make the PER independent of it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from testbed.errors import ConfigError, LinkError
from testbed.phy.numerology import PhyConfig

SCHEMA_VERSION = 1
#: PhyConfig fields that change the waveform, hence the PER curves (sample rate does not; module docstring)
NUMEROLOGY_FIELDS = ("fft_size", "cp_len", "occupied_half_width", "pilot_subcarriers")
SHIPPED_TABLE = Path(__file__).with_name("per_table.json")
REGENERATE = "testbed phy table --out {path}"
PER_FLOOR = 1e-12  # extrapolated PER never goes below this (and log10 stays finite)


def numerology_of(phy: PhyConfig) -> dict[str, Any]:
    """The waveform-defining fields of ``phy`` as JSON values (tuples become lists)."""
    return {name: _plain(getattr(phy, name)) for name in NUMEROLOGY_FIELDS}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class PerCurve:
    """PER against SNR for one MCS and payload length on AWGN.

    snr_db : (m,) float64 ascending, Es/N0 per data subcarrier. per : (m,) float64 non-increasing, in (0, 1].
    frames, errors : (m,) int measured counts behind each point (0 frames: a point of the fitted tail).
    """

    snr_db: np.ndarray
    per: np.ndarray
    frames: np.ndarray
    errors: np.ndarray

    def __post_init__(self) -> None:
        snr, per = np.asarray(self.snr_db, np.float64), np.asarray(self.per, np.float64)
        if snr.ndim != 1 or snr.size < 2 or per.shape != snr.shape:
            raise ConfigError(f"a PER curve needs >= 2 points and as many PERs as SNRs, got {snr.size} and {per.size}")
        if not np.all(np.isfinite(snr)) or np.any(np.diff(snr) <= 0):
            raise ConfigError("a PER curve needs finite, strictly ascending SNRs")
        if not (np.all(per > 0) and np.all(per <= 1)) or np.any(np.diff(per) > 0):
            raise ConfigError("a PER curve needs non-increasing PERs in (0, 1]")
        object.__setattr__(self, "snr_db", snr)
        object.__setattr__(self, "per", per)
        object.__setattr__(self, "frames", np.asarray(self.frames, np.int64).reshape(snr.shape))
        object.__setattr__(self, "errors", np.asarray(self.errors, np.int64).reshape(snr.shape))

    def per_at(self, snr_db: np.ndarray | float) -> np.ndarray:
        """PER at ``snr_db`` (any shape, dB) by log10-linear interpolation; see the module docstring."""
        x = np.asarray(snr_db, np.float64)
        logs = np.log10(self.per)
        inside = np.interp(x, self.snr_db, logs)  # holds the end values outside the table
        head_slope, tail_slope = self._end_slopes(logs)
        below = logs[0] + head_slope * (x - self.snr_db[0])
        beyond = logs[-1] + tail_slope * (x - self.snr_db[-1])
        out = np.where(x > self.snr_db[-1], beyond, np.where(x < self.snr_db[0], below, inside))
        return np.clip(10.0**out, PER_FLOOR, 1.0)

    def _end_slopes(self, logs: np.ndarray) -> tuple[float, float]:
        """d log10(PER) / d SNR of the first and of the last segment (both <= 0 on a waterfall)."""
        head = (logs[1] - logs[0]) / (self.snr_db[1] - self.snr_db[0])
        tail = (logs[-1] - logs[-2]) / (self.snr_db[-1] - self.snr_db[-2])
        return float(head), float(tail)

    def snr_at(self, per: float) -> float:
        """SNR in dB where the curve falls to ``per`` (the inverse of :meth:`per_at`, end segments extended)."""
        logs, target = np.log10(self.per), math.log10(max(per, PER_FLOOR))
        head_slope, tail_slope = self._end_slopes(logs)
        if target > logs[0]:
            return float(self.snr_db[0] + ((target - logs[0]) / head_slope if head_slope < 0 else 0.0))
        if target < logs[-1]:
            return float(self.snr_db[-1] + ((target - logs[-1]) / tail_slope if tail_slope < 0 else 0.0))
        # logs is non-increasing: interpolate on the reversed arrays (np.interp wants ascending x)
        return float(np.interp(target, logs[::-1], self.snr_db[::-1]))

    def as_dict(self) -> dict[str, list]:
        return {
            "snr_db": [round(float(v), 4) for v in self.snr_db],
            "per": [float(f"{v:.6g}") for v in self.per],
            "frames": [int(v) for v in self.frames],
            "errors": [int(v) for v in self.errors],
        }


@dataclass(frozen=True)
class PerTable:
    """AWGN PER curves per coded MCS and payload length, and an EESM beta per MCS (module docstring).

    numerology : the NUMEROLOGY_FIELDS of the PhyConfig it was measured for.
    curves : {mcs name: {payload bytes: PerCurve}}. beta : {mcs name: EESM beta (linear)}.
    provenance : how it was measured (command, seed, frames, run time, calibration fit), kept for the record.
    """

    numerology: Mapping[str, Any]
    curves: Mapping[str, Mapping[int, PerCurve]]
    beta: Mapping[str, float]
    provenance: Mapping[str, Any] = field(default_factory=dict)

    # --- the error model ------------------------------------------------------------------------------
    def frame_error_rate(self, mcs: str, payload_bytes: int, snr_db: float) -> float:
        """PER of one frame of ``payload_bytes`` at AWGN-equivalent ``snr_db`` (Es/N0 per data subcarrier)."""
        return float(self.frame_error_rates(mcs, payload_bytes, np.asarray(snr_db)))

    def frame_error_rates(self, mcs: str, payload_bytes: int, snr_db: np.ndarray) -> np.ndarray:
        """:meth:`frame_error_rate` of many SNRs at once: ``snr_db`` any shape (dB), PERs of the same shape."""
        length, curve = self.curve(mcs, payload_bytes)
        per = curve.per_at(snr_db)
        return per if length == payload_bytes else _scale_per(per, length, payload_bytes)

    def snr_db_at_per(self, mcs: str, per: float, payload_bytes: int) -> float:
        """AWGN SNR in dB at which frames of ``payload_bytes`` are lost with probability ``per`` (MCS thresholds)."""
        if not 0.0 < per < 1.0:
            raise LinkError(f"per={per!r} must be in (0, 1)")
        length, curve = self.curve(mcs, payload_bytes)
        return curve.snr_at(
            per if length == payload_bytes else float(_scale_per(np.asarray(per), payload_bytes, length))
        )

    def effective_snr_db(self, mcs: str, subcarrier_snr: np.ndarray) -> float:
        """EESM effective SNR in dB of one frame's channel.

        subcarrier_snr : (n_data,) float linear Es/N0 of each data subcarrier (|H_k|^2 times the AWGN SNR).
        A flat channel maps to its own SNR; a faded one to less than its mean (module docstring).
        """
        beta = self._beta(mcs)
        snr = np.asarray(subcarrier_snr, np.float64).ravel()
        if snr.size == 0 or not np.all(np.isfinite(snr)) or np.any(snr < 0):
            raise LinkError(f"subcarrier_snr must be non-empty, finite and >= 0 (linear), got {snr.size} values")
        return float(10.0 * np.log10(max(eesm_linear(snr[None, :], beta)[0], 1e-30)))

    def frame_error_rate_on_channel(self, mcs: str, payload_bytes: int, subcarrier_snr: np.ndarray) -> float:
        """PER of one frame over a channel given per data subcarrier (linear SNRs), through EESM."""
        return self.frame_error_rate(mcs, payload_bytes, self.effective_snr_db(mcs, subcarrier_snr))

    # --- contents -------------------------------------------------------------------------------------
    @property
    def mcs_names(self) -> tuple[str, ...]:
        return tuple(self.curves)

    def payload_lengths(self, mcs: str) -> tuple[int, ...]:
        return tuple(sorted(self.curves[mcs])) if mcs in self.curves else ()

    def check_numerology(self, phy: PhyConfig, source: str = "PER table") -> None:
        """Raise ConfigError unless the table was measured for ``phy``'s waveform."""
        want = numerology_of(phy)
        diff = {k: (self.numerology.get(k), v) for k, v in want.items() if self.numerology.get(k) != v}
        if diff:
            shown = ", ".join(f"{k}={a!r} (need {b!r})" for k, (a, b) in diff.items())
            raise ConfigError(
                f"{source}: measured for another numerology ({shown}); "
                f"regenerate it with `{REGENERATE.format(path=source)}`"
            )

    def curve(self, mcs: str, payload_bytes: int) -> tuple[int, PerCurve]:
        """(measured length, its curve) for ``payload_bytes``: exact if measured, else the nearest in log ratio."""
        if mcs not in self.curves:
            raise LinkError(f"MCS {mcs!r} is not in the PER table; it holds {', '.join(self.curves)}")
        if payload_bytes < 1:
            raise LinkError(f"payload_bytes={payload_bytes} must be >= 1")
        per_length = self.curves[mcs]
        if payload_bytes in per_length:
            return payload_bytes, per_length[payload_bytes]
        nearest = min(per_length, key=lambda n: abs(math.log(payload_bytes / n)))
        return nearest, per_length[nearest]

    def _beta(self, mcs: str) -> float:
        if mcs not in self.beta:
            raise LinkError(f"MCS {mcs!r} has no EESM beta in the PER table; it holds {', '.join(self.beta)}")
        return float(self.beta[mcs])

    # --- JSON -----------------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "snr_definition": "Es/N0 per data subcarrier, dB; PER of frames of payload_bytes on AWGN",
            "numerology": dict(self.numerology),
            "beta": {k: float(f"{v:.6g}") for k, v in self.beta.items()},
            "curves": {m: {str(n): c.as_dict() for n, c in sorted(per.items())} for m, per in self.curves.items()},
            "provenance": dict(self.provenance),
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=1, allow_nan=False) + "\n")

    @classmethod
    def from_dict(cls, raw: Any, source: str = "PER table") -> PerTable:
        """Parse a table, raising ConfigError that names ``source`` for anything malformed."""
        fix = f"regenerate it with `{REGENERATE.format(path=source)}`"
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: not a PER table (top level is {type(raw).__name__}); {fix}")
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ConfigError(
                f"{source}: schema_version {raw.get('schema_version')!r}, this testbed reads {SCHEMA_VERSION}; {fix}"
            )
        try:
            curves = {
                str(m): {
                    int(n): PerCurve(**{k: c[k] for k in ("snr_db", "per", "frames", "errors")}) for n, c in per.items()
                }  # fmt: skip
                for m, per in raw["curves"].items()
            }
            beta = {str(m): float(b) for m, b in raw["beta"].items()}
            numerology = dict(raw["numerology"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ConfigError(f"{source}: malformed PER table ({type(e).__name__}: {e}); {fix}") from e
        if not curves or any(not per for per in curves.values()):
            raise ConfigError(f"{source}: the PER table holds no curves; {fix}")
        bad = [m for m in curves if not (m in beta and math.isfinite(beta[m]) and beta[m] > 0)]
        if bad:
            raise ConfigError(f"{source}: no positive EESM beta for {', '.join(bad)}; {fix}")
        return cls(numerology, curves, beta, dict(raw.get("provenance", {})))


def load_per_table(path: Path | None = None, phy: PhyConfig | None = None) -> PerTable:
    """The PER table at ``path`` (None: the shipped testbed/link/per_table.json), checked against ``phy``
    (None: the default PhyConfig). Corrupt, truncated, wrong-schema or other-numerology files raise one
    ConfigError line naming the file and the command that regenerates it."""
    path = SHIPPED_TABLE if path is None else Path(path)
    try:
        raw = json.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the PER table ({e.strerror}); give an existing file") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"{path}: not valid JSON ({e}); the PER table is corrupt or truncated, "
            f"regenerate it with `{REGENERATE.format(path=path)}`"
        ) from e
    table = PerTable.from_dict(raw, str(path))
    table.check_numerology(phy if phy is not None else PhyConfig(), str(path))
    return table


def eesm_linear(subcarrier_snr: np.ndarray, beta: float) -> np.ndarray:
    """(n,) linear EESM SNRs of (n, n_data) linear subcarrier SNRs, computed stably (log-sum-exp)."""
    x = -np.asarray(subcarrier_snr, np.float64) / beta  # (n, n_data)
    top = x.max(axis=1, keepdims=True)
    log_mean = top[:, 0] + np.log(np.mean(np.exp(x - top), axis=1))
    return -beta * log_mean


def subcarrier_snr(phy: PhyConfig, taps: np.ndarray, snr_db: float) -> np.ndarray:
    """(n_data,) float64 linear Es/N0 of each data subcarrier behind a tapped delay line.

    taps : (n_taps,) complex impulse response, one tap per sample (testbed.channel.Multipath.taps).
    snr_db : Es/N0 per data subcarrier before the channel (unit mean channel power keeps it on average).
    """
    response = np.fft.fft(np.asarray(taps, np.complex128), n=phy.fft_size)[phy.fft_bins(phy.data_subcarriers)]
    return np.abs(response) ** 2 * 10.0 ** (snr_db / 10.0)


def _scale_per(per: np.ndarray, from_bytes: int, to_bytes: int) -> np.ndarray:
    """First-order length rule 1 - (1 - PER)^(to/from), elementwise (module docstring: an approximation)."""
    with np.errstate(divide="ignore"):
        return -np.expm1(np.log1p(-np.minimum(per, 1.0)) * (to_bytes / from_bytes))
