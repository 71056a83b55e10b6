"""PER and BER versus SNR of the real OFDM receiver, per MCS and channel (issue 2, item 4).

For each MCS the SNR (Es/N0 per data subcarrier) at 10% PER is found in two stages, for the real receiver
and for the perfect-CSI genie (genie.py) alike:

1. Bracket: start near the ideal reference, step 1 dB (AWGN) or 2 dB (fading) until the PER crosses 10%,
   bisect the bracket down to 0.5 dB, interpolate log10(PER) between the two points around 10%. A point
   stops early once it has ``PER_ERRORS_TO_STOP`` frame errors (clearly above 10%), so the cost goes to the
   points that decide the answer. This locates each crossing to a few tenths of a dB.
2. Refine: ``refine_frames`` frame pairs spread over a few SNRs spanning both rough crossings, receiver and
   genie over the same channel draw frame by frame; logistic fits give the crossings, the receiver's loss
   and bootstrap standard errors (crossing.py).

Uncoded constellations are also swept around the theoretical SNR for BER 1e-3 and the gap to theory
(testbed.phy.theory) is reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import brentq

from testbed.experiment.phylab.crossing import PairedPoint, logistic_fit, paired_crossings
from testbed.experiment.phylab.genie import GenieTrial
from testbed.experiment.phylab.link import (
    ChannelFactory,
    FrameTrial,
    Trial,
    awgn_only,
    channel_factory,
    seeded_draw,
)
from testbed.experiment.phylab.sync import SyncConfig, sync_figures
from testbed.experiment.phylab.targets import targets
from testbed.phy import MCS_TABLE, OfdmModem
from testbed.phy.layout import CRC_BYTES
from testbed.phy.theory import uncoded_ber

TARGET_PER = 0.1  # the operating point of the reference table (ARCHITECTURE.md)
TARGET_BER = 1e-3  # where uncoded BER is compared with theory (issue 2)
PER_ERRORS_TO_STOP = 20  # a point with this many frame errors is clearly above TARGET_PER
STEP_DB = {"awgn": 1.0, "multipath": 2.0}  # coarse search step (fading curves are shallow)
BISECT_DB = 0.5  # the bracket around 10% PER is bisected down to this width
SEARCH_BELOW_DB = 4.0  # search window below the ideal reference
SEARCH_ABOVE_DB = {"awgn": 12.0, "multipath": 32.0}  # and above it (uncoded frames in fading need ~+25 dB)
# refinement: points span both rough crossings plus this margin each side; at most this many points
REFINE_MARGIN_DB = {"awgn": 0.3, "multipath": 1.0}  # first round
REFINE_SPAN_LOGIT = 1.2  # second round: +-1.2 in log-odds around 10% PER (PER ~0.27 .. ~0.03)
REFINE_MARGIN_BOUNDS_DB = (0.25, 2.5)
REFINE_SHARE = {"awgn": 0.3, "multipath": 1.0}  # of refine_frames: AWGN curves are steep, fading ones shallow
REFINE_POINTS = 5
REFINE_SPACING_DB = 0.25  # refinement points at least about this far apart
BER_OFFSETS_DB = (-1.0, 0.0, 1.0, 2.0)  # grid around the theoretical SNR for TARGET_BER
BER_MAX_OFFSET_DB = 6.0

Progress = Callable[[str], None]


@dataclass
class Point:
    """Counts at one SNR."""

    snr_db: float
    frames: int = 0
    frame_errors: int = 0
    missed: int = 0
    bit_errors: int = 0
    bits: int = 0

    @property
    def per(self) -> float:
        return self.frame_errors / self.frames if self.frames else math.nan

    @property
    def ber(self) -> float:
        return self.bit_errors / self.bits if self.bits else math.nan

    def as_dict(self) -> dict:
        return {**asdict(self), "per": self.per, "raw_ber": self.ber}


def measure(
    trial: Trial,
    snr_db: float,
    channel: ChannelFactory,
    rng: np.random.Generator,
    frames: int,
    stop_after_frame_errors: int | None = PER_ERRORS_TO_STOP,
) -> Point:
    """Send up to ``frames`` frames at ``snr_db``, stopping early after ``stop_after_frame_errors`` losses."""
    point = Point(snr_db)
    stop = math.inf if stop_after_frame_errors is None else stop_after_frame_errors
    while point.frames < frames and point.frame_errors < stop:
        rx = trial(snr_db, channel, rng)
        point.frames += 1
        point.frame_errors += not rx.delivered
        point.missed += not rx.detected
        point.bit_errors += rx.bit_errors
        point.bits += rx.bits
    return point


def log_crossing(x: np.ndarray, y: np.ndarray, target: float, floor: float) -> float | None:
    """x where y (decreasing in x) first falls to ``target``, interpolating log10(y) linearly; None if never.

    x, y : (m,) float sorted by x. y values below ``floor`` (e.g. zero errors) are raised to it.
    """
    logs = np.log10(np.maximum(y, floor))
    for i in range(len(x) - 1):
        if y[i] > target >= y[i + 1]:
            frac = (math.log10(target) - logs[i]) / (logs[i + 1] - logs[i])
            return float(x[i] + frac * (x[i + 1] - x[i]))
    return None


def ideal_snr_db(mcs: str, payload_bytes: int) -> float:
    """Reference SNR for 10% PER: the table for coded MCSs, exact theory for uncoded ones.

    Uncoded: every one of the 8 (payload + CRC) bits must be right, so PER = 1 - (1 - BER)^bits.
    """
    m = MCS_TABLE[mcs]
    if m.ideal_snr_db_per_10pct is not None:
        return m.ideal_snr_db_per_10pct
    n_bits = 8 * (payload_bytes + CRC_BYTES)
    ber_needed = -math.expm1(math.log1p(-TARGET_PER) / n_bits)
    return theory_snr_db(ber_needed, m.bits_per_symbol)


def theory_snr_db(ber: float, bits_per_symbol: int) -> float:
    """Es/N0 in dB where uncoded Gray BER in AWGN equals ``ber``."""

    def log_excess(snr_db: float) -> float:
        return math.log(max(float(uncoded_ber(snr_db, bits_per_symbol)), 1e-300)) - math.log(ber)

    return float(brentq(log_excess, -20.0, 60.0))


def search_snr_at_per(
    trial: Trial,
    channel: ChannelFactory,
    start_db: float,
    window_db: tuple[float, float],
    rng: np.random.Generator,
    frames: int,
    step_db: float = 1.0,
) -> tuple[float | None, list[Point]]:
    """SNR at TARGET_PER (None if not crossed within ``window_db``) and every point measured, sorted."""
    points: dict[float, Point] = {}

    def per_at(snr_db: float) -> float:
        key = round(snr_db, 3)
        if key not in points:
            points[key] = measure(trial, key, channel, rng, frames)
        return points[key].per

    snr = float(np.clip(start_db, *window_db))
    direction = step_db if per_at(snr) > TARGET_PER else -step_db
    while window_db[0] <= snr + direction <= window_db[1]:
        snr += direction
        if (per_at(snr) > TARGET_PER) != (direction > 0):  # crossed: bisect the bracket down to BISECT_DB
            low, high = min(snr, snr - direction), max(snr, snr - direction)
            while high - low > BISECT_DB + 1e-9:
                mid = (low + high) / 2
                low, high = (mid, high) if per_at(mid) > TARGET_PER else (low, mid)
            break
    ordered = [points[k] for k in sorted(points)]
    snrs = np.array([p.snr_db for p in ordered])
    pers = np.array([p.per for p in ordered])
    return log_crossing(snrs, pers, TARGET_PER, 0.5 / frames), ordered


def measure_paired(
    trial: Trial,
    genie: Trial,
    point: PairedPoint,
    channel: ChannelFactory,
    channel_seed: int,
    frames: int,
    rng: np.random.Generator,
) -> PairedPoint:
    """``point`` with ``frames`` more frames of both trials, frame i of both over one channel draw.

    Frame i's channel comes from a generator seeded by (channel_seed, SNR in mdB, i), so the receiver and the
    genie see the same taps and CFO (common random numbers); their noise comes from ``rng``.
    """
    first = point.receiver_failed.size
    key = int(round(point.snr_db * 1000)) + 1_000_000  # SeedSequence wants non-negative integers
    rx_failed, genie_failed = np.empty(frames, bool), np.empty(frames, bool)
    for j in range(frames):
        draw = seeded_draw(channel, (channel_seed, key, first + j))
        rx_failed[j] = not trial(point.snr_db, draw, rng).delivered
        genie_failed[j] = not genie(point.snr_db, draw, rng).delivered
    point.receiver_failed = np.concatenate([point.receiver_failed, rx_failed])
    point.genie_failed = np.concatenate([point.genie_failed, genie_failed])
    return point


def refine(
    trial: Trial,
    genie: Trial,
    channel: ChannelFactory,
    rough_db: tuple[float, float],
    margin_db: float,
    frames: int,
    rng: np.random.Generator,
) -> tuple[dict, list[PairedPoint]]:
    """Stage 2 of the module docstring: paired points spanning both crossings, fitted and bootstrapped.

    rough_db : (receiver, genie) crossings from the bracket search. Half the ``frames`` frame pairs go to up to
    REFINE_POINTS SNRs spanning them plus ``margin_db``; the other half to a span around the crossings
    fitted from those (the bracket's estimates can be off by a few tenths of a dB) wide enough for the fitted
    slope (REFINE_SPAN_LOGIT), then the final fit.
    """
    channel_seed = int(rng.integers(2**32))
    points: dict[float, PairedPoint] = {}
    centres, fit = rough_db, {}
    for share in (frames // 2, frames - frames // 2):
        lo, hi = min(centres) - margin_db, max(centres) + margin_db
        n_points = int(np.clip(round((hi - lo) / REFINE_SPACING_DB) + 1, 2, REFINE_POINTS))
        for x in np.linspace(lo, hi, n_points):
            key = round(float(x), 2)
            point = points.setdefault(key, PairedPoint(key, np.empty(0, bool), np.empty(0, bool)))
            measure_paired(trial, genie, point, channel, channel_seed, max(share // n_points, 1), rng)
        ordered = [points[k] for k in sorted(points)]
        fit = paired_crossings(ordered, TARGET_PER, rng)
        found = tuple(x for x in (fit["receiver_db"], fit["genie_db"]) if x is not None)
        centres = found if found else centres
        # the second round spans PER ~0.3 .. ~0.03 around the crossings: on a shallow fading curve that is
        # 2-3 dB, and a narrower span leaves the slope, hence the crossing, poorly fixed
        slope = logistic_fit(
            np.array([p.snr_db for p in ordered]),
            np.array([p.receiver_failed.sum() for p in ordered]),
            np.array([p.receiver_failed.size for p in ordered]),
        )
        if slope is not None and slope[1] < 0:
            margin_db = float(np.clip(REFINE_SPAN_LOGIT / -slope[1], *REFINE_MARGIN_BOUNDS_DB))
    return fit, [points[k] for k in sorted(points)]


def per_sweep(
    modem: OfdmModem,
    mcs_names: tuple[str, ...],
    channel_names: tuple[str, ...],
    frames: int,
    payload_bytes: int,
    rng: np.random.Generator,
    progress: Progress,
    refine_frames: int = 0,
) -> dict[str, dict[str, dict]]:
    """{channel: {mcs: {snr_db_at_per_10pct, ideal_snr_db, gap_db, genie_..., receiver_loss_db, *_se_db, points}}}.

    ``snr_db_at_per_10pct`` is the real receiver's; ``genie_snr_db_at_per_10pct`` is the perfect-CSI,
    perfect-sync reference over the same channel profile (GenieTrial), so ``receiver_loss_db`` is what the
    receiver loses on that channel and genie minus ideal is what the channel itself costs. With
    ``refine_frames`` > 0 the coded MCSs' figures come from the refinement stage and carry bootstrap standard
    errors (``*_se_db``); otherwise (and for uncoded MCSs, judged by their BER) from the bracket search, with
    no standard error.
    """
    out: dict[str, dict[str, dict]] = {name: {} for name in channel_names}
    for mcs in mcs_names:
        trial = FrameTrial(modem, mcs, payload_bytes, rng)
        genie = GenieTrial(modem.cfg, mcs, payload_bytes)
        ideal = ideal_snr_db(mcs, payload_bytes)
        start = ideal
        for name in channel_names:
            window = (ideal - SEARCH_BELOW_DB, ideal + SEARCH_ABOVE_DB[name])
            channel = channel_factory(name, modem)
            snr, points = search_snr_at_per(trial, channel, round(start), window, rng, frames, STEP_DB[name])
            genie_snr, genie_points = search_snr_at_per(
                genie, channel, round(start), window, rng, frames, STEP_DB[name]
            )
            fit: dict = {"receiver_se_db": None, "genie_se_db": None, "loss_se_db": None}
            paired: list[PairedPoint] = []
            if refine_frames and MCS_TABLE[mcs].coded and snr is not None and genie_snr is not None:
                fit, paired = refine(
                    trial, genie, channel, (snr, genie_snr), REFINE_MARGIN_DB[name], refine_frames, rng
                )
                snr = fit["receiver_db"] if fit["receiver_db"] is not None else snr
                genie_snr = fit["genie_db"] if fit["genie_db"] is not None else genie_snr
            out[name][mcs] = {
                "snr_db_at_per_10pct": snr,
                "snr_se_db": fit["receiver_se_db"],
                "ideal_snr_db": ideal,
                "gap_db": _minus(snr, ideal),
                "genie_snr_db_at_per_10pct": genie_snr,
                "genie_se_db": fit["genie_se_db"],
                "receiver_loss_db": _minus(snr, genie_snr),
                "receiver_loss_se_db": fit["loss_se_db"],
                "points": [p.as_dict() for p in points],
                "genie_points": [p.as_dict() for p in genie_points],
                "paired_points": [p.as_dict() for p in paired],
            }
            progress(
                f"{name:9s} {mcs:13s} SNR@10%PER {_fmt(snr)} dB (ideal {ideal:.2f}, gap {_fmt(_minus(snr, ideal))}; "
                f"genie {_fmt(genie_snr)}, receiver loss {_fmt(_minus(snr, genie_snr))} +- {_fmt(fit['loss_se_db'])})"
            )
            if snr is not None:
                start = snr + 1.0  # the next channel is harder: start just above this one
    return out


def ber_sweep(modem: OfdmModem, mcs: str, frames: int, payload_bytes: int, rng: np.random.Generator) -> dict:
    """Raw BER of an uncoded MCS on AWGN around the theoretical SNR for TARGET_BER, and the gap to theory."""
    bps = MCS_TABLE[mcs].bits_per_symbol
    theory_db = theory_snr_db(TARGET_BER, bps)
    trial = FrameTrial(modem, mcs, payload_bytes, rng)
    points: list[Point] = []
    offsets = list(BER_OFFSETS_DB)
    while offsets:
        offset = offsets.pop(0)
        point = measure(trial, round(theory_db + offset, 3), awgn_only, rng, frames, stop_after_frame_errors=None)
        points.append(point)
        if not offsets and point.ber > TARGET_BER and offset < BER_MAX_OFFSET_DB:
            offsets.append(offset + 1.0)  # not crossed yet: extend the grid upwards
    snrs = np.array([p.snr_db for p in points])
    bers = np.array([p.ber for p in points])
    measured = log_crossing(snrs, bers, TARGET_BER, 0.5 / max(p.bits for p in points))
    return {
        "snr_db_at_ber_1e-3": measured,
        "theory_snr_db_at_ber_1e-3": theory_db,
        "gap_db": None if measured is None else measured - theory_db,
        "points": [{**p.as_dict(), "theory_ber": float(uncoded_ber(p.snr_db, bps))} for p in points],
    }


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@dataclass(frozen=True)
class BerRunConfig:
    """What ``testbed phy ber`` measures and how hard."""

    mcs: tuple[str, ...] = tuple(MCS_TABLE)
    channels: tuple[str, ...] = ("awgn", "multipath")
    frames: int = 100  # maximum frames per SNR point of the PER search
    refine_frames: int = 1000  # frame pairs (receiver + genie) around each multipath crossing (AWGN: 30%); 0: none
    ber_frames: int = 10  # frames per SNR point of the uncoded BER sweep
    payload_bytes: int = 1000
    sync: SyncConfig = SyncConfig()
    seed: int = 1


def run_ber(modem: OfdmModem, cfg: BerRunConfig, progress: Progress) -> dict:
    """Everything ``testbed phy ber`` reports: PER per channel, uncoded BER vs theory, sync, targets."""
    rng = np.random.default_rng(cfg.seed)
    result: dict = per_sweep(
        modem, cfg.mcs, cfg.channels, cfg.frames, cfg.payload_bytes, rng, progress, cfg.refine_frames
    )
    result["uncoded"] = {}
    for mcs in cfg.mcs:
        if not MCS_TABLE[mcs].coded:
            result["uncoded"][mcs] = ber_sweep(modem, mcs, cfg.ber_frames, cfg.payload_bytes, rng)
            progress(f"uncoded   {mcs:13s} BER 1e-3 gap to theory {_fmt(result['uncoded'][mcs]['gap_db'])} dB")
    result["sync"] = sync_figures(modem, cfg.sync, rng, progress)
    result["targets"] = targets(result)
    result["config"] = {**asdict(cfg), "sample_rate_hz": modem.cfg.sample_rate_hz}
    return result
