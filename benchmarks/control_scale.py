"""Control-plane overhead at scale: one BS and many UE agents run rounds of ROUND_START to all, UPLINK_DONE
from all, ROUND_END to all, over CURVE-encrypted ZeroMQ on 127.0.0.1.

Usage: python benchmarks/control_scale.py [--ues 100] [--rounds 10] [--heartbeat-s 1.0] [--plaintext] [--json]

Each UE is a ControlClient in its own thread (as separate agent processes would be, but sharing this
process's GIL, which makes the figure pessimistic) that answers ROUND_START with UPLINK_DONE at once, so a
round's time is pure control overhead: no training, no radio. Per round we time, on the wall clock,
``start_round`` until the BS has every UPLINK_DONE (``collect_s``) and until every UE has its ROUND_END
(``round_s``); heartbeats keep running meanwhile. Target: median ``round_s`` < 200 ms at 100 UEs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from testbed.cli._output import add_json_flag, emit, format_table
from testbed.control.client import ControlClient
from testbed.control.config import ClientConfig, ServerConfig
from testbed.control.protocol import UplinkDone
from testbed.control.security import CurveClientKeys, CurveServerKeys, Plaintext, generate_keypair
from testbed.control.server import ControlServer

TARGET_ROUND_S = 0.2
DIGEST = bytes(32)
WAIT_S = 60.0


class Agents:
    """UE clients, one thread each; counts ROUND_END receipts so the BS side can tell when a round is over."""

    def __init__(self, configs: list[ClientConfig], securities: list[Any], context: zmq.Context) -> None:
        self.round_ends = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(c, s, context), daemon=True)
            for c, s in zip(configs, securities, strict=True)
        ]
        for t in self._threads:
            t.start()

    def _run(self, config: ClientConfig, security: Any, context: zmq.Context) -> None:
        try:
            with ControlClient(config, security, context) as client:
                while not self._stop.is_set():
                    for event in client.poll(0.2):
                        msg = event.message
                        if msg is None:
                            continue
                        if msg.type == "ROUND_START":
                            client.send(UplinkDone(msg.round, 1, 1000, 0.0, 0.0))
                        elif msg.type == "ROUND_END":
                            with self._lock:
                                self.round_ends += 1
                                self._lock.notify_all()
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            self.errors.append(exc)

    def wait_round_ends(self, count: int, server: ControlServer) -> None:
        end = time.monotonic() + WAIT_S
        while True:
            with self._lock:
                if self.round_ends >= count:
                    return
            if time.monotonic() > end:
                raise RuntimeError(f"only {self.round_ends} of {count} ROUND_END arrived in {WAIT_S} s")
            server.poll(0.001)  # keep answering heartbeats while we wait

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=WAIT_S)


def poll_until(server: ControlServer, kind: str, count: int) -> None:
    seen, end = 0, time.monotonic() + WAIT_S
    while seen < count:
        if time.monotonic() > end:
            raise RuntimeError(f"saw {seen} of {count} {kind} events in {WAIT_S} s")
        seen += sum(e.kind == kind for e in server.poll(0.05))


def run(num_ues: int, rounds: int, heartbeat_s: float, plaintext: bool) -> dict[str, Any]:
    ue_ids = [f"ue-{i:03d}" for i in range(num_ues)]
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp)
        bs = generate_keypair(keys / "bs", "bs")
        for ue in ue_ids:
            generate_keypair(keys / "ues", ue)
        server_security = Plaintext() if plaintext else CurveServerKeys.from_files(bs.secret_file, keys / "ues")
        client_security = [
            Plaintext() if plaintext else CurveClientKeys.from_files(keys / "ues" / f"{ue}.key_secret", bs.public_file)
            for ue in ue_ids
        ]
        context = zmq.Context(io_threads=2)
        server = ControlServer(ServerConfig(heartbeat_interval_s=heartbeat_s), server_security)
        agents = None
        try:
            t0 = time.perf_counter()
            configs = [ClientConfig(ue, server.endpoint, heartbeat_interval_s=heartbeat_s) for ue in ue_ids]
            agents = Agents(configs, client_security, context)
            poll_until(server, "joined", num_ues)
            register_s = time.perf_counter() - t0
            collect, total = [], []
            for r in range(rounds):
                t0 = time.perf_counter()
                events = server.start_round(DIGEST, 1_000_000, deadline_s=30.0)
                if not any(e.kind == "round_complete" for e in events):
                    poll_until(server, "round_complete", 1)
                collect.append(time.perf_counter() - t0)
                server.end_round()
                agents.wait_round_ends((r + 1) * num_ues, server)
                total.append(time.perf_counter() - t0)
            if agents.errors:
                raise RuntimeError(f"{len(agents.errors)} agents failed: {agents.errors[0]!r}")
            rejections = sum(server.rejections.values())
        finally:
            if agents is not None:
                agents.stop()
            server.close(say_bye=False)
            context.term()
    return {
        "num_ues": num_ues,
        "rounds": rounds,
        "security": "plaintext" if plaintext else "curve",
        "heartbeat_interval_s": heartbeat_s,
        "register_all_s": register_s,
        "collect_median_s": statistics.median(collect),
        "round_median_s": statistics.median(total),
        "round_max_s": max(total),
        "round_s": total,
        "target_round_s": TARGET_ROUND_S,
        "meets_target": statistics.median(total) < TARGET_ROUND_S,
        "rejections": rejections,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ues", type=int, default=100, help="number of UE agents")
    parser.add_argument("--rounds", type=int, default=10, help="control rounds to time")
    parser.add_argument("--heartbeat-s", type=float, default=1.0, help="heartbeat interval (s)")
    parser.add_argument("--plaintext", action="store_true", help="no CURVE (for comparison only)")
    add_json_flag(parser)
    args = parser.parse_args()
    result = run(args.ues, args.rounds, args.heartbeat_s, args.plaintext)

    def human(r: dict[str, Any]) -> str:
        rows = [[i + 1, 1e3 * s] for i, s in enumerate(r["round_s"])]
        return (
            f"{r['num_ues']} UEs, {r['security']}, heartbeat {r['heartbeat_interval_s']} s; "
            f"all registered in {r['register_all_s']:.2f} s\n"
            + format_table(["round", "ROUND_START..ROUND_END (ms)"], rows)
            + f"\nmedian {1e3 * r['round_median_s']:.1f} ms (UPLINK_DONE from all after "
            f"{1e3 * r['collect_median_s']:.1f} ms), max {1e3 * r['round_max_s']:.1f} ms; "
            f"target < {1e3 * r['target_round_s']:.0f} ms: {'met' if r['meets_target'] else 'MISSED'}"
        )

    emit(result, as_json=args.json, human=human)


if __name__ == "__main__":
    main()
