#!/usr/bin/env python3
"""Read a Pluto's firmware version and settings and check them against the lab's expectations.

    python firmware_cfg/check_pluto.py --uri ip:192.168.2.1 [--expect-ad9364] [--min-firmware v0.32]

Prints one JSON object (device, firmware, ranges, current settings, problems, crystal note) and exits 0
when the board is fit for the lab, 1 when a problem was found, 2 when the board cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys

from testbed.errors import TestbedError
from testbed.radio.firmware import MIN_FIRMWARE, check_pluto, parse_version, xo_note
from testbed.radio.pluto import PlutoRadio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True, help="ip:ADDRESS or usb:BUS.DEV.IF (never scanned)")
    parser.add_argument("--expect-ad9364", action="store_true", help="the board must be in AD9364 mode")
    parser.add_argument("--min-firmware", default=f"v{MIN_FIRMWARE[0]}.{MIN_FIRMWARE[1]}")
    args = parser.parse_args()
    minimum = parse_version(args.min_firmware)
    if minimum is None:
        parser.error(f"--min-firmware {args.min_firmware!r} is not of the form v0.32")
    try:
        with PlutoRadio(args.uri) as radio:
            info = radio.probe()
    except TestbedError as exc:
        print(f"check_pluto: {exc}", file=sys.stderr)
        return 2
    info["problems"] = check_pluto(info, min_firmware=minimum, expect_ad9364=args.expect_ad9364)
    info["crystal"] = xo_note(info)
    print(json.dumps(info, indent=2))
    return 1 if info["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
