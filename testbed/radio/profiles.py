"""Radio profiles: one TOML table per role (bs, ue, ...) -> a validated RadioConfig (firmware_cfg/profiles.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from testbed.errors import ConfigError
from testbed.radio.base import RadioConfig


class Profile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    center_freq_hz: Annotated[float, msgspec.Meta(gt=0.0)]
    sample_rate_hz: Annotated[float, msgspec.Meta(gt=0.0)]
    tx_power_dbm: float
    rx_gain_mode: str = "manual"
    rx_gain_db: float = 30.0
    rf_bandwidth_hz: Annotated[float, msgspec.Meta(gt=0.0)] | None = None


def load_profile(path: str | Path, role: str) -> RadioConfig:
    """The RadioConfig of ``role`` in the profiles file; ConfigError names the file, role and field."""
    path = Path(path)
    try:
        tables = msgspec.toml.decode(path.read_bytes(), type=dict[str, Profile])
    except OSError as exc:
        raise ConfigError(f"cannot read radio profiles {path}: {exc.strerror}") from exc
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(f"{path}: invalid radio profiles: {exc}") from exc
    if role not in tables:
        raise ConfigError(f"{path} has no profile {role!r}; it defines {sorted(tables)}")
    return RadioConfig(**msgspec.structs.asdict(tables[role]))
