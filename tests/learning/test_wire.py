"""Bytes over the air: every object round-trips exactly (raw pixels to 8 bits), and corrupted, truncated or
mis-shaped bytes raise LearningError (never another exception, never a tensor of the wrong shape)."""

import dataclasses

import msgspec
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.errors import LearningError
from testbed.learning import wire
from testbed.learning.codec import SemanticCodec
from testbed.learning.data import ImageDataset
from testbed.learning.guards import Update
from testbed.learning.modes import SentSymbols, SymbolUpload
from testbed.learning.split import SymbolGradient
from tests.learning.conftest import TINY

MODEL = SemanticCodec(TINY, torch.Generator().manual_seed(1))
REF = {n: p.detach() for n, p in MODEL.state_dict().items()}
K, CLASSES = TINY.num_symbols, TINY.num_classes
PHI = {n: t for n, t in REF.items() if n.startswith("encoder.")}


def _update(gen: torch.Generator) -> Update:
    return Update("ue-1", {n: torch.randn(t.shape, generator=gen) for n, t in REF.items()}, 37)


ROWS_PER_FRAME = 5  # 12 rows -> analog frames of 5, 5 and 2 rows


def _symbols(gen: torch.Generator, m: int = 12) -> SentSymbols:
    sent = torch.complex(torch.randn(m, K, generator=gen), torch.randn(m, K, generator=gen))
    return SentSymbols("ue-2", sent, torch.randint(0, CLASSES, (m,), generator=gen))


def _received(frames: list[np.ndarray], noise_var: float = 0.25) -> dict[int, tuple[np.ndarray, float]]:
    """The frames as a noiseless receiver reports them: at unit mean power (the transmitter's scaling)."""
    return {f: (x / np.sqrt(np.mean(np.abs(x) ** 2)), noise_var) for f, x in enumerate(frames)}


SYMBOLS_INDEX, SYMBOLS_FRAMES = wire.encode_symbols(_symbols(torch.Generator().manual_seed(6)), 3, ROWS_PER_FRAME * K)


def _encodings() -> dict[str, tuple[bytes, object]]:
    gen = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (6, 1, 8, 8), generator=gen).float() / 255.0
    raw = ImageDataset(images, torch.randint(0, CLASSES, (6,), generator=gen), CLASSES)
    grads = {"ue-2": SymbolGradient(2, _symbols(gen).symbols)}
    split = dataclasses.replace(_symbols(gen), split=Update("ue-2", {n: t + 1 for n, t in PHI.items()}, 9))
    split_index, split_frames = wire.encode_symbols(split, 3, ROWS_PER_FRAME * K)
    return {
        "model+grads": (wire.encode_model(MODEL, 3, {}, grads), lambda b: wire.decode_model(b, MODEL, 3)),
        "symbols+split": (split_index, lambda b: wire.decode_symbols(b, _received(split_frames), "ue-2", K, CLASSES,
                                                                      3, PHI)),  # fmt: skip
        "model": (wire.encode_model(MODEL, 3, {"ue-3": (10, 6)}), lambda b: wire.decode_model(b, MODEL, 3)),
        "update": (wire.encode_update(_update(gen), 3), lambda b: wire.decode_update(b, "ue-1", REF, 3)),
        "symbols": (SYMBOLS_INDEX, lambda b: wire.decode_symbols(b, _received(SYMBOLS_FRAMES), "ue-2", K, CLASSES, 3)),
        "raw": (wire.encode_raw(raw, 10, 3), lambda b: wire.decode_raw(b, "ue-3", 8, CLASSES, (10, 6), 3)),
    }


ENCODED = _encodings()


def test_every_object_round_trips_exactly() -> None:
    gen = torch.Generator().manual_seed(2)
    state = wire.decode_model(wire.encode_model(MODEL, 4, {"ue-3": (0, 50)}), MODEL, 4)
    assert state.round_index == 4 and state.raw_requests == {"ue-3": (0, 50)}
    assert all(torch.equal(state.tensors[n], t) for n, t in REF.items())
    up = _update(gen)
    back = wire.decode_update(wire.encode_update(up, 4), "ue-1", REF, 4)
    assert back.num_samples == 37 and all(torch.equal(back.tensors[n], t) for n, t in up.tensors.items())
    sym = _symbols(gen)
    index, frames = wire.encode_symbols(sym, 4, ROWS_PER_FRAME * K + 1)  # a frame holds whole rows only
    assert [f.size for f in frames] == [5 * K, 5 * K, 2 * K]
    got = wire.decode_symbols(index, _received(frames), "ue-2", K, CLASSES, 4)
    assert torch.allclose(got.received, sym.symbols, rtol=0, atol=1e-5) and torch.equal(got.labels, sym.labels)
    power = [float(np.mean(np.abs(f) ** 2)) for f in frames]  # N0 scaled back with each frame's power
    assert got.noise_var == pytest.approx(0.25 * (5 * power[0] + 5 * power[1] + 2 * power[2]) / 12, rel=1e-6)
    assert got.received.dtype == torch.complex64 and got.labels.dtype == torch.int64
    assert ENCODED["model+grads"][1](ENCODED["model+grads"][0]).symbol_grads["ue-2"].round_index == 2
    back = ENCODED["symbols+split"][1](ENCODED["symbols+split"][0]).split
    assert back.num_samples == 9 and all(torch.equal(back.tensors[n], t + 1) for n, t in PHI.items())
    msg = msgspec.msgpack.decode(ENCODED["symbols+split"][0], type=wire.SymbolsMsg)
    stale = msgspec.msgpack.encode(
        msgspec.structs.replace(msg, split=msgspec.structs.replace(msg.split, round_index=1))
    )
    with pytest.raises(LearningError, match="encoder gradient for round 1, expected round 2"):
        wire.decode_symbols(stale, _received(SYMBOLS_FRAMES), "ue-2", K, CLASSES, 3, PHI)


def test_symbols_of_lost_analog_frames_are_missing_with_their_labels() -> None:
    sym = _symbols(torch.Generator().manual_seed(8))
    index, frames = wire.encode_symbols(sym, 4, ROWS_PER_FRAME * K)
    received = _received(frames)
    del received[1]  # rows 5..9 lost on the air
    got = wire.decode_symbols(index, received, "ue-2", K, CLASSES, 4)
    keep = [0, 1, 2, 3, 4, 10, 11]
    assert torch.allclose(got.received, sym.symbols[keep], atol=1e-5) and torch.equal(got.labels, sym.labels[keep])
    with pytest.raises(LearningError, match="none of its 3 analog frames arrived"):
        wire.decode_symbols(index, {}, "ue-2", K, CLASSES, 4)
    with pytest.raises(LearningError, match="analog frame 2 holds"):
        wire.decode_symbols(index, {2: (frames[0], 0.1)}, "ue-2", K, CLASSES, 4)
    with pytest.raises(LearningError, match="does not fit"):
        wire.encode_symbols(sym, 4, K - 1)
    images = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 1, 8, 8) / 127.0
    block = ImageDataset(images.clamp(0, 1), torch.tensor([3, 9]), CLASSES)
    raw = wire.decode_raw(wire.encode_raw(block, 7, 4), "ue-3", 8, CLASSES, (7, 2), 4)
    assert torch.equal(raw.labels, block.labels)
    assert float((raw.images - block.images).abs().max()) <= 0.5 / 255 + 1e-7  # 8-bit grey


@pytest.mark.parametrize(
    "name, mutate, match",
    [
        ("update", lambda b: b[: len(b) // 2], "not a valid"),
        ("update", lambda b: b"\x00" * 10, "not a valid"),
        ("model", lambda b: wire.encode_update(Update("x", REF, 1), 3), "not a valid"),  # wrong kind
        ("symbols", lambda b: b, "round 3, expected round 4"),
    ],
)
def test_bad_bytes_are_refused_with_a_reason(name: str, mutate, match: str) -> None:
    data, decode = ENCODED[name]
    if match.startswith("round"):
        with pytest.raises(LearningError, match=match):
            wire.decode_symbols(data, _received(SYMBOLS_FRAMES), "ue-2", K, CLASSES, 4)
        return
    with pytest.raises(LearningError, match=match):
        decode(mutate(data))


def test_structure_must_match_the_receivers_model() -> None:
    msg = msgspec.msgpack.decode(ENCODED["update"][0], type=wire.UpdateMsg)
    name = next(iter(msg.tensors))
    wrong_shape = dict(msg.tensors, **{name: wire.Array("<f4", [1], b"\x00" * 4)})
    bad = msgspec.msgpack.encode(msgspec.structs.replace(msg, tensors=wrong_shape))
    with pytest.raises(LearningError, match="dimensions"):
        wire.decode_update(bad, "ue-1", REF)
    short = dict(msg.tensors, **{name: msgspec.structs.replace(msg.tensors[name], data=b"\x00")})
    with pytest.raises(LearningError, match="bytes"):
        wire.decode_update(msgspec.msgpack.encode(msgspec.structs.replace(msg, tensors=short)), "ue-1", REF)
    missing = {k: v for k, v in msg.tensors.items() if k != name}
    with pytest.raises(LearningError, match="missing"):
        wire.decode_update(msgspec.msgpack.encode(msgspec.structs.replace(msg, tensors=missing)), "ue-1", REF)
    sym = msgspec.msgpack.decode(ENCODED["symbols"][0], type=wire.SymbolsMsg)
    nan_power = np.array([1.0, np.nan, 1.0], np.float32).tobytes()
    for bad_sym, match in (
        (msgspec.structs.replace(sym, frame_power=wire.Array("<f4", [3], nan_power)), "frame powers"),
        (msgspec.structs.replace(sym, frame_power=wire.Array("<f4", [2], bytes(8))), "frame powers"),
        (msgspec.structs.replace(sym, labels=wire.Array("|u1", [12], bytes([200] * 12))), "labels"),
        (msgspec.structs.replace(sym, labels=wire.Array("<f4", [12], bytes(48))), "expected [|]u1"),
    ):
        with pytest.raises(LearningError, match=match):
            wire.decode_symbols(msgspec.msgpack.encode(bad_sym), _received(SYMBOLS_FRAMES), "ue-2", K, CLASSES)
    with pytest.raises(LearningError, match="plan asked"):
        wire.decode_raw(ENCODED["raw"][0], "ue-3", 8, CLASSES, (0, 6))
    nan_model = SemanticCodec(TINY, torch.Generator().manual_seed(1))
    with torch.no_grad():
        next(iter(nan_model.parameters()))[0] = float("nan")
    with pytest.raises(LearningError, match="NaN"):
        wire.decode_model(wire.encode_model(nan_model, 0, {}), MODEL)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(ENCODED)),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=6),
    cut=st.none() | st.integers(0, 10**6),
)
def test_corrupted_bytes_raise_learning_error_or_decode_to_the_right_shapes(name, flips, cut) -> None:
    data, decode = ENCODED[name]
    buf = bytearray(data)
    for pos, x in flips:
        buf[pos % len(buf)] ^= x
    if cut is not None:
        buf = buf[: cut % len(buf)]
    try:
        out = decode(bytes(buf))
    except LearningError:
        return
    if isinstance(out, Update) or hasattr(out, "raw_requests"):
        assert {n: t.shape for n, t in out.tensors.items()} == {n: t.shape for n, t in REF.items()}
        for g in getattr(out, "symbol_grads", {}).values():  # a bad section is its reason, never a bad tensor
            assert isinstance(g, str) or (g.grads.dtype == torch.complex64 and g.grads.ndim == 2)
            assert isinstance(g, str) or bool(torch.isfinite(torch.view_as_real(g.grads)).all())
    elif isinstance(out, SymbolUpload):
        assert out.received.shape[1] == K and out.received.dtype == torch.complex64
        assert out.labels.shape == (out.received.shape[0],) and int(out.labels.max()) < CLASSES
        if out.split is not None:
            assert {n: t.shape for n, t in out.split.tensors.items()} == {n: t.shape for n, t in PHI.items()}
    else:
        assert out.images.shape == (6, 1, 8, 8) and np.isfinite(out.images.numpy()).all()
