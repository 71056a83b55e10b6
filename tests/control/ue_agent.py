"""A minimal UE agent process for the liveness tests: registers, heartbeats, answers ROUND_START.

Run as ``python ue_agent.py ENDPOINT UE_ID SECRET_KEY_FILE BS_PUBLIC_KEY_FILE HEARTBEAT_S`` until killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from testbed.control.client import ControlClient
from testbed.control.config import ClientConfig
from testbed.control.protocol import UplinkDone
from testbed.control.security import CurveClientKeys


def main(endpoint: str, ue_id: str, secret: str, bs_public: str, heartbeat_s: str) -> None:
    hb = float(heartbeat_s)
    config = ClientConfig(
        ue_id, endpoint, heartbeat_interval_s=hb, retry_initial_s=hb, retry_max_s=4 * hb, reconnect_ivl_s=hb
    )
    with ControlClient(config, CurveClientKeys.from_files(Path(secret), Path(bs_public))) as client:
        while True:
            for event in client.poll():
                if event.message is not None and event.message.type == "ROUND_START":
                    client.send(UplinkDone(7, 3, 3000, 0.01, 0.2))


if __name__ == "__main__":
    main(*sys.argv[1:])
