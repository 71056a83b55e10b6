"""``testbed link send``: move a file or random megabytes reliably over a simulated radio link.

Down (default): the BS (node 0) broadcasts one object to UEs 1..N. Up: every UE sends its own object to the
BS in TDMA slots. Prints progress on stderr and a summary (airtime, goodput, resends, per-UE SNR).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from testbed.cli._output import Progress, add_json_flag, emit, format_table

BACKENDS = ("sim", "model", "loopback", "hub")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("link", help="reliable link layer: segmentation, ARQ, broadcast, TDMA")
    sub = parser.add_subparsers(dest="link_command", metavar="SUBCOMMAND")
    sub.required = True
    send = sub.add_parser("send", help="send a file or random megabytes from one node to one or many")
    what = send.add_mutually_exclusive_group()
    what.add_argument("--file", type=Path, help="file to send (default: --megabytes of seeded random bytes)")
    what.add_argument("--megabytes", type=float, default=1.0, help="random payload size in MB (10^6 bytes)")
    send.add_argument("--ues", type=int, default=1, help="number of UEs (nodes 1..N; the BS is node 0)")
    send.add_argument(
        "--direction",
        choices=("down", "up"),
        default="down",
        help="down: BS broadcasts to all UEs; up: each UE sends the payload to the BS in TDMA slots",
    )
    send.add_argument(
        "--backend",
        choices=BACKENDS,
        default="sim",
        help="sim: OFDM modem over simulated channels; model: frame-level model, exact airtime, no DSP, frames "
        "lost at the PHY abstraction's PER for the link SNR (plus --loss); "
        "loopback: modem over in-process testbed.radio radios of --scenario; hub: modem over radios of a running "
        "'testbed hub --scenario FILE' at --endpoint",
    )
    send.add_argument(
        "--scenario",
        type=Path,
        help="radio scenario TOML (loopback, hub): the first node is the BS, the next --ues nodes the UEs; "
        "SNR, CFO and loss then come from the scenario, not --snr-db/--cfo-hz/--loss",
    )
    send.add_argument("--endpoint", help="hub endpoint, e.g. tcp://127.0.0.1:5555 (hub backend)")
    send.add_argument(
        "--snr-db",
        type=float,
        nargs="+",
        default=[25.0],
        help="Es/N0 per subcarrier of each UE's link (one value for all, or one per UE)",
    )
    send.add_argument("--loss", type=float, default=0.0, help="injected frame loss probability per receiver")
    send.add_argument("--cfo-hz", type=float, default=0.0, help="carrier offset on every link (sim backend)")
    send.add_argument(
        "--delay-spread",
        type=float,
        default=0.0,
        help="RMS delay spread in samples of Rayleigh multipath, 0 for none (sim backend)",
    )
    send.add_argument(
        "--mcs", default="auto", help="'auto' (adaptive: the link's chooser, link/airtime.py) or a fixed MCS"
    )
    send.add_argument(
        "--per-curves",
        type=Path,
        help="JSON of 'testbed phy ber --json': measured 10%%-PER SNRs replace the ideal ones",
    )
    send.add_argument("--per-channel", default="awgn", help="which channel's curves of --per-curves to use")
    send.add_argument("--frame-bytes", type=int, default=8192, help="PHY payload per frame, segment header included")
    send.add_argument("--max-passes", type=int, default=8, help="passes of an object before the transfer fails")
    send.add_argument("--control-latency-s", type=float, default=0.0, help="NACK delay, receiver to sender")
    send.add_argument(
        "--tdma-cycle-samples",
        type=int,
        help="TDMA cycle of an uplink from several UEs (default: the shortest whose equal slots hold one frame "
        "at the slowest MCS)",
    )
    send.add_argument("--seed", type=int, default=1, help="seed of payload, channels and losses")
    add_json_flag(send)
    send.set_defaults(func=_send)  # fmt: skip


def _send(args: argparse.Namespace) -> int:
    import numpy as np

    from testbed.errors import ConfigError
    from testbed.link.airtime import McsPolicy, default_errors, thresholds_from_per_sweep
    from testbed.link.arq import LinkConfig, TransferIncomplete, broadcast, uplink
    from testbed.phy.layout import phy_bit_rate_bps

    if args.ues < 1 or len(args.snr_db) not in (1, args.ues):
        raise ConfigError(f"--ues must be >= 1 and --snr-db give 1 or {args.ues} values, got {len(args.snr_db)}")
    rng = np.random.default_rng(args.seed)
    data = args.file.read_bytes() if args.file else rng.bytes(int(args.megabytes * 1e6))
    snrs = args.snr_db * args.ues if len(args.snr_db) == 1 else args.snr_db
    phy, link = _make_link(args, snrs, rng)
    cfg = LinkConfig(
        frame_payload_bytes=args.frame_bytes,
        max_passes=args.max_passes,
        control_latency_s=args.control_latency_s,
        tdma_cycle_samples=args.tdma_cycle_samples,
        mcs=McsPolicy.from_errors(default_errors(), args.frame_bytes, None if args.mcs == "auto" else args.mcs),
    )
    if args.per_curves:
        sweep = json.loads(args.per_curves.read_text())
        thresholds = thresholds_from_per_sweep(sweep, args.per_channel)
        cfg = replace(cfg, mcs=replace(cfg.mcs, thresholds_db=thresholds))
    ues = list(range(1, args.ues + 1))
    with Progress(f"link {args.direction}", unit="frames") as bar:
        try:
            if args.direction == "down":
                report = broadcast(link, data, src=0, receivers=ues, object_id=1, cfg=cfg, progress=bar.update)
            else:
                objects = dict.fromkeys(ues, data)
                ids = {ue: ue for ue in ues}
                report = uplink(link, objects, dst=0, object_ids=ids, cfg=cfg, progress=bar.update)
            ok = True
        except TransferIncomplete as exc:
            print(f"testbed: link: {exc}", file=sys.stderr)
            report, ok = exc.report, False
    top_mcs = max(report.mcs_frames, key=report.mcs_frames.get)
    result: dict[str, Any] = {
        "backend": args.backend,
        "direction": args.direction,
        "object_bytes": len(data),
        "ues": args.ues,
        "loss": args.loss,
        "sample_rate_hz": phy.sample_rate_hz,
        "complete": ok,
        "main_mcs": top_mcs,
        "phy_bit_rate_bps": phy_bit_rate_bps(phy, top_mcs),
        "goodput_over_phy_rate": report.goodput_bps / phy_bit_rate_bps(phy, top_mcs),
        **report.summary(),
    }
    emit(result, as_json=args.json, human=_human)
    return 0 if ok else 1


def _make_link(args: argparse.Namespace, snrs: list[float], rng: Any) -> tuple[Any, Any]:
    """The PHY numerology and the frame link for the chosen backend."""
    from testbed.errors import ConfigError
    from testbed.phy import PhyConfig

    if args.backend != "sim" and (args.cfo_hz or args.delay_spread):
        raise ConfigError(f"--cfo-hz and --delay-spread apply to the sim backend only, not {args.backend}")
    if args.backend in ("loopback", "hub"):
        if args.loss:
            raise ConfigError("--loss is injected by the sim and model backends; a radio scenario sets its own")
        return _radio_link(args)
    phy = PhyConfig()
    if args.backend == "model":
        from testbed.link.abstraction import load_per_table
        from testbed.link.framelink import ModelFrameLink

        pairs = [(0, ue) for ue in range(1, args.ues + 1)] + [(ue, 0) for ue in range(1, args.ues + 1)]
        snr_map = {p: snrs[max(p) - 1] for p in pairs}
        table = load_per_table(phy=phy)  # frames lost as the real receiver loses them at each link's SNR
        return phy, ModelFrameLink(phy, rng, loss=args.loss, snr_db=snr_map, per_table=table)
    from testbed.link.medium import SimulatedMedium, star_links
    from testbed.link.phylink import PhyFrameLink
    from testbed.phy import OfdmModem

    links = star_links(phy.occupied_fraction, phy.sample_rate_hz, snrs, rng, cfo_hz=args.cfo_hz,
                       rms_delay_spread_samples=args.delay_spread)  # fmt: skip
    return phy, PhyFrameLink(OfdmModem(phy), SimulatedMedium(phy.sample_rate_hz, links, rng, frame_loss=args.loss))


def _radio_link(args: argparse.Namespace) -> tuple[Any, Any]:
    """Link over testbed.radio radios, one per scenario node this process drives (every node of the air);
    the modem runs at the scenario's sample rate."""
    from testbed.errors import ConfigError
    from testbed.link.phylink import PhyFrameLink
    from testbed.link.radiomedium import RadioMedium
    from testbed.phy import OfdmModem, PhyConfig
    from testbed.radio.base import RadioConfig
    from testbed.radio.scenario import load_scenario

    if args.scenario is None or (args.backend == "hub" and not args.endpoint):
        raise ConfigError("--backend loopback needs --scenario FILE; --backend hub needs --scenario and --endpoint")
    sc = load_scenario(args.scenario)
    if len(sc.nodes) < args.ues + 1:
        raise ConfigError(f"scenario {args.scenario} has {len(sc.nodes)} nodes; --ues {args.ues} needs a BS and "
                          f"{args.ues} UEs")  # fmt: skip
    if args.backend == "loopback":
        from testbed.radio.air import Air
        from testbed.radio.loopback import LoopbackRadio

        air = Air(sc)
        radios = {i: LoopbackRadio(air, spec.id) for i, spec in enumerate(sc.nodes)}
    else:
        from testbed.radio.hub_client import HubRadio

        radios = {i: HubRadio(args.endpoint, spec.id) for i, spec in enumerate(sc.nodes)}
    for i, spec in enumerate(sc.nodes):
        radios[i].configure(RadioConfig(center_freq_hz=sc.center_freq_hz, sample_rate_hz=sc.sample_rate_hz,
                                        tx_power_dbm=spec.tx_power_dbm, rx_gain_db=0.0))  # fmt: skip
    phy = PhyConfig(sample_rate_hz=sc.sample_rate_hz)
    return phy, PhyFrameLink(OfdmModem(phy), RadioMedium(radios, parallel_receive=args.backend == "hub"))


def _human(r: dict[str, Any]) -> str:
    lines = [
        f"{r['direction']}link of {r['object_bytes']} bytes, {r['ues']} UE(s), backend {r['backend']}, "
        f"injected loss {r['loss']:.1%}: {'complete' if r['complete'] else 'INCOMPLETE'}",
        f"airtime {r['airtime_s']:.3f} s ({r['window_samples']} samples, {r['burst_samples']} in bursts) at "
        f"{r['sample_rate_hz'] / 1e6:g} MS/s",
        f"goodput {r['goodput_bps'] / 1e6:.3f} Mbit/s = {r['goodput_over_phy_rate']:.1%} of the "
        f"{r['main_mcs']} PHY rate {r['phy_bit_rate_bps'] / 1e6:.3f} Mbit/s",
        f"frames: {r['frames_sent']} sent, {r['frames_resent']} resent, {r['frames_lost']} lost at receivers, "
        f"{r['repair_rounds']} repair rounds, {r['nacks_sent']} NACKs, {r['acks_sent']} acknowledgements; MCS use "
        f"{r['mcs_frames']}",
        "",
    ]
    ok = {(d["src"], d["dst"]): d["ok"] for d in r["deliveries"]}
    rows = [[c["tx_node"], c["rx_node"], c["snr_db"], c["cfo_hz"], c["frame_success"], ok.get((c["tx_node"],
             c["rx_node"]))] for c in r["channel"]]  # fmt: skip
    return "\n".join(lines) + format_table(["tx", "rx", "SNR dB", "CFO Hz", "frames ok", "delivered"], rows)
