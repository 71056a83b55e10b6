"""``testbed phy ber``, ``loss``, ``bench`` and ``table``: measure the OFDM PHY against the issue-2 targets and
measure the PER table of the PHY abstraction (testbed/link/abstraction.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from testbed.cli._output import Progress, add_json_flag, emit, format_table, to_jsonable
from testbed.errors import ConfigError

QUICK_FRAMES = 20
REFINE_FRAMES_PER_FRAME = 10  # frame pairs of the crossing refinement per --frames
QUICK_BER_FRAMES = 3
QUICK_SCO_FRAMES = 5
QUICK_NOISE_SAMPLES = 1_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``phy`` with its ``ber`` and ``bench`` sub-commands."""
    phy = subparsers.add_parser("phy", help="measure the OFDM PHY (PER/BER sweeps, throughput)")
    sub = phy.add_subparsers(dest="phy_command", metavar="SUBCOMMAND")
    sub.required = True

    ber = sub.add_parser("ber", help="PER/BER vs SNR per MCS over AWGN and multipath+CFO, sync figures, targets")
    add_json_flag(ber)
    ber.add_argument("--out", type=Path, default=Path("runs/phy-ber"), help="directory for the JSON and PNG")
    ber.add_argument(
        "--frames",
        type=int,
        default=None,
        help="maximum frames per SNR point of the bracket search (default 100); the refinement around each "
        "crossing gets 10x as many frame pairs (precision ~ 1/sqrt(frames))",
    )
    ber.add_argument("--quick", action="store_true", help="fewer frames and 10^6 noise samples: a smoke run")
    ber.add_argument("--mcs", action="append", default=None, help="MCS name to sweep (repeat; default all)")
    ber.add_argument("--noise-samples", type=int, default=None, help="noise-only samples for false detections")
    ber.add_argument("--seed", type=int, default=1, help="seed of every generator (default %(default)s)")
    ber.set_defaults(func=_ber)

    loss = sub.add_parser(
        "loss", help="where the receiver's loss on multipath comes from: PER told the true timing/CFO/channel/noise"
    )
    add_json_flag(loss)
    loss.add_argument("--mcs", required=True, help="MCS name")
    loss.add_argument("--snr-db", type=float, required=True, help="Es/N0 per data subcarrier (near the 10%% PER point)")
    loss.add_argument("--frames", type=int, default=1000, help="frames per variant, the same draws for each")
    loss.add_argument("--seed", type=int, default=1, help="seed of every generator (default %(default)s)")
    loss.set_defaults(func=_loss)

    bench = sub.add_parser("bench", help="single-core TX/RX throughput per MCS (Msamples/s)")
    add_json_flag(bench)
    bench.add_argument("--mcs", action="append", default=None, help="MCS name to time (repeat; default all)")
    bench.add_argument("--repeats", type=int, default=7, help="timed runs per figure (median reported)")
    bench.set_defaults(func=_bench)

    table = sub.add_parser(
        "table", help="measure the PHY abstraction's PER table (AWGN curves per MCS and length, EESM betas)"
    )
    add_json_flag(table)
    table.add_argument(
        "--out",
        type=Path,
        default=Path("runs/phy-table/per_table.json"),
        help="where to write the table (the shipped one: testbed/link/per_table.json)",
    )
    table.add_argument("--frames", type=int, default=None, help="maximum frames per SNR point (default 1000)")
    table.add_argument("--mcs", action="append", default=None, help="coded MCS to measure (repeat; default all)")
    table.add_argument(
        "--payload-bytes",
        type=int,
        action="append",
        default=None,
        help="payload length (repeat; default 100 1024 1500)",
    )
    table.add_argument("--seed", type=int, default=1, help="seed of the noise and of the calibration channel draws")
    table.set_defaults(func=_table)


def _mcs_list(names: list[str] | None) -> tuple[str, ...]:
    from testbed.phy import MCS_TABLE

    if not names:
        return tuple(MCS_TABLE)
    unknown = [n for n in names if n not in MCS_TABLE]
    if unknown:
        raise ConfigError(f"unknown MCS {', '.join(unknown)}; choose from {', '.join(MCS_TABLE)}")
    return tuple(names)


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{name} must be >= 1, got {value}")


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _ber(args: argparse.Namespace) -> int:
    from testbed.experiment.phylab.ber import BerRunConfig, run_ber
    from testbed.experiment.phylab.plot import plot_ber
    from testbed.experiment.phylab.sync import SyncConfig
    from testbed.phy import OfdmModem

    _positive("--frames", args.frames)
    _positive("--noise-samples", args.noise_samples)
    frames = args.frames or (QUICK_FRAMES if args.quick else BerRunConfig.frames)
    sync = SyncConfig(
        frames=frames,
        sco_frames=max(1, frames // 5) if not args.quick else min(QUICK_SCO_FRAMES, frames),
        noise_samples=args.noise_samples or (QUICK_NOISE_SAMPLES if args.quick else SyncConfig.noise_samples),
    )
    cfg = BerRunConfig(
        mcs=_mcs_list(args.mcs),
        frames=frames,
        refine_frames=REFINE_FRAMES_PER_FRAME * frames,
        ber_frames=QUICK_BER_FRAMES if args.quick else max(1, frames // 10),
        sync=sync,
        seed=args.seed,
    )
    result = run_ber(OfdmModem(), cfg, _progress)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = args.out / "phy_ber.json", args.out / "phy_ber.png"
    json_path.write_text(json.dumps(to_jsonable(result), indent=1, allow_nan=False) + "\n")
    plot_ber(result, png_path)
    result["files"] = {"json": str(json_path), "png": str(png_path)}
    emit(result, as_json=args.json, human=_ber_text)
    return 0


def _ber_text(result: dict[str, Any]) -> str:
    rows = []
    for channel in ("awgn", "multipath"):
        for mcs, row in result.get(channel, {}).items():
            rows.append(
                [
                    channel,
                    mcs,
                    row["snr_db_at_per_10pct"],
                    row["ideal_snr_db"],
                    row["gap_db"],
                    row["genie_snr_db_at_per_10pct"],
                    row["receiver_loss_db"],
                    row["receiver_loss_se_db"],
                ]
            )
    header = ["channel", "mcs", "SNR@10%PER dB", "ideal dB", "gap dB", "genie dB", "rx loss dB", "loss s.e. dB"]
    parts = [format_table(header, rows)]
    unc = [
        [m, r["snr_db_at_ber_1e-3"], r["theory_snr_db_at_ber_1e-3"], r["gap_db"]] for m, r in result["uncoded"].items()
    ]
    if unc:
        parts.append(format_table(["uncoded", "SNR@BER1e-3 dB", "theory dB", "gap dB"], unc))
    parts.append(format_table(["sync", "value"], [[k, v] for k, v in result["sync"].items()]))
    parts.append(_targets_text(result["targets"]))
    parts.append(f"wrote {result['files']['json']} and {result['files']['png']}")
    return "\n\n".join(parts)


def _targets_text(targets: dict[str, dict]) -> str:
    rows = [[k, t["value"], f"{t['rule']} {t['limit']:g}", "yes" if t["met"] else "NO"] for k, t in targets.items()]
    return format_table(["target", "value", "limit", "met"], rows)


def _loss(args: argparse.Namespace) -> int:
    from testbed.experiment.phylab.genie import BREAKDOWN, loss_breakdown
    from testbed.experiment.phylab.link import multipath_cfo
    from testbed.phy import OfdmModem

    _positive("--frames", args.frames)
    (mcs,) = _mcs_list([args.mcs])
    modem = OfdmModem()
    trials = args.frames * (len({"receiver", *BREAKDOWN}) + 1)  # the plain receiver, each variant, the genie
    with Progress(f"phy loss {mcs} at {args.snr_db:g} dB", trials, unit="frames") as bar:
        bar.note(f"{args.frames} frames per variant on the multipath+CFO profile")
        variants = loss_breakdown(
            modem, mcs, args.snr_db, multipath_cfo(modem), args.frames, args.seed, progress=bar.update
        )
    result = {"mcs": mcs, "snr_db": args.snr_db, "frames": args.frames, "seed": args.seed, "variants": variants}
    emit(result, as_json=args.json, human=_loss_text)
    return 0


def _loss_text(result: dict[str, Any]) -> str:
    rows = [[name, v["per"], v["fewer_losses"], v["more_losses"]] for name, v in result["variants"].items()]
    table = format_table(["told", "PER", "frames saved", "frames lost"], rows)
    return f"{table}\n({result['mcs']} at {result['snr_db']} dB; saved/lost: against the plain receiver, same frames)"


def _bench(args: argparse.Namespace) -> int:
    from testbed.experiment.phylab.bench import BenchConfig, run_bench
    from testbed.phy import OfdmModem

    _positive("--repeats", args.repeats)
    result = run_bench(OfdmModem(), BenchConfig(mcs=_mcs_list(args.mcs), repeats=args.repeats), _progress)
    emit(result, as_json=args.json, human=_bench_text)
    return 0


def _bench_text(result: dict[str, Any]) -> str:
    rows = [
        [m, r["tx_msps"], r["rx_msps"], f"{r['frames_decoded']}/{r['frames']}"]
        for m, r in result.items()
        if m not in ("targets", "config")
    ]
    table = format_table(["mcs", "TX Msamples/s", "RX Msamples/s", "decoded"], rows)
    return f"{table}\n\n{_targets_text(result['targets'])}\n(one core, median of {result['config']['repeats']})"


def _table(args: argparse.Namespace) -> int:
    from testbed.experiment.phylab.table import TableRunConfig, run_table
    from testbed.phy import MCS_TABLE, OfdmModem, PhyConfig

    _positive("--frames", args.frames)
    mcs = _mcs_list(args.mcs) if args.mcs else TableRunConfig.mcs
    uncoded = [m for m in mcs if not MCS_TABLE[m].coded]
    if uncoded:
        raise ConfigError(f"--mcs {', '.join(uncoded)}: the PER table holds coded MCSs only")
    lengths = tuple(args.payload_bytes) if args.payload_bytes else TableRunConfig.payload_bytes
    bad = [n for n in lengths if not 1 <= n <= PhyConfig().max_payload_bytes]
    if bad:
        raise ConfigError(f"--payload-bytes {bad[0]} must be in 1..{PhyConfig().max_payload_bytes}")
    cfg = TableRunConfig(
        mcs=mcs,
        payload_bytes=lengths,
        frames=args.frames or TableRunConfig.frames,
        seed=args.seed,
    )
    table, summary = run_table(OfdmModem(), cfg, _progress)
    table.save(args.out)
    summary["file"] = str(args.out)
    emit(summary, as_json=args.json, human=_table_text)
    return 0


def _table_text(summary: dict[str, Any]) -> str:
    lengths = sorted({n for per in summary["snr_db_at_per_10pct"].values() for n in per})
    rows = [
        [mcs, *(per.get(n) for n in lengths), *(summary["beta"][mcs].get(n) for n in lengths),
         *(summary["calibration"][mcs][n]["rms_log_error"] for n in lengths if n in summary["calibration"][mcs])]
        for mcs, per in summary["snr_db_at_per_10pct"].items()
    ]  # fmt: skip
    header = ["mcs", *(f"10% PER {n} B dB" for n in lengths), *(f"beta {n} B" for n in lengths),
              *(f"rms ln-PER err {n} B" for n in lengths)]  # fmt: skip
    return f"{format_table(header, rows)}\n\nwrote {summary['file']} in {summary['run_s']:.0f} s"
