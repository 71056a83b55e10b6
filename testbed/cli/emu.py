"""``testbed emu [SCENARIO.toml]``: one virtual Pluto per scenario node; prints their URIs, serves until stopped."""

from __future__ import annotations

import argparse
import logging

from testbed.cli._output import add_json_flag, emit, format_table

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from testbed.cli.radio import SHIPPED_SCENARIO

    parser = subparsers.add_parser(
        "emu",
        help="virtual ADALM-Plutos (libiio's network protocol) on the hub's simulated air, one per node",
        description="Serve one virtual Pluto per node of a scenario. pyadi-iio, iio_info and `--backend pluto` "
        "reach them at the printed URIs (with --json: one object {'uris': {node: uri}, ...}). Time advances by "
        "the samples the boards read, so runs repeat; --realtime paces them to the wall clock. Stops on "
        "SIGINT/SIGTERM. See docs/virtual-pluto.md.",
    )
    parser.add_argument("scenario", nargs="?", default=str(SHIPPED_SCENARIO),
                        help="scenario TOML (default: firmware_cfg/nodes/scenario.toml)")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=0,
                        help="first port (consecutive per node); 0: any free port each (default)")  # fmt: skip
    parser.add_argument("--address-per-node", action="store_true",
                        help="node k on 127.0.0.(k+2) at libiio's port 30431 (URIs without a port)")  # fmt: skip
    parser.add_argument("--realtime", action="store_true", help="pace every board to the wall clock")
    parser.add_argument("--rf-cable-db", type=float, default=None,
                        help="cable each board's TX to its own RX with this loss (hw_tests --rf-loopback)")  # fmt: skip
    add_json_flag(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from testbed import emu
    from testbed.errors import ConfigError
    from testbed.node.runtime import stop_on_signals
    from testbed.radio.scenario import load_scenario

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a TCP port (0..65535)")
    if args.rf_cable_db is not None and not 0.0 <= args.rf_cable_db <= 200.0:
        raise ConfigError(f"--rf-cable-db {args.rf_cable_db:g} must be 0..200 dB (the lab uses >= 30)")
    scenario = load_scenario(args.scenario)
    stop = stop_on_signals()
    with emu.start(scenario, args.host, args.port, args.address_per_node, args.realtime,
                   rf_cable_db=args.rf_cable_db) as running:  # fmt: skip
        emit(
            {"uris": running.uris, "scenario": args.scenario, "seed": scenario.seed, "realtime": args.realtime},
            as_json=args.json,
            human=lambda r: format_table(["node", "uri"], [[k, v] for k, v in r["uris"].items()]),
        )
        stop.wait()
        log.warning("virtual Plutos stopped: %d samples delivered", running.medium.air.delivered_samples)
    return 0
