"""Checks of a Pluto's firmware and settings against what the lab expects (firmware_cfg/README.md).

``check_pluto(info, ...)`` takes ``PlutoRadio.probe()`` output and returns the problems found (empty: OK),
so the same rules serve the lab script (firmware_cfg/check_pluto.py), the hardware tests and CI.
"""

from __future__ import annotations

import re
from typing import Any

NOMINAL_XO_HZ = 40_000_000  # Pluto reference oscillator; xo_correction holds the measured value
MIN_FIRMWARE = (0, 32)  # the `fw_setenv compatible` / `mode` variables of firmware_cfg/README.md
AD9364_LO_RANGE_HZ = (70e6, 6e9)  # AD9364 datasheet tuning range


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """``"v0.38"`` -> (0, 38); None when absent or unparseable."""
    m = re.match(r"^v?(\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_pluto(
    info: dict[str, Any], min_firmware: tuple[int, int] = MIN_FIRMWARE, expect_ad9364: bool = False
) -> list[str]:
    """Problems with this board for the lab: old firmware, not a Pluto, AD9364 mode missing when asked."""
    problems = []
    version = parse_version(info.get("fw_version"))
    if version is None:
        problems.append(f"firmware version unreadable ({info.get('fw_version')!r}); update the firmware")
    elif version < min_firmware:
        problems.append(
            f"firmware {info['fw_version']} is older than v{min_firmware[0]}.{min_firmware[1]}; update it "
            "(firmware_cfg/README.md, 'Firmware')"
        )
    if "PlutoSDR" not in (info.get("hw_model") or ""):
        problems.append(f"hw_model {info.get('hw_model')!r} is not an ADALM-Pluto")
    lo_low, lo_high = info.get("lo_range_hz") or (0.0, 0.0)
    if expect_ad9364 and (lo_low > AD9364_LO_RANGE_HZ[0] or lo_high < AD9364_LO_RANGE_HZ[1]):
        problems.append(
            f"LO range {lo_low:g}..{lo_high:g} Hz: the board is not in AD9364 mode "
            "(firmware_cfg/README.md, 'AD9364 mode')"
        )
    return problems


def xo_note(info: dict[str, Any]) -> str:
    """A remark on the crystal calibration (informational: an uncalibrated board still works, with more CFO)."""
    xo = info.get("xo_correction_hz")
    if xo is None:
        return "xo_correction not reported by this firmware"
    if str(xo).strip() in ("", str(NOMINAL_XO_HZ)):
        return "xo_correction is the nominal 40 MHz: crystal not calibrated (expect up to +-25 ppm CFO)"
    return f"xo_correction = {xo} Hz (calibrated)"
