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
  MCS and tabulated payload length (as system-level simulators calibrate per MCS and block size),
  least-squares calibrated on fading draws of the multipath + CFO channel against that length's AWGN curve
  (stored in the same JSON). A frame of another length uses the beta of the tabulated length whose curve it
  is looked up on (the nearest in log ratio), not an interpolation: a beta is fitted to one curve and only
  means something with it.

The JSON carries a schema version and the numerology (the PhyConfig fields that change the waveform); a table
measured for another numerology is refused. Sample rate is not among them: SNR, delay spread in samples and
CFO in subcarrier spacings make the PER independent of it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from testbed.errors import ConfigError, LinkError
from testbed.link.messages import ChannelReport
from testbed.phy.mcs import CODED_MCS
from testbed.phy.numerology import PhyConfig

SCHEMA_VERSION = 2  # 2: beta per MCS and payload length (1 held one beta per MCS)
#: PhyConfig fields that change the waveform, hence the PER curves (sample rate does not; module docstring)
NUMEROLOGY_FIELDS = ("fft_size", "cp_len", "occupied_half_width", "pilot_subcarriers")
SHIPPED_TABLE = Path(__file__).with_name("per_table.json")
REGENERATE = "testbed phy table --out {path}"
CURVE_FIELDS = ("snr_db", "per", "frames", "errors")
MAX_PAYLOAD_BYTES = 65_535  # the PHY header's 16-bit length field (PhyConfig.max_payload_bytes at most)
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
        snr, per = _vector("snr_db", self.snr_db), _vector("per", self.per)
        frames, errors = _vector("frames", self.frames), _vector("errors", self.errors)
        if snr.size < 2:
            raise ConfigError(f"a PER curve needs >= 2 points, got {snr.size}")
        for name, values in (("per", per), ("frames", frames), ("errors", errors)):
            if values.size != snr.size:
                raise ConfigError(f"{name} holds {values.size} values for {snr.size} SNRs (one per SNR point)")
        _first_bad("snr_db", snr, ~np.isfinite(snr), "is not finite")
        _first_bad("snr_db", snr, np.r_[False, np.diff(snr) <= 0], "is not above the one before (the grid ascends)")
        _first_bad("per", per, ~((per > 0) & (per <= 1)), "is not in (0, 1]")
        _first_bad("per", per, np.r_[False, np.diff(per) > 0], "is above the one before (PER never rises with SNR)")
        _first_bad("frames", frames, ~(np.isfinite(frames) & (frames >= 0) & (frames == np.round(frames))),
                   "is not a count >= 0")  # fmt: skip
        _first_bad("errors", errors, ~(np.isfinite(errors) & (errors >= 0) & (errors <= frames) &
                                       (errors == np.round(errors))), "is not a count in 0..frames")  # fmt: skip
        object.__setattr__(self, "snr_db", snr)
        object.__setattr__(self, "per", per)
        object.__setattr__(self, "frames", frames.astype(np.int64))
        object.__setattr__(self, "errors", errors.astype(np.int64))

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
    """AWGN PER curves per coded MCS and payload length, and an EESM beta for each (module docstring).

    numerology : the NUMEROLOGY_FIELDS of the PhyConfig it was measured for.
    curves : {mcs name: {payload bytes: PerCurve}}. beta : {mcs name: {payload bytes: EESM beta (linear)}},
    the same lengths as ``curves``.
    provenance : how it was measured (command, seed, frames, run time, calibration fit), kept for the record.
    """

    numerology: Mapping[str, Any]
    curves: Mapping[str, Mapping[int, PerCurve]]
    beta: Mapping[str, Mapping[int, float]]
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

    def effective_snr_db(self, mcs: str, subcarrier_snr: np.ndarray, payload_bytes: int) -> float:
        """EESM effective SNR in dB of one frame of ``payload_bytes`` on a channel, at the beta of that length.

        subcarrier_snr : (n_data,) float linear Es/N0 of each data subcarrier (|H_k|^2 times the AWGN SNR).
        A flat channel maps to its own SNR; a faded one to less than its mean (module docstring).
        """
        beta = self.beta_for(mcs, payload_bytes)
        snr = np.asarray(subcarrier_snr, np.float64).ravel()
        if snr.size == 0 or not np.all(np.isfinite(snr)) or np.any(snr < 0):
            raise LinkError(f"subcarrier_snr must be non-empty, finite and >= 0 (linear), got {snr.size} values")
        return float(10.0 * np.log10(max(eesm_linear(snr[None, :], beta)[0], 1e-30)))

    def frame_error_rate_on_channel(self, mcs: str, payload_bytes: int, subcarrier_snr: np.ndarray) -> float:
        """PER of one frame over a channel given per data subcarrier (linear SNRs), through EESM."""
        return self.frame_error_rate(mcs, payload_bytes, self.effective_snr_db(mcs, subcarrier_snr, payload_bytes))

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

    def beta_for(self, mcs: str, payload_bytes: int) -> float:
        """EESM beta of frames of ``payload_bytes``: that of the tabulated length whose curve :meth:`curve`
        looks them up on (a beta is calibrated against one length's AWGN curve; module docstring)."""
        length, _ = self.curve(mcs, payload_bytes)
        per_length = self.beta.get(mcs, {})
        if length not in per_length:
            raise LinkError(f"MCS {mcs!r} has no EESM beta for {length}-byte frames in the PER table")
        return float(per_length[length])

    # --- JSON -----------------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "snr_definition": "Es/N0 per data subcarrier, dB; PER of frames of payload_bytes on AWGN",
            "numerology": dict(self.numerology),
            "beta": {m: {str(n): float(f"{b:.6g}") for n, b in sorted(per.items())} for m, per in self.beta.items()},
            "curves": {m: {str(n): c.as_dict() for n, c in sorted(per.items())} for m, per in self.curves.items()},
            "provenance": dict(self.provenance),
        }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=1, allow_nan=False) + "\n")

    @classmethod
    def from_dict(cls, raw: Any, source: str = "PER table", mcs: Collection[str] = CODED_MCS) -> PerTable:
        """Parse a table, raising one ConfigError line that names ``source``, the entry and what is wrong.

        mcs : the MCSs the caller looks up; each needs a curve and a beta (default every coded MCS: the chooser
        ranks them all, testbed/link/airtime.py). Names outside testbed/phy/mcs.py's coded MCSs are refused too.
        """
        fix = f"regenerate it with `{REGENERATE.format(path=source)}`"

        def refuse(what: str) -> ConfigError:
            return ConfigError(f"{source}: {what}; {fix}")

        if not isinstance(raw, dict):
            raise refuse(f"not a PER table (top level is {type(raw).__name__}, not an object)")
        version = raw.get("schema_version")
        if type(version) is not int or version != SCHEMA_VERSION:
            raise refuse(f"schema_version {version!r}, this testbed reads {SCHEMA_VERSION}")
        for key in ("numerology", "beta", "curves"):
            if not isinstance(raw.get(key), dict):
                raise refuse(f"{key!r} must be an object, got {type(raw.get(key)).__name__}")
        if not isinstance(raw.get("provenance", {}), dict):
            raise refuse(f"'provenance' must be an object, got {type(raw['provenance']).__name__}")
        numerology = dict(raw["numerology"])
        absent = [name for name in NUMEROLOGY_FIELDS if name not in numerology]
        if absent:
            raise refuse(f"the numerology does not record {', '.join(absent)}")
        curves: dict[str, dict[int, PerCurve]] = {}
        for name, per_length in raw["curves"].items():
            if name not in CODED_MCS:
                raise refuse(f"curves[{name!r}]: not a coded MCS ({', '.join(CODED_MCS)})")
            if not isinstance(per_length, dict) or not per_length:
                raise refuse(f"curves[{name!r}] must map payload lengths to curves, got {per_length!r:.40}")
            curves[name] = {}
            for length, curve in per_length.items():
                where = f"curves[{name!r}][{length!r}]"
                if not (isinstance(length, str) and length.isdigit() and 1 <= int(length) <= MAX_PAYLOAD_BYTES):
                    raise refuse(
                        f"{where}: the payload length must be a whole number of bytes in 1..{MAX_PAYLOAD_BYTES}"
                    )
                if not isinstance(curve, dict) or not set(CURVE_FIELDS) <= set(curve):
                    raise refuse(f"{where} must hold {', '.join(CURVE_FIELDS)}")
                try:
                    curves[name][int(length)] = PerCurve(**{k: curve[k] for k in CURVE_FIELDS})
                except ConfigError as e:
                    raise refuse(f"{where}: {e}") from e
        beta: dict[str, dict[int, float]] = {}
        for name, per_length in curves.items():
            given = raw["beta"].get(name)
            if not isinstance(given, dict):
                raise refuse(f"beta[{name!r}] = {given!r:.40}: must map each payload length of its curves to a beta")
            beta[name] = {}
            for length in per_length:
                b = given.get(str(length))
                if isinstance(b, bool) or not isinstance(b, (int, float)) or not (math.isfinite(b) and b > 0):
                    raise refuse(
                        f"beta[{name!r}][{str(length)!r}] = {b!r}: each MCS and length of the table needs a "
                        "finite EESM beta > 0"
                    )
                beta[name][length] = float(b)
            extra = sorted(set(given) - {str(n) for n in per_length}, key=str)
            if extra:
                raise refuse(f"beta[{name!r}][{extra[0]!r}]: no curve of that length (a beta belongs to a curve)")
        missing = [name for name in mcs if name not in curves]
        if missing:
            raise refuse(f"no curve for {', '.join(missing)} (the table must hold every MCS the link may choose)")
        return cls(numerology, curves, beta, dict(raw.get("provenance", {})))


def _vector(name: str, values: Any) -> np.ndarray:
    """(m,) float64 of a JSON list of numbers, ConfigError naming ``name`` otherwise (strings, nesting, null)."""
    if isinstance(values, (str, bytes)) or values is None:
        raise ConfigError(f"{name} must be a list of numbers, got {values!r:.40}")
    try:
        out = np.asarray(values, np.float64)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name} must be a list of numbers ({e})") from e
    if out.ndim != 1:
        raise ConfigError(f"{name} must be a flat list of numbers, got shape {out.shape}")
    return out


def _first_bad(name: str, values: np.ndarray, bad: np.ndarray, what: str) -> None:
    """ConfigError naming the first index where ``bad`` holds, its value and ``what`` is wrong with it."""
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ConfigError(f"{name}[{i}] = {values[i]:g} {what}")


def load_per_table(
    path: Path | None = None, phy: PhyConfig | None = None, mcs: Collection[str] = CODED_MCS
) -> PerTable:
    """The PER table at ``path`` (None: the shipped testbed/link/per_table.json), checked against ``phy``
    (None: the default PhyConfig) and holding a curve for each of ``mcs`` (default every coded MCS).
    Unreadable, corrupt, truncated, wrong-schema or other-numerology files, NaN or negative PERs, a grid that
    does not ascend, a missing MCS: one ConfigError line naming the file, what is wrong and the command that
    regenerates it."""
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
    table = PerTable.from_dict(raw, str(path), mcs)
    table.check_numerology(phy if phy is not None else PhyConfig(), str(path))
    return table


def report_effective_snr_db(errors: PerTable, report: ChannelReport, mcs: str, payload_bytes: int) -> float:
    """The effective SNR of a measured link: the report's mean SNR shaped per subcarrier by its channel
    coefficients (|H_k|^2 / mean |H|^2), through EESM at ``mcs``; a report without coefficients (or a flat
    channel) maps to its mean SNR. Two links of one mean SNR differ here when one is frequency selective."""
    coeffs = report.channel()
    gains = np.abs(coeffs.astype(np.complex128)) ** 2
    if gains.size == 0 or not np.all(np.isfinite(gains)) or gains.mean() <= 0:
        return float(report.snr_db)
    return errors.effective_snr_db(mcs, 10.0 ** (report.snr_db / 10.0) * gains / gains.mean(), payload_bytes)


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
