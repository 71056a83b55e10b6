"""Per-board TX power calibration: which hardware gain gives a requested output power.

File format (TOML, example in firmware_cfg/tx_calibration.example.toml): for each board (by the serial the
Pluto reports as ``hw_serial``), the output power measured at ``tx_hardwaregain_chan0 = 0`` dB at a few
carrier frequencies; between points the offset is interpolated linearly in frequency::

    default_power_at_0db_dbm = 5.0
    [[boards]]
    serial = "1044730a1997000b1b00..."
    points = [{ freq_hz = 915e6, power_at_0db_dbm = 6.1 }, { freq_hz = 2.4e9, power_at_0db_dbm = 4.3 }]

The requested ``tx_power_dbm`` then maps to ``tx_hardwaregain_chan0 = tx_power_dbm - power_at_0db_dbm``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import msgspec
import numpy as np

from testbed.errors import ConfigError

log = logging.getLogger(__name__)

# Nominal Pluto output at 0 dB attenuation (ADALM-Pluto user guide quotes about 7 dBm; boards vary by
# several dB across the band, which is why a measured file should replace this).
NOMINAL_POWER_AT_0DB_DBM = 5.0


class CalPoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    freq_hz: Annotated[float, msgspec.Meta(gt=0.0, le=10e9)]
    power_at_0db_dbm: Annotated[float, msgspec.Meta(ge=-60.0, le=30.0)]


class BoardCal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    serial: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    points: Annotated[list[CalPoint], msgspec.Meta(min_length=1)]


class TxCalibration(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    boards: list[BoardCal] = []
    default_power_at_0db_dbm: Annotated[float, msgspec.Meta(ge=-60.0, le=30.0)] = NOMINAL_POWER_AT_0DB_DBM

    def power_at_0db_dbm(self, serial: str | None, freq_hz: float) -> float:
        """Output power at 0 dB hardware gain for this board at ``freq_hz`` (the file default if unlisted)."""
        board = next((b for b in self.boards if b.serial == serial), None)
        if board is None:
            log.warning(
                "no TX calibration for board %r; assuming %.1f dBm at 0 dB", serial, self.default_power_at_0db_dbm
            )
            return self.default_power_at_0db_dbm
        pts = sorted(board.points, key=lambda p: p.freq_hz)
        freqs = [p.freq_hz for p in pts]
        if not freqs[0] <= freq_hz <= freqs[-1]:
            log.warning("%.0f Hz is outside board %s's calibrated range; using the nearest point", freq_hz, serial)
        return float(np.interp(freq_hz, freqs, [p.power_at_0db_dbm for p in pts]))


def load_calibration(path: str | Path) -> TxCalibration:
    """Read and validate a calibration file; ConfigError names the file and the bad field."""
    path = Path(path)
    try:
        cal = msgspec.toml.decode(path.read_bytes(), type=TxCalibration)
    except OSError as exc:
        raise ConfigError(f"cannot read TX calibration {path}: {exc.strerror}") from exc
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"{path}: invalid TX calibration: {exc}") from exc
    serials = [b.serial for b in cal.boards]
    if len(set(serials)) != len(serials):
        raise ConfigError(f"{path}: each board serial may appear once; got {serials}")
    return cal
