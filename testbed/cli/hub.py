"""``testbed hub --scenario FILE``: run the virtual-RF hub that hub-backend radios connect to."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from testbed.cli._output import add_json_flag, emit

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hub",
        help="run the virtual-RF hub (multi-node simulated air over ZeroMQ)",
        description="Serve a virtual air to hub-backend radios. Prints the bound endpoint once ready (with "
        "--json: one object {'endpoint': ...}); stops on SIGINT/SIGTERM.",
    )
    parser.add_argument("--scenario", required=True, help="scenario TOML (nodes, positions, crystals, noise, seed)")
    parser.add_argument(
        "--endpoint",
        default="tcp://127.0.0.1:*",
        help="where to bind: tcp://127.0.0.1:PORT (* = any free port) or ipc://PATH (default: %(default)s)",
    )
    add_json_flag(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from testbed.radio.hub_server import HubServer
    from testbed.radio.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    hub = HubServer(scenario, args.endpoint)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    emit(
        {"endpoint": hub.endpoint, "nodes": scenario.node_ids, "seed": scenario.seed},
        as_json=args.json,
        human=lambda r: f"hub listening on {r['endpoint']} for nodes {', '.join(r['nodes'])} (seed {r['seed']})",
    )
    try:
        hub.serve(stop)
    finally:
        hub.close()
        log.warning(
            "hub stopped: %d samples delivered, %d requests refused", hub.air.delivered_samples, hub.errors_sent
        )
    return 0
