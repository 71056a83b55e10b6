"""The privacy settings a whole scenario can be put in (``--privacy``; a light module: the CLI lists them without
importing the numerics). Per UE the fact is ``[[ues]] raw_upload_allowed``; a setting rewrites it for every UE."""

from __future__ import annotations

#: Setting -> what it means (the CLI's help and docs/learning.md, "Regimes").
PRIVACY_SETTINGS: dict[str, str] = {
    "file": "as each [[ues]] raw_upload_allowed says",
    "none": "every UE may upload raw samples (the permissive regime)",
    "weak": "the weak UEs keep their raw samples",
    "all": "no UE uploads raw samples (the privacy regime)",
}

#: Setting -> the regime's short name in tables.
REGIME_NAMES: dict[str, str] = {"file": "as written", "none": "permissive", "weak": "weak private", "all": "private"}


def raw_allowed(setting: str, weak: bool, as_written: bool) -> bool:
    """Whether a UE (``weak``, its file saying ``as_written``) may upload raw samples under ``setting``."""
    return {"file": as_written, "none": True, "weak": not weak, "all": False}[setting]
