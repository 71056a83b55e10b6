"""Durable, verified state files of a training run: checkpoints and JSON-lines logs.

A checkpoint is one file: a first line ``TESTBED-CHECKPOINT {manifest}`` (JSON: format version, the run's
identity such as scheme, seed and round, the payload's length and SHA-256), then the ``torch.save`` payload.
Loading checks the manifest, the length and the hash, unpickles with ``weights_only=True`` (no code runs from
the file) and checks that every number is finite and of sane magnitude, so a damaged, foreign or diverged file
is refused with one line naming it instead of being resumed. Writes go to a hidden temp file that is fsynced,
renamed over the target, and the directory fsynced, so a kill or power cut leaves the old file or the new one.

JSON-lines logs are appended with fsync; a torn last line (a kill mid-append) is dropped with a warning on
reading, damage anywhere else is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from testbed.errors import StateError

log = logging.getLogger(__name__)

MAGIC = b"TESTBED-CHECKPOINT "
FORMAT_VERSION = 1
MAX_MANIFEST_BYTES = 4096
#: Beyond this a weight or optimizer moment means a diverged or tampered run (healthy codecs stay below 1e3).
MAX_ABS_VALUE = 1e12
TEMP_SUFFIX = ".tmp"
_REMEDY = "delete it or start a fresh run with another --out"


def temp_path(path: Path) -> Path:
    """The hidden temp file ``write_atomic`` uses for ``path`` (``.name.tmp`` beside it)."""
    return path.with_name(f".{path.name}{TEMP_SUFFIX}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that a crash at any point leaves either the old or the new content."""
    path = Path(path)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete temp files a killed ``write_atomic`` left in ``directory``; returns what was removed."""
    stale = sorted(Path(directory).glob(f".*{TEMP_SUFFIX}"))
    for p in stale:
        log.warning("removing %s, left by an interrupted write", p)
        p.unlink(missing_ok=True)
    return stale


def save_checkpoint(path: Path, payload: Mapping[str, Any], identity: Mapping[str, Any]) -> None:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) with a manifest holding ``identity``."""
    buf = io.BytesIO()
    torch.save(dict(payload), buf)
    data = buf.getvalue()
    manifest = {
        "format_version": FORMAT_VERSION,
        **identity,
        "payload_bytes": len(data),
        "payload_sha256": hashlib.sha256(data).hexdigest(),
    }
    header = MAGIC + json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode() + b"\n"  # no free bytes
    if len(header) > MAX_MANIFEST_BYTES:
        raise StateError(f"checkpoint manifest for {path} is {len(header)} bytes; keep identity small")
    write_atomic(path, header + data)


def load_checkpoint(
    path: Path, expect: Mapping[str, Any], remedy: str = _REMEDY
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read and verify a checkpoint; returns (manifest, payload). Raises :class:`StateError`, never another error.

    ``expect`` maps manifest fields to the values this run has (e.g. scheme, seed): any difference is refused.
    ``remedy`` ends every refusal: what the user of this kind of checkpoint can do.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StateError(f"cannot read checkpoint {path}: {exc.strerror}") from exc
    manifest = _manifest(path, raw, remedy)
    for key, want in expect.items():
        if manifest.get(key) != want:
            raise StateError(
                f"checkpoint {path} is for {key} {manifest.get(key)!r}, this run has {want!r}; resume with the "
                f"same {key}, or {remedy}"
            )
    data = raw[raw.index(b"\n") + 1 :]
    if len(data) != manifest["payload_bytes"]:
        raise StateError(
            f"checkpoint {path} is truncated or padded: {len(data)} payload bytes, manifest says "
            f"{manifest['payload_bytes']}; {remedy}"
        )
    if hashlib.sha256(data).hexdigest() != manifest["payload_sha256"]:
        raise StateError(f"checkpoint {path} is damaged: its payload does not match its SHA-256; {remedy}")
    try:
        payload = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # noqa: BLE001  (any unpickling failure is one kind of refusal)
        raise StateError(f"checkpoint {path} has an unreadable payload ({type(exc).__name__}); {remedy}") from exc
    if not isinstance(payload, dict):
        raise StateError(f"checkpoint {path} holds a {type(payload).__name__}, not a state dict; {remedy}")
    for where, value in _numbers(payload, ""):
        bad = _bad_number(value)
        if bad:
            raise StateError(
                f"checkpoint {path}: {where} holds {bad}; the run it saved diverged or the file was altered"
            )
    return manifest, payload


def _manifest(path: Path, raw: bytes, remedy: str) -> dict[str, Any]:
    if not raw.startswith(MAGIC):
        raise StateError(f"{path} is not a testbed checkpoint (empty, foreign or damaged header); {remedy}")
    end = raw.find(b"\n", 0, MAX_MANIFEST_BYTES)
    try:
        if end < 0:
            raise ValueError("no end of line")
        manifest = json.loads(raw[len(MAGIC) : end])
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
        int(manifest["payload_bytes"]), str(manifest["payload_sha256"])
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise StateError(f"checkpoint {path} has a damaged manifest ({exc}); {remedy}") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise StateError(
            f"checkpoint {path} has format version {manifest.get('format_version')!r}; this testbed reads "
            f"{FORMAT_VERSION}; start a fresh run with another --out"
        )
    return manifest


def _numbers(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every tensor and float in a nested payload, with its path (``runner.model.enc.0.weight``)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _numbers(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{where}[{i}]")
    elif isinstance(value, (torch.Tensor, float)):
        yield where, value


def _bad_number(value: torch.Tensor | float) -> str | None:
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"the non-finite value {value}"
        return f"the value {value:g} (beyond {MAX_ABS_VALUE:g})" if abs(value) > MAX_ABS_VALUE else None
    if not (value.is_floating_point() or value.is_complex()) or value.numel() == 0:
        return None
    if not bool(torch.isfinite(value).all()):
        return "non-finite values (NaN or inf)"
    peak = float(value.abs().max())
    return f"a value of magnitude {peak:g} (beyond {MAX_ABS_VALUE:g})" if peak > MAX_ABS_VALUE else None


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line and fsync it, so a round reported is a round on disk."""
    with Path(path).open("a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def drop_torn_tail(path: Path) -> int:
    """Cut what follows the last newline of a JSON-lines log (what a kill mid-append leaves), so the next append
    starts a line of its own; the bytes dropped (0 when the file ends with a newline or does not exist)."""
    path = Path(path)
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep == len(data):
        return 0
    log.warning("%s: dropping a torn last line (%d bytes), left by an interrupted write", path, len(data) - keep)
    with path.open("r+b") as f:
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return len(data) - keep


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of a JSON-lines log; a torn last line is dropped with a warning, other damage refused."""
    path = Path(path)
    try:
        lines = path.read_text().split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read {path}: {exc}; start a fresh run with another --out") from exc
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            if all(not rest.strip() for rest in lines[i + 1 :]):
                log.warning("%s: dropping a torn last line (%d bytes), left by an interrupted write", path, len(line))
                break
            raise StateError(f"{path} line {i + 1} is damaged ({exc}); start a fresh run with another --out") from exc
        records.append(record)
    return records
