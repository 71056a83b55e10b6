"""Split learning over the downlink: the BS's symbol gradient is exactly autograd's, the UE's back-propagation
through phi is the end-to-end gradient, it travels in the next broadcast and the next symbol upload, and bad
sections are refused with a reason while the round goes on."""

import copy
import dataclasses

import msgspec
import pytest
import torch

from testbed.errors import LearningError
from testbed.learning import wire
from testbed.learning.assignment import FixedAssignment
from testbed.learning.channel import AwgnChannel
from testbed.learning.modes import LocalTraining
from testbed.learning.rounds import RoundConfig
from testbed.learning.split import SymbolGradient, encoder_gradient, split_reference, with_split_encoder
from testbed.mode import Mode
from tests.learning.conftest import TINY

WORK = LocalTraining(steps=2, batch_size=16, lr=0.1)
SYMBOLS_ONLY = FixedAssignment(Mode.CENTRALIZED_DECODER, Mode.IDLE)  # weak UEs send symbols, strong ones rest


def _symbol_round(runner):
    """Round of the weak UEs' symbols (what the BS received), run by hand: (plan, uploads)."""
    plan = runner.plan_round(SYMBOLS_ONLY.assign(runner.round_index, runner.profiles))
    uploads = {ue.name: ue.symbols(runner.model, WORK).through(ue.channel(0.0)) for ue in runner.ues[:2]}
    return plan, uploads


def test_the_symbol_gradient_is_autograds_gradient_of_the_bs_loss(digits_split, make_runner) -> None:
    """Row i of what the UE decodes from the next broadcast equals d l_i / d y_i at the decoder of the BS step
    that used symbol i, bit for bit: batch 0 at the round's model, batch 1 after the step on batch 0."""
    runner = make_runner(digits_split[0], RoundConfig(work=WORK, split_gradient=True))
    model = copy.deepcopy(runner.model)
    plan, uploads = _symbol_round(runner)
    runner.finish_round(plan, uploads)
    broadcast = wire.encode_model(
        runner.model, 1, {}, runner.plan_round(SYMBOLS_ONLY.assign(1, runner.profiles)).symbol_grads
    )
    received = wire.decode_model(broadcast, runner.model, 1).symbol_grads
    assert set(received) == {"ue0", "ue1"}
    opt = torch.optim.SGD(model.parameters(), lr=WORK.lr)
    for j in range(WORK.steps):  # the BS's steps, replayed
        rows = slice(16 * j, 16 * (j + 1))
        total, n = torch.zeros(()), 0
        for name, up in uploads.items():
            y = up.received[rows].clone().requires_grad_(True)
            (want,) = torch.autograd.grad(model.decoder_loss(y, up.noise_var, up.labels[rows], reduction="sum"), y)
            got = received[name]
            assert isinstance(got, SymbolGradient) and got.round_index == 0
            assert torch.equal(got.grads[rows], want), (name, j)
            total = total + model.decoder_loss(up.received[rows], up.noise_var, up.labels[rows], reduction="sum")
            n += 16
        opt.zero_grad()
        (total / n).backward()
        opt.step()


def test_back_propagating_the_symbol_gradient_gives_the_end_to_end_encoder_gradient(digits_split) -> None:
    """The UE's encoder gradient from the BS's d l / d y equals autograd of the mean loss over its symbols
    through the whole codec (same noise)."""
    from testbed.learning.codec import SemanticCodec

    model = SemanticCodec(TINY, torch.Generator().manual_seed(5))
    images, labels = digits_split[0].images[:36], digits_split[0].labels[:36]
    with torch.no_grad():
        y, nv = AwgnChannel(6.0, torch.Generator().manual_seed(2)).transmit(model.encoder(images))
    noise = y - model.encoder(images).detach()
    y = y.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model.decoder_loss(y, nv, labels, reduction="sum"), y)  # the BS's side
    got = encoder_gradient(copy.deepcopy(model).encoder, images, g)
    phi = [(n, p) for n, p in model.named_parameters() if n.startswith("encoder.")]
    end_to_end = model.decoder_loss(model.encoder(images) + noise, nv, labels)  # mean over the 36 samples
    want = torch.autograd.grad(end_to_end, [p for _, p in phi])
    for (name, _), w in zip(phi, want, strict=True):
        torch.testing.assert_close(got[name], w, rtol=1e-4, atol=1e-7)
    with pytest.raises(LearningError, match=r"expected \(36, 8\) complex64"):
        encoder_gradient(model.encoder, images, g[:, :4])


def test_encoder_gradients_join_phis_side_of_the_update_weighted_by_samples() -> None:
    g_c = {"encoder.w": torch.full((2,), 4.0), "decoder.w": torch.ones(2)}
    ups = [
        dataclasses.replace(_update("a", 1.0), num_samples=100),
        dataclasses.replace(_update("b", 2.0), num_samples=300),
    ]
    merged, n_phi = with_split_encoder(g_c, 100, ups)
    assert n_phi == 500 and torch.equal(merged["decoder.w"], torch.ones(2))
    torch.testing.assert_close(merged["encoder.w"], torch.full((2,), (100 * 4 + 100 * 1 + 300 * 2) / 500))
    merged, n_phi = with_split_encoder(g_c, 0, ups)  # no raw shard: G_C's phi part (zero) does not count
    torch.testing.assert_close(merged["encoder.w"], torch.full((2,), (100 * 1 + 300 * 2) / 400))
    assert with_split_encoder(None, 0, ups)[0].keys() == {"encoder.w"}
    assert with_split_encoder(g_c, 100, []) == (g_c, 100)


def _update(source, value):
    from testbed.learning.guards import Update

    return Update(source, {"encoder.w": torch.full((2,), value)}, 1)


def test_split_trains_the_encoder_from_symbols_alone_one_round_late(digits_split) -> None:
    """Symbol UEs only: without the option phi never moves; with it, phi moves from round 1 on (the encoder
    gradient for round 0's symbols rides in round 1's upload), through the nodes' own training objects."""
    from testbed.learning.spec import TrainingSpec
    from testbed.node.training import LearningBs, LearningUe

    def run(split: bool) -> list[bool]:
        t = TrainingSpec(dataset="digits", seed=3, num_shards=2, num_symbols=8, decoder_hidden=32, local_steps=2,
                         batch_size=16, split_gradient=split)  # fmt: skip
        bs = _bs(LearningBs, t)
        ues = [LearningUe.for_shard(t, f"ue-{i}", i) for i in range(2)]
        moved = []
        for r in range(3):
            before = copy.deepcopy(bs.model.encoder.state_dict())
            model = bs.model_bytes(r, _orders(Mode.CENTRALIZED_DECODER), ())
            uploads = {ue.ue_id: ue.upload_bytes(r, model, _assign(Mode.CENTRALIZED_DECODER)) for ue in ues}
            record = bs.consume(r, uploads, _analog(ues))["training"]
            assert record["refused"] == {}, record
            moved.append(any(not torch.equal(before[k], v) for k, v in bs.model.encoder.state_dict().items()))
        return moved

    assert run(False) == [False, False, False]
    assert run(True) == [False, True, True]


def test_a_malformed_downlink_section_is_refused_by_that_ue_and_its_round_goes_on(digits_split) -> None:
    bs, ues = _after_round_0()
    good = bs.model_bytes(1, _orders(Mode.CENTRALIZED_DECODER), ())
    msg = wire._decode(good, wire.ModelMsg, "test")
    sections = dict(msg.symbol_grads)
    g = sections["ue-0"].grads
    sections["ue-0"] = wire.GradSection(0, wire.Array("<c8", [g.shape[0], 9], g.data))  # 9 columns, bytes for 8
    sections["ue-1"] = wire.GradSection(7, sections["ue-1"].grads)  # for a round it never sent
    bad = wire._encode(msgspec.structs.replace(msg, symbol_grads=sections))
    uploads = {}
    for ue in ues:
        uploads[ue.ue_id] = ue.upload_bytes(1, bad, _assign(Mode.CENTRALIZED_DECODER))
    assert "needs" in ues[0].split_refused and "9" in ues[0].split_refused, ues[0].split_refused
    assert "round 7" in ues[1].split_refused, ues[1].split_refused
    record = bs.consume(1, uploads, _analog(ues))["training"]
    assert record["refused"] == {} and record["round_index"] == 1  # symbols used, no encoder gradient sent
    assert all(wire._decode(b, wire.SymbolsMsg, "t").split is None for b in uploads.values())


def test_a_bad_encoder_gradient_upload_is_refused_with_a_reason_and_the_round_goes_on(digits_split) -> None:
    bs, ues = _after_round_0()
    model = bs.model_bytes(1, _orders(Mode.CENTRALIZED_DECODER), ())
    uploads = {ue.ue_id: ue.upload_bytes(1, model, _assign(Mode.CENTRALIZED_DECODER)) for ue in ues}
    shaped = wire._decode(uploads["ue-0"], wire.SymbolsMsg, "t")
    tensors = dict(shaped.split.tensors)
    name = next(iter(tensors))
    tensors[name] = wire.Array("<f4", [1], b"\0\0\0\0")
    uploads["ue-0"] = wire._encode(
        msgspec.structs.replace(shaped, split=msgspec.structs.replace(shaped.split, tensors=tensors))
    )
    nan = wire._decode(uploads["ue-1"], wire.SymbolsMsg, "t")
    tensors = {k: wire.Array(a.dtype, a.shape, bytes.fromhex("0000c07f") * (len(a.data) // 4))
               for k, a in nan.split.tensors.items()}  # fmt: skip
    nan_split = msgspec.structs.replace(nan.split, tensors=tensors)
    uploads["ue-1"] = wire._encode(msgspec.structs.replace(nan, split=nan_split))
    theta = copy.deepcopy(bs.model.decoder.state_dict())
    phi = copy.deepcopy(bs.model.encoder.state_dict())
    record = bs.consume(1, uploads, _analog(ues))["training"]
    assert f"symbols from ue-0 encoder gradient {name}: expected <f4 with" in record["refused"]["ue-0"]  # bytes
    assert record["refused"]["ue-1"].startswith("split gradient:") and "NaN" in record["refused"]["ue-1"]
    assert record["model_finite"] and record["round_index"] == 1
    assert any(not torch.equal(theta[k], v) for k, v in bs.model.decoder.state_dict().items())  # ue-1's symbols
    assert all(torch.equal(phi[k], v) for k, v in bs.model.encoder.state_dict().items())  # no good phi gradient
    with pytest.raises(LearningError, match="split learning is off here"):
        wire.decode_symbols(uploads["ue-1"], _frames(ues[1]), "ue-1", 8, 10, 1, None)


def test_an_encoder_gradient_the_bs_did_not_ask_for_is_refused(digits_split, make_runner) -> None:
    runner = make_runner(digits_split[0], RoundConfig(work=WORK, split_gradient=True))
    plan, uploads = _symbol_round(runner)
    forged = {n: torch.zeros_like(p) for n, p in split_reference(runner.model).items()}
    uploads["ue0"] = dataclasses.replace(uploads["ue0"], split=_update_of("ue0", forged))
    report = runner.finish_round(plan, uploads)  # round 0: no symbol gradient was broadcast yet
    assert report.refused == {"ue0": "split gradient: no symbol gradient was sent to it"}


def _update_of(source, tensors):
    from testbed.learning.guards import Update

    return Update(source, tensors, 10)


# --- helpers: the BS and UE training objects of the daemons, driven without the cores --------------------------
def _after_round_0():
    """The daemons' BS and two symbol UEs with split learning on, after round 0 (no symbol gradient yet)."""
    from testbed.learning.spec import TrainingSpec
    from testbed.node.training import LearningBs, LearningUe

    t = TrainingSpec(dataset="digits", seed=3, num_shards=2, num_symbols=8, decoder_hidden=32, local_steps=2,
                     batch_size=16, split_gradient=True)  # fmt: skip
    bs = _bs(LearningBs, t)
    ues = [LearningUe.for_shard(t, f"ue-{i}", i) for i in range(2)]
    model = bs.model_bytes(0, _orders(Mode.CENTRALIZED_DECODER), ())
    bs.consume(0, {ue.ue_id: ue.upload_bytes(0, model, _assign(Mode.CENTRALIZED_DECODER)) for ue in ues}, _analog(ues))
    return bs, ues


def _frames(ue):
    """The UE's latest analog frames as a noiseless receiver reports them (unit mean power, a small noise)."""
    import numpy as np

    return {f: (x / np.sqrt(np.mean(np.abs(x) ** 2)), 1e-3) for f, x in enumerate(ue.last_analog)}


def _analog(ues):
    """What the BS core hands LearningBs.consume: each UE's analog frames, as heard."""
    from testbed.link.analog import ANALOG_MCS
    from testbed.link.framelink import Heard

    return {ue.ue_id: {f: Heard(None, 0, ANALOG_MCS, 30.0, 0.0, symbols=x, noise_var=v)
                       for f, (x, v) in _frames(ue).items()} for ue in ues}  # fmt: skip


def _bs(cls, t):
    from testbed.node.config import AirConfig

    return cls.for_ues(t, ["ue-0", "ue-1"], AirConfig(), assumed_snr_db=10.0)


def _orders(mode):
    from testbed.node.assigners import Orders
    from testbed.policy.choice import GROUP_OF_MODE

    return {ue: Orders(mode, GROUP_OF_MODE[mode], 1.5e9, 10.0, 100.0) for ue in ("ue-0", "ue-1")}


def _assign(mode):
    from testbed.control.protocol import Assign

    return Assign(mode, 0, 10.0, 100.0, 1.5e9, "bpsk-1/2", _slot())


def _slot():
    from testbed.link.messages import SlotGrant

    return SlotGrant(1, 0, 1000)


def test_with_the_option_off_the_bytes_are_those_of_before(digits_split, make_runner) -> None:
    """No section, no field: a broadcast and a symbol upload without split learning carry no trace of it."""
    runner = make_runner(digits_split[0], RoundConfig(work=WORK))
    plan, uploads = _symbol_round(runner)
    runner.finish_round(plan, uploads)
    assert runner.symbol_grads == {} and runner.plan_round(SYMBOLS_ONLY.assign(1, runner.profiles)).symbol_grads == {}
    assert b"symbol_grads" not in wire.encode_model(runner.model, 1, {}, {})
    index, _ = wire.encode_symbols(runner.ues[0].symbols(runner.model, WORK), 0, 4800)
    assert b"split" not in index
