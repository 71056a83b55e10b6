"""The TX power step as the BS hears it on the virtual-RF hub: a UE's frames at each power, SNR per frame.

A hub (``HubServer``, in a thread of this process) serves a BS and a UE 20 m apart (the multi-process tests'
geometry, about 25 dB SNR at 0 dBm); both are ``HubRadio`` clients driven window by window through the link's
``PhyFrameLink`` (the real modem and receiver). For each power the UE's radio is set with
``Radio.set_tx_power`` (the call the UE's radio pump makes for ASSIGN) and sends ``--frames`` 1024-byte
qpsk-1/2 frames; the BS's receiver reports each frame's SNR. Prints, per power, the applied power, the mean
heard SNR (dB of the mean linear SNR, as the BS's channel tracker takes it), its step from 0 dBm, the
spread over frames and how many frames passed the CRC.

    python benchmarks/tx_power_step.py [--powers 0 -3 -10 -20] [--frames 20] [--seed 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import threading
from typing import Any

import numpy as np

from testbed.link.framelink import TxFrame
from testbed.link.phylink import PhyFrameLink
from testbed.link.radiomedium import RadioMedium
from testbed.phy import OfdmModem, PhyConfig
from testbed.radio.base import RadioConfig
from testbed.radio.hub_client import HubRadio
from testbed.radio.hub_server import HubServer
from testbed.radio.scenario import scenario_from_dict

SAMPLE_RATE_HZ = 1e6
FRAME_BYTES = 1024
MCS = "qpsk-1/2"


def measure(powers_dbm: list[float], frames: int, seed: int) -> list[dict[str, Any]]:
    scenario = scenario_from_dict({
        "seed": seed, "sample_rate_hz": SAMPLE_RATE_HZ, "noise_floor_dbm": -90.0, "wait_for_all_nodes": False,
        "nodes": [{"id": "bs", "position_m": [0.0, 0.0]},
                  {"id": "ue", "position_m": [20.0, 0.0], "crystal_ppm": 2.0}],
    })  # fmt: skip
    hub, stop = HubServer(scenario, "tcp://127.0.0.1:*"), threading.Event()
    serving = threading.Thread(target=hub.serve, args=(stop,), daemon=True)
    serving.start()
    radios = {0: HubRadio(hub.endpoint, "bs"), 1: HubRadio(hub.endpoint, "ue")}
    try:
        for r in radios.values():
            r.configure(RadioConfig(sample_rate_hz=SAMPLE_RATE_HZ, tx_power_dbm=0.0, rx_gain_db=0.0))
        phy = PhyConfig(sample_rate_hz=SAMPLE_RATE_HZ)
        link = PhyFrameLink(OfdmModem(phy), RadioMedium(radios, parallel_receive=True))
        burst = link.burst_num_samples(FRAME_BYTES, MCS)
        rng = np.random.default_rng(seed)
        rows = []
        for power in powers_dbm:
            applied = radios[1].set_tx_power(power)
            snrs, ok = [], 0
            for i in range(frames):
                frame = TxFrame(1, 200, rng.bytes(FRAME_BYTES), MCS, stream_id=1, seq=i)
                heard = link.exchange([frame], [0], burst + 600).heard[0]
                snrs += [h.snr_db for h in heard]
                ok += sum(h.payload is not None for h in heard)
            mean_db = 10 * math.log10(float(np.mean(10 ** (np.asarray(snrs) / 10))))
            rows.append({"set_dbm": power, "applied_dbm": applied, "heard_snr_db": mean_db,
                         "snr_std_db": float(np.std(snrs)), "frames_heard": len(snrs), "crc_ok": ok})  # fmt: skip
        for row in rows:
            row["step_db"] = row["heard_snr_db"] - rows[0]["heard_snr_db"]
        return rows
    finally:
        for r in radios.values():
            r.close()
        stop.set()
        serving.join(5)
        hub.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--powers", type=float, nargs="+", default=[0.0, -3.0, -10.0, -20.0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    rows = measure(args.powers, args.frames, args.seed)
    if args.json:
        print(json.dumps({"frames": args.frames, "seed": args.seed, "mcs": MCS, "rows": rows}))
        return
    print(f"{'set dBm':>8} {'applied':>8} {'heard SNR dB':>13} {'step dB':>8} {'std dB':>7} {'CRC ok':>7}")
    for r in rows:
        print(f"{r['set_dbm']:8.2f} {r['applied_dbm']:8.2f} {r['heard_snr_db']:13.2f} {r['step_db']:8.2f} "
              f"{r['snr_std_db']:7.2f} {r['crc_ok']:4d}/{r['frames_heard']}")  # fmt: skip


if __name__ == "__main__":
    main()
