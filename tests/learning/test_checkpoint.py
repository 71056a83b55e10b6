"""Verified state files: atomic writes, manifests, refusals of damaged or foreign files, torn JSONL lines."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from testbed.errors import StateError
from testbed.learning.checkpoint import (
    MAGIC,
    append_jsonl,
    load_checkpoint,
    read_jsonl,
    remove_stale_temps,
    save_checkpoint,
    temp_path,
    write_atomic,
)

IDENTITY = {"scheme": "hybrid", "seed": 7, "round": 3}


def payload() -> dict:
    g = torch.Generator().manual_seed(1)
    return {"model": {"w": torch.randn(4, 3, generator=g)}, "gen": g.get_state(), "totals": {"energy_j": 1.5}}


def test_round_trip_with_manifest(tmp_path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, payload(), IDENTITY)
    manifest, loaded = load_checkpoint(path, {"scheme": "hybrid", "seed": 7})
    assert manifest["round"] == 3 and manifest["format_version"] == 1 and len(manifest["payload_sha256"]) == 64
    assert torch.equal(loaded["model"]["w"], payload()["model"]["w"]) and loaded["totals"] == {"energy_j": 1.5}
    assert path.read_bytes().startswith(MAGIC) and not temp_path(path).exists()


@pytest.mark.parametrize(("key", "value"), [("seed", 5), ("scheme", "fedavg_all")])
def test_refuses_another_runs_checkpoint(tmp_path, key, value) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, payload(), IDENTITY)
    with pytest.raises(StateError, match=f"is for {key} .* this run has {value!r}"):
        load_checkpoint(path, {key: value})


@pytest.mark.parametrize(
    ("value", "what"), [(float("nan"), "non-finite"), (float("inf"), "non-finite"), (1e30, "magnitude 1e\\+30")]
)
def test_refuses_non_finite_or_huge_weights_even_with_a_valid_hash(tmp_path, value, what) -> None:
    path = tmp_path / "c.pt"
    bad = payload()
    bad["model"]["w"][1, 2] = value
    save_checkpoint(path, bad, IDENTITY)
    with pytest.raises(StateError, match=f"model.w holds .*{what}"):
        load_checkpoint(path, {})


def test_refuses_pickled_code(tmp_path) -> None:
    """weights_only: a payload that would run code on unpickling is refused, and nothing runs."""
    import hashlib
    import io

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    buf = io.BytesIO()
    torch.save({"x": Evil()}, buf)
    data = buf.getvalue()
    manifest = {"format_version": 1, "payload_bytes": len(data), "payload_sha256": hashlib.sha256(data).hexdigest()}
    path = tmp_path / "c.pt"
    path.write_bytes(MAGIC + json.dumps(manifest).encode() + b"\n" + data)
    with pytest.raises(StateError, match="unreadable payload"):
        load_checkpoint(path, {})


def test_write_atomic_replaces_and_stale_temps_are_removed(tmp_path) -> None:
    path = tmp_path / "state.bin"
    write_atomic(path, b"old")
    temp_path(path).write_bytes(b"half a write")  # what a kill between write and rename leaves
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and not temp_path(path).exists()
    temp_path(path).write_bytes(b"half")
    assert remove_stale_temps(tmp_path) == [temp_path(path)] and path.exists()


def test_torn_last_jsonl_line_is_dropped_with_a_warning_and_damage_elsewhere_refused(tmp_path, caplog) -> None:
    path = tmp_path / "m.jsonl"
    for r in range(3):
        append_jsonl(path, {"round": r})
    with path.open("a") as f:
        f.write('{"round": 3, "accur')  # a kill mid-append
    with caplog.at_level(logging.WARNING):
        assert read_jsonl(path) == [{"round": 0}, {"round": 1}, {"round": 2}]
    assert "torn last line" in caplog.text
    path.write_text('{"round": 0}\n{"rou\n{"round": 2}\n')
    with pytest.raises(StateError, match="line 2 is damaged"):
        read_jsonl(path)
