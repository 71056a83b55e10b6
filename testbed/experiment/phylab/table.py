"""Measure the PHY abstraction's PER table (testbed/link/abstraction.py): ``testbed phy table``.

1. AWGN curves, per coded MCS and payload length, with the real receiver (FrameTrial of link.py: random
   burst position, timing, CFO and channel estimation all done by the receiver). From a point with PER >=
   ``HIGH_PER`` the SNR walks up in ``GRID_DB`` steps, each point measured until ``ERRORS_TO_STOP`` frame
   errors or ``frames`` frames, until a point has PER <= ``LOW_PER``. A point with at least
   ``PRECISE_ERRORS`` errors keeps its measured PER; the points with fewer, and a tail extended down to
   ``TAIL_PER``, take a logistic fit (log-odds linear in dB, crossing.logistic_fit) of the points at
   PER <= ``TAIL_FIT_MAX_PER``: the tail is fitted, not measured, below about 10 / frames.
2. EESM calibration, per MCS and tabulated payload length (a beta for each AWGN curve: the short frames'
   curves are shallower, and a beta fitted at 1500 bytes is optimistic at 100): frames of that length over
   fresh draws of the multipath + CFO channel of ``testbed phy ber`` (link.multipath_cfo), at SNRs 1 dB apart
   from that length's AWGN SNR at PER 0.5 until the PER falls to ``FADING_LOW_PER``. Each frame keeps its
   data subcarriers' |H_k|^2. beta minimises sum_j w_j (ln PER_measured_j - ln mean_i
   PER_AWGN(EESM_beta(SNR_j |H_i|^2)))^2 (PER_AWGN: that length's curve) over the points j with PER in
   ``FIT_PER_RANGE``, w_j = errors_j / (1 - PER_j) (the inverse variance of ln PER_measured_j).

Channel draws come from their own generator seeded by (seed, stream, MCS index), restarted for each length:
stream 0 is calibration, stream 1 validation (benchmarks/phy_abstraction.py), so validation draws are never
calibration draws. Noise comes from the run's one generator (seed), AWGN curves first, so the curves do not
depend on the calibration.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from testbed.channel import Multipath
from testbed.experiment.phylab.ber import Point, ideal_snr_db, measure
from testbed.experiment.phylab.crossing import logistic_fit
from testbed.experiment.phylab.link import ChannelFactory, FrameTrial, awgn_only, multipath_cfo
from testbed.link.abstraction import PerCurve, PerTable, eesm_linear, numerology_of, subcarrier_snr
from testbed.phy import OfdmModem
from testbed.phy.mcs import CODED_MCS, MCS_TABLE

GRID_DB = 0.25  # AWGN table spacing: coded waterfalls fall about a decade per 0.5-1 dB
HIGH_PER = 0.7  # the walk starts from a point at least this bad
LOW_PER = 0.01  # and stops at a point this good
ERRORS_TO_STOP = 100  # a point stops after this many frame errors (+-10% on its PER)
PRECISE_ERRORS = 20  # a point with this many errors keeps its measured PER (+-22%); fewer: the fitted tail
TAIL_FIT_MAX_PER = 0.3  # the tail fit uses the points at or below this PER
TAIL_PER = 1e-4  # the fitted tail extends down to this PER
MAX_TAIL_POINTS = 16
MAX_WALK_POINTS = 60
CALIBRATION_STREAM, VALIDATION_STREAM = 0, 1
FADING_STEP_DB = 1.0
FADING_LOW_PER = 0.01
FADING_MAX_SPAN_DB = 25.0  # above the AWGN PER-0.5 point (fading needs +5..+7 dB at 10%, docs/phy.md)
FIT_PER_RANGE = (0.003, 0.8)
BETA_BOUNDS = (0.05, 500.0)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TableRunConfig:
    """What ``testbed phy table`` measures and how hard."""

    mcs: tuple[str, ...] = CODED_MCS
    payload_bytes: tuple[int, ...] = (100, 1024, 1500)  # short frames, the daemons' [air] default, the scenario's
    frames: int = 1000  # maximum frames per SNR point (AWGN and fading)
    seed: int = 1


# --- AWGN curves -------------------------------------------------------------------------------------------
def awgn_curve(modem: OfdmModem, mcs: str, payload_bytes: int, frames: int, rng: np.random.Generator) -> PerCurve:
    """The AWGN PER curve of one MCS and length (step 1 of the module docstring)."""
    trial = FrameTrial(modem, mcs, payload_bytes, rng)
    points: dict[float, Point] = {}

    def at(snr_db: float) -> Point:
        key = round(snr_db, 4)
        if key not in points:
            points[key] = measure(trial, key, awgn_only, rng, frames, ERRORS_TO_STOP)
        return points[key]

    snr = GRID_DB * round((ideal_snr_db(mcs, payload_bytes) - 1.0) / GRID_DB)
    while at(snr).per < HIGH_PER and len(points) < MAX_WALK_POINTS:
        snr -= 2 * GRID_DB
    while at(snr).per > LOW_PER and at(snr).frame_errors > 0 and len(points) < MAX_WALK_POINTS:
        snr += GRID_DB
    return curve_from_points([points[k] for k in sorted(points)])


def curve_from_points(points: Sequence[Point]) -> PerCurve:
    """Measured PER where precise, the fitted logistic tail elsewhere and beyond (module docstring)."""
    snr = np.array([p.snr_db for p in points])
    n = np.array([p.frames for p in points])
    err = np.array([p.frame_errors for p in points])
    per = err / n
    tail = per <= TAIL_FIT_MAX_PER
    fit = logistic_fit(snr[tail], err[tail], n[tail]) if tail.sum() >= 2 else None
    if fit is None or fit[1] >= 0:
        fit = logistic_fit(snr, err, n)
    if fit is None or fit[1] >= 0:  # too few frames for a slope: measured values, zero errors at half a frame
        return PerCurve(snr, np.minimum.accumulate(np.maximum(per, 0.5 / n)), n, err)
    a, b = fit

    def fitted(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(a + b * x)))

    table = np.where(err >= PRECISE_ERRORS, per, fitted(snr))
    extra = []
    x = snr[-1]
    while fitted(np.array([x]))[0] > TAIL_PER and len(extra) < MAX_TAIL_POINTS:
        x += GRID_DB
        extra.append(x)
    snr_all = np.concatenate([snr, extra])
    per_all = np.minimum.accumulate(np.concatenate([table, fitted(np.array(extra))]))
    zeros = np.zeros(len(extra), np.int64)
    return PerCurve(snr_all, np.maximum(per_all, 1e-12), np.concatenate([n, zeros]), np.concatenate([err, zeros]))


# --- fading frames -----------------------------------------------------------------------------------------
@dataclass
class FadingSample:
    """Frames sent over fresh multipath + CFO draws.

    snr_db : (n,) float Es/N0 per data subcarrier of each frame (the AWGN part). gains : (n, n_data) float
    |H_k|^2 of each frame's draw on the data subcarriers. failed : (n,) bool frame not delivered.
    """

    snr_db: np.ndarray
    gains: np.ndarray
    failed: np.ndarray

    def points(self) -> list[tuple[float, int, int]]:
        """(snr_db, frames, errors) per distinct SNR, ascending."""
        return [
            (float(s), int(np.sum(self.snr_db == s)), int(np.sum(self.failed[self.snr_db == s])))
            for s in np.unique(self.snr_db)
        ]

    def predicted_per(self, table: PerTable, mcs: str, payload_bytes: int, beta: float | None = None) -> np.ndarray:
        """(n,) the abstraction's PER of each frame (EESM with ``beta``, or the table's for ``payload_bytes``)."""
        beta = table.beta_for(mcs, payload_bytes) if beta is None else beta
        eff_db = 10.0 * np.log10(np.maximum(eesm_linear(self.gains * 10.0 ** (self.snr_db[:, None] / 10.0), beta),
                                            1e-30))  # fmt: skip
        return table.frame_error_rates(mcs, payload_bytes, eff_db)


def channel_stream(modem: OfdmModem, seed: int, stream: int, mcs: str) -> ChannelFactory:
    """Multipath + CFO draws from their own generator, seeded by (seed, stream, MCS index) (module docstring)."""
    draws = np.random.default_rng((seed, stream, MCS_TABLE[mcs].index))
    factory = multipath_cfo(modem)
    return lambda _: factory(draws)


def fading_scan(
    modem: OfdmModem,
    mcs: str,
    payload_bytes: int,
    start_db: float,
    frames: int,
    channel: ChannelFactory,
    rng: np.random.Generator,
    progress: Progress,
) -> FadingSample:
    """Frames at SNRs FADING_STEP_DB apart from ``start_db`` until the PER falls to FADING_LOW_PER."""
    trial = FrameTrial(modem, mcs, payload_bytes, rng)
    snrs, gains, failed = [], [], []
    snr = start_db
    while snr <= start_db + FADING_MAX_SPAN_DB:
        errors = n = 0
        while n < frames and errors < ERRORS_TO_STOP:
            rx = trial(snr, channel, rng)
            taps = next(m.taps for m in rx.channel_models if isinstance(m, Multipath))
            gains.append(subcarrier_snr(modem.cfg, taps, 0.0))
            snrs.append(snr)
            failed.append(not rx.delivered)
            errors += not rx.delivered
            n += 1
        progress(f"  fading {mcs:10s} {payload_bytes:5d} B at {snr:6.2f} dB: PER {errors / n:.4f} ({errors}/{n})")
        if errors / n <= FADING_LOW_PER:
            break
        snr += FADING_STEP_DB
    return FadingSample(np.array(snrs), np.array(gains), np.array(failed))


def calibrate_beta(table: PerTable, mcs: str, payload_bytes: int, sample: FadingSample) -> dict:
    """{beta, rms_log_error, points}: the least-squares beta of step 2 of the module docstring."""
    idx = [sample.snr_db == s for s, _, _ in sample.points()]
    measured = np.array([e / n for _, n, e in sample.points()])
    errors = np.array([e for _, _, e in sample.points()])
    use = (measured >= FIT_PER_RANGE[0]) & (measured <= FIT_PER_RANGE[1]) & (errors > 0)
    if use.sum() < 1:
        use = errors > 0
    weight = errors / np.maximum(1.0 - measured, 1e-3)

    def cost(log_beta: float) -> float:
        pred = sample.predicted_per(table, mcs, payload_bytes, math.exp(log_beta))
        mean = np.array([pred[i].mean() for i in idx])
        resid = np.log(measured[use]) - np.log(np.maximum(mean[use], 1e-12))
        return float(np.sum(weight[use] * resid**2) / np.sum(weight[use]))

    grid = np.linspace(*np.log(BETA_BOUNDS), 60)
    best = int(np.argmin([cost(g) for g in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    found = minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
    beta = float(math.exp(found.x))
    pred = sample.predicted_per(table, mcs, payload_bytes, beta)
    return {
        "beta": beta,
        "rms_log_error": math.sqrt(float(found.fun)),
        "points": [
            {"snr_db": s, "frames": n, "errors": e, "per": e / n, "predicted_per": float(pred[i].mean())}
            for (s, n, e), i in zip(sample.points(), idx, strict=True)
        ],
    }


# --- the whole run -----------------------------------------------------------------------------------------
def run_table(modem: OfdmModem, cfg: TableRunConfig, progress: Progress) -> tuple[PerTable, dict]:
    """Measure every curve and calibrate every beta; the table and a summary of the run."""
    t0 = time.monotonic()
    rng = np.random.default_rng(cfg.seed)
    lengths = tuple(sorted(set(cfg.payload_bytes)))
    curves: dict[str, dict[int, PerCurve]] = {}
    for mcs in cfg.mcs:
        curves[mcs] = {}
        for length in lengths:
            curve = awgn_curve(modem, mcs, length, cfg.frames, rng)
            curves[mcs][length] = curve
            progress(
                f"awgn   {mcs:10s} {length:5d} B: {curve.snr_db[0]:.2f}..{curve.snr_db[-1]:.2f} dB, "
                f"PER 10% at {curve.snr_at(0.1):.2f} dB, {int(curve.frames.sum())} frames"
            )
    provisional = PerTable(numerology_of(modem.cfg), curves, {m: dict.fromkeys(lengths, 1.0) for m in cfg.mcs})
    beta: dict[str, dict[int, float]] = {}
    calibration: dict[str, dict[int, dict]] = {}
    for mcs in cfg.mcs:
        beta[mcs], calibration[mcs] = {}, {}
        for length in lengths:
            start = GRID_DB * round(provisional.snr_db_at_per(mcs, 0.5, length) / GRID_DB)
            channel = channel_stream(modem, cfg.seed, CALIBRATION_STREAM, mcs)
            sample = fading_scan(modem, mcs, length, start, cfg.frames, channel, rng, progress)
            fit = calibrate_beta(provisional, mcs, length, sample)
            beta[mcs][length], calibration[mcs][length] = fit["beta"], fit
            progress(
                f"eesm   {mcs:10s} {length:5d} B: beta {fit['beta']:.3g} (rms ln-PER error {fit['rms_log_error']:.3f})"
            )
    run_s = time.monotonic() - t0
    provenance = {
        "command": "testbed phy table",
        "config": asdict(cfg),
        "run_s": round(run_s, 1),
        "calibration_channel": "multipath_cfo (experiment/phylab/link.py), channel stream 0",
        "calibration": {
            m: {str(n): {k: v for k, v in fit.items() if k != "points"} for n, fit in per.items()}
            for m, per in calibration.items()
        },
    }
    table = PerTable(numerology_of(modem.cfg), curves, beta, provenance)
    summary = {
        "run_s": run_s,
        "config": asdict(cfg),
        "beta": beta,
        "snr_db_at_per_10pct": {m: {n: c.snr_at(0.1) for n, c in per.items()} for m, per in curves.items()},
        "calibration": calibration,
    }
    return table, summary
