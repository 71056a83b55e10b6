"""``testbed radio probe`` (what a Pluto is and can do), ``testbed radio txrx`` (OFDM frames from one
radio to another on any backend: PER, SNR, CFO; optionally recorded to SigMF) and ``testbed radio replay``
(the frames of a SigMF recording, testbed/cli/_replay.py)."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testbed.cli import _replay
from testbed.cli._output import Progress, add_json_flag, emit, format_table
from testbed.errors import ConfigError

CHUNK_SAMPLES = 16384
BACKENDS = ("pluto", "hub", "loopback")
DEFAULT_TX_NODE, DEFAULT_RX_NODE = "bs", "ue-1"  # the node ids of firmware_cfg/nodes/scenario.toml
SHIPPED_SCENARIO = Path(__file__).resolve().parents[2] / "firmware_cfg" / "nodes" / "scenario.toml"  # the hub's
#: Radio settings only the Pluto backend takes from the command line: (flag, default, unit).
PLUTO_SETTINGS = (
    ("--center-freq-hz", 2.4e9, "Hz"),
    ("--sample-rate-hz", 2.5e6, "Hz"),
    ("--tx-power-dbm", -10.0, "dBm"),
)
#: Which backends honour each backend-specific option; any other backend refuses it (never ignored).
HONOURED_BY = {
    "tx_uri": ("pluto",),
    "rx_uri": ("pluto",),
    "endpoint": ("hub",),
    "scenario": ("hub", "loopback"),
    "tx_node": ("hub", "loopback"),
    "rx_node": ("hub", "loopback"),
    **{flag[2:].replace("-", "_"): ("pluto",) for flag, _, _ in PLUTO_SETTINGS},
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("radio", help="radio backends: probe a Pluto, send OFDM frames between radios")
    sub = parser.add_subparsers(dest="radio_command", metavar="RADIO_COMMAND")
    sub.required = True

    probe = sub.add_parser("probe", help="device, firmware and ranges of one Pluto")
    probe.add_argument("--uri", required=True, help="e.g. ip:192.168.2.1, usb:1.2.5 or xml:pluto.xml (never scanned)")
    add_json_flag(probe)
    probe.set_defaults(func=_probe)

    txrx = sub.add_parser(
        "txrx",
        help="send OFDM frames from one radio, report PER, SNR and CFO at another",
        description="Backends: pluto (--tx-uri, --rx-uri), hub (--endpoint of `testbed hub`, --tx-node, "
        "--rx-node; other live nodes must keep receiving and a node not yet joined must not hold the clock: "
        "use a two-node scenario or wait_for_all_nodes = false), loopback (in-process, --scenario). The hub "
        "and loopback backends take carrier, rate and TX power from the scenario (the hub tells its own).",
    )
    txrx.add_argument("--backend", choices=BACKENDS, default="loopback",
                      help="which radios carry the frames (default %(default)s: an in-process demo)")  # fmt: skip
    txrx.add_argument("--tx-uri", help="pluto: transmitting board")
    txrx.add_argument("--rx-uri", help="pluto: receiving board")
    txrx.add_argument("--endpoint", help="hub: the hub's endpoint (tcp://127.0.0.1:PORT or ipc://PATH)")
    txrx.add_argument(
        "--scenario",
        help="loopback: scenario TOML (default: firmware_cfg/nodes/scenario.toml, the one the hub and the daemons "
        "ship with); hub: optional, the hub is asked when it is omitted",
    )
    txrx.add_argument("--tx-node", help=f"hub/loopback: transmitting node id (default {DEFAULT_TX_NODE})")
    txrx.add_argument(
        "--rx-node", help=f"hub/loopback: receiving node id (default {DEFAULT_RX_NODE}, as in firmware_cfg/nodes/)"
    )
    txrx.add_argument("--frames", type=int, default=20, help="frames to send (default %(default)s)")
    txrx.add_argument("--payload-bytes", type=int, default=200, help="payload per frame (default %(default)s)")
    txrx.add_argument("--mcs", default="qpsk-1/2", help="modulation and code rate (default %(default)s)")
    txrx.add_argument("--gap-samples", type=int, default=2000, help="silence between bursts")
    for flag, default, unit in PLUTO_SETTINGS:
        txrx.add_argument(flag, type=float, help=f"pluto only (default {default:g} {unit}; hub and loopback take it "
                          "from the scenario)")  # fmt: skip
    txrx.add_argument("--rx-gain-db", type=float, default=30.0, help="receiver gain (default %(default)s dB)")
    txrx.add_argument("--rx-gain-mode", default="manual", help="manual | slow_attack | fast_attack | hybrid")
    txrx.add_argument("--seed", type=int, default=0, help="payload generator seed")
    txrx.add_argument("--record", help="record the receiver to SigMF files with this path stem")
    add_json_flag(txrx)
    txrx.set_defaults(func=_txrx)
    _replay.add_parser(sub)


def _probe(args: argparse.Namespace) -> int:
    from testbed.radio.pluto import PlutoRadio

    with PlutoRadio(args.uri) as radio:
        info = radio.probe()

    def human(r: dict[str, Any]) -> str:
        rows = [[k, str(v)] for k, v in r.items() if k != "current"]
        rows += [[f"current.{k}", str(v)] for k, v in r["current"].items()]
        return format_table(["field", "value"], rows)

    emit(info, as_json=args.json, human=human)
    return 0


def _check_backend_options(args: argparse.Namespace) -> None:
    """Refuse an option the chosen backend would ignore, and fill in the defaults of those it takes."""
    for dest, backends in HONOURED_BY.items():
        if getattr(args, dest) is not None and args.backend not in backends:
            flag = "--" + dest.replace("_", "-")
            raise ConfigError(f"{flag} applies to --backend {' or '.join(backends)}, not {args.backend}; drop it")
    if args.backend != "pluto":
        args.tx_node, args.rx_node = args.tx_node or DEFAULT_TX_NODE, args.rx_node or DEFAULT_RX_NODE
    for flag, default, _unit in PLUTO_SETTINGS:
        dest = flag[2:].replace("-", "_")
        if getattr(args, dest) is None:
            setattr(args, dest, default)


def _radios(args: argparse.Namespace) -> tuple[Any, Any, Any, bool]:
    """(tx radio, rx radio, RadioConfig for both, run tx and rx concurrently?)."""
    from testbed.radio.base import RadioConfig

    _check_backend_options(args)
    cfg = RadioConfig(
        center_freq_hz=args.center_freq_hz,
        sample_rate_hz=args.sample_rate_hz,
        tx_power_dbm=args.tx_power_dbm,
        rx_gain_mode=args.rx_gain_mode,
        rx_gain_db=args.rx_gain_db,
    )
    if args.backend == "pluto":
        from testbed.radio.pluto import PlutoRadio

        if not (args.tx_uri and args.rx_uri):
            raise ConfigError("--backend pluto needs --tx-uri and --rx-uri (two boards, cabled through attenuators)")
        return PlutoRadio(args.tx_uri), PlutoRadio(args.rx_uri), cfg, True
    sc = None
    if args.backend == "loopback" and not args.scenario and SHIPPED_SCENARIO.exists():
        args.scenario = str(SHIPPED_SCENARIO)
    if args.scenario:
        from testbed.radio.scenario import load_scenario

        sc = load_scenario(args.scenario)
        cfg = cfg.with_(
            center_freq_hz=sc.center_freq_hz,
            sample_rate_hz=sc.sample_rate_hz,
            tx_power_dbm=sc.node(args.tx_node).tx_power_dbm,
        )
    if args.backend == "hub":
        from testbed.radio.hub_client import HubRadio

        if not args.endpoint:
            raise ConfigError("--backend hub needs --endpoint (printed by `testbed hub --scenario FILE`)")
        tx, rx = HubRadio(args.endpoint, args.tx_node), HubRadio(args.endpoint, args.rx_node)
        if sc is None:
            try:
                info = tx.query()
            except BaseException:
                tx.close()
                rx.close()
                raise
            cfg = cfg.with_(
                center_freq_hz=info.center_freq_hz,
                sample_rate_hz=info.sample_rate_hz,
                tx_power_dbm=info.tx_power_dbm.get(args.tx_node, cfg.tx_power_dbm),  # an unknown id: Hello says so
            )
        return tx, rx, cfg, True
    from testbed.radio.air import Air
    from testbed.radio.loopback import LoopbackRadio

    if sc is None:
        raise ConfigError("--backend loopback needs --scenario FILE (node positions, crystals, noise floor)")
    air = Air(sc)
    return LoopbackRadio(air, args.tx_node), LoopbackRadio(air, args.rx_node), cfg, False


def _receive_all(radio: Any, total: int, progress: Callable[[int], None] = lambda _n: None) -> list[Any]:
    blocks = []
    for pos in range(0, total, CHUNK_SAMPLES):
        blocks.append(radio.receive(min(CHUNK_SAMPLES, total - pos)))
        progress(len(blocks[-1].iq))
    return blocks


def _txrx(args: argparse.Namespace) -> int:
    import numpy as np

    from testbed.phy import OfdmModem, PhyConfig
    from testbed.radio.sigmf_io import RecordingRadio

    if not 1 <= args.frames <= 65_535 or args.gap_samples < 0:
        raise ConfigError(f"--frames must be 1..65535 and --gap-samples >= 0, got {args.frames}, {args.gap_samples}")
    tx, rx, cfg, concurrent = _radios(args)
    if args.record:
        hardware = _hardware(rx)
        rx = RecordingRadio(
            rx, args.record, hw=f"{args.backend} {args.rx_uri or args.rx_node}", description="txrx", hardware=hardware
        )
    phy = PhyConfig(sample_rate_hz=cfg.sample_rate_hz)
    modem = OfdmModem(phy)
    rng = np.random.default_rng(args.seed)
    payloads = [rng.integers(0, 256, args.payload_bytes, dtype=np.uint8).tobytes() for _ in range(args.frames)]
    slot = modem.burst_num_samples(args.payload_bytes, args.mcs) + args.gap_samples
    lead = max(1, args.gap_samples)  # silence received before the first burst; it also gives the clock origin
    total = lead + args.frames * slot
    if args.backend == "pluto":
        total += int(0.2 * cfg.sample_rate_hz)  # two boards start at different moments: listen longer
    with tx, rx:
        tx.configure(cfg)
        rx.configure(cfg)

        def send() -> None:
            try:
                # burst times on the transmitter's own clock, which need not start at 0 (a hub air that runs)
                origin = tx.receive(lead).end_sample
                for k, payload in enumerate(payloads):
                    tx.transmit(modem.modulate(payload, args.mcs, stream_id=0, seq=k), at_sample=origin + k * slot)
                _receive_all(tx, total - lead)  # moves the transmitter's clock (hub), drains its buffers (pluto)
            except BaseException:
                tx.close()  # a hub no longer waits for this node, so the receiver ends and the cause is reported
                raise

        with Progress(f"radio txrx {args.backend}", total, unit="samples") as bar:
            if concurrent:
                errors: list[BaseException] = []
                thread = threading.Thread(target=lambda: _guard(send, errors), daemon=True)
                thread.start()
                blocks = _receive_all(rx, total, bar.update)
                thread.join()
                if errors:
                    raise errors[0]
            else:
                send()
                blocks = _receive_all(rx, total, bar.update)
        bar.note(f"demodulating {args.frames} frames")
        iq = np.concatenate([b.iq for b in blocks])
        frames = [f for f in modem.demodulate(iq) if f.stream_id == 0 and f.seq < args.frames]
        if args.record:
            half_band_hz = phy.occupied_bandwidth_hz / 2
            for f in frames:
                centre_hz = cfg.center_freq_hz + f.cfo_hz  # where the frame's band sits as received
                rx.annotate(
                    blocks[0].start_sample + f.start,
                    slot - args.gap_samples,
                    f"frame {f.seq}",
                    freq_edges_hz=(centre_hz - half_band_hz, centre_hz + half_band_hz),
                    snr_db=f.snr_db,
                    cfo_hz=f.cfo_hz,
                    crc_ok=f.crc_ok,
                )
    good = {f.seq for f in frames if f.crc_ok and f.payload == payloads[f.seq]}
    result = {
        "backend": args.backend,
        "frames_sent": args.frames,
        "frames_ok": len(good),
        **_replay.summary(frames, len(good), args.frames),
        "overflow": any(b.overflow for b in blocks),
        "record": args.record,
    }
    emit(
        result,
        as_json=args.json,
        human=lambda r: format_table(["field", "value"], [[k, v] for k, v in r.items()]),
    )
    return 0


def _hardware(radio: Any) -> dict[str, str]:
    """The receiver's identity for a recording's metadata: a Pluto's context attributes (model, serial,
    firmware), the backend and node otherwise."""
    from testbed.radio.pluto import PlutoRadio

    if isinstance(radio, PlutoRadio):
        attrs = radio.context_attrs()
        return {"uri": radio.uri, **{k: attrs[k] for k in ("hw_model", "hw_serial", "fw_version") if k in attrs}}
    return {"backend": type(radio).__name__, **({"node": radio.node_id} if hasattr(radio, "node_id") else {})}


def _guard(fn: Any, errors: list[BaseException]) -> None:
    try:
        fn()
    except BaseException as exc:  # re-raised in the main thread
        errors.append(exc)
