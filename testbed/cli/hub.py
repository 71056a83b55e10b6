"""``testbed hub --scenario FILE``: run the virtual-RF hub that hub-backend radios connect to, optionally
with a raw-IQ tap per node and SigMF captures (testbed/radio/hub_outputs.py)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testbed.cli._output import add_json_flag, emit
from testbed.errors import ConfigError

if TYPE_CHECKING:
    from testbed.radio.hub_outputs import HubOutputs

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hub",
        help="run the virtual-RF hub (multi-node simulated air over ZeroMQ)",
        description="Serve a virtual air to hub-backend radios. Prints the bound endpoint once ready (with "
        "--json: one object {'endpoint': ..., 'taps': {node: endpoint}, 'captures': {node: stem}}); stops on "
        "SIGINT/SIGTERM (captures get their metadata then).",
    )
    parser.add_argument("--scenario", required=True, help="scenario TOML (nodes, positions, crystals, noise, seed)")
    parser.add_argument(
        "--endpoint",
        default="tcp://127.0.0.1:*",
        help="where to bind: tcp://127.0.0.1:PORT (* = any free port) or ipc://PATH (default: %(default)s)",
    )
    parser.add_argument(
        "--tap",
        action="append",
        default=[],
        metavar="NODE=ENDPOINT",
        help="publish every block NODE receives on a ZeroMQ PUB socket at ENDPOINT (tcp://127.0.0.1:PORT, * = any "
        "free port, or ipc://PATH): raw complex64 messages for GNU Radio's ZMQ SUB Source; repeatable",
    )
    parser.add_argument("--tap-tx", action="append", default=[], metavar="NODE=ENDPOINT",
                        help="publish every burst NODE transmits (as sent, a message a burst); repeatable")  # fmt: skip
    parser.add_argument("--capture", action="append", default=[], metavar="NODE",
                        help="record what NODE receives to CAPTURE_DIR/NODE-rx.sigmf-*; repeatable")  # fmt: skip
    parser.add_argument("--capture-dir", help="directory for --capture's SigMF files")
    add_json_flag(parser)
    parser.set_defaults(func=_run)


def _outputs(args: argparse.Namespace) -> HubOutputs:
    from testbed.radio.hub_outputs import HubOutputs

    taps: dict[str, dict[str, str]] = {"--tap": {}, "--tap-tx": {}}
    for flag, items in (("--tap", args.tap), ("--tap-tx", args.tap_tx)):
        for item in items:
            node, sep, endpoint = item.partition("=")
            if not (sep and node and endpoint) or node in taps[flag]:
                raise ConfigError(
                    f"{flag} {item!r}: expected NODE=ENDPOINT, one per node (e.g. ue-1=tcp://127.0.0.1:5701)"
                )
            taps[flag][node] = endpoint
    if args.capture_dir is not None and not args.capture:
        raise ConfigError("--capture-dir needs at least one --capture NODE")
    capture_dir = Path(args.capture_dir) if args.capture_dir else None
    return HubOutputs(taps["--tap"], capture_dir, tuple(args.capture), taps["--tap-tx"])


def _run(args: argparse.Namespace) -> int:
    from testbed.radio.hub_server import HubServer
    from testbed.radio.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    hub = HubServer(scenario, args.endpoint, outputs=_outputs(args))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ready = {"endpoint": hub.endpoint, "nodes": scenario.node_ids, "seed": scenario.seed}
    outputs = hub.outputs
    ready |= {"taps": outputs.endpoints, "tx_taps": outputs.tx_endpoints, "captures": outputs.captures}

    def human(r: dict[str, Any]) -> str:
        lines = [f"hub listening on {r['endpoint']} for nodes {', '.join(r['nodes'])} (seed {r['seed']})"]
        lines += [f"tap of {node} on {ep}" for node, ep in r["taps"].items()]
        lines += [f"transmit tap of {node} on {ep}" for node, ep in r["tx_taps"].items()]
        lines += [f"capturing {node} to {stem}.sigmf-*" for node, stem in r["captures"].items()]
        return "\n".join(lines)

    emit(ready, as_json=args.json, human=human)
    try:
        hub.serve(stop)
    finally:
        hub.close()
        log.warning(
            "hub stopped: %d samples delivered, %d requests refused", hub.air.delivered_samples, hub.errors_sent
        )
    return 0
