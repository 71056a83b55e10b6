"""Distributed local training batched across UEs (testbed/learning/batch.py) against a plain per-UE SGD loop."""

import numpy as np
import pytest
import torch

from testbed.learning import batch
from testbed.learning.batch import LocalJob, chunks, run_local, train_chunk, train_local
from testbed.learning.channel import AwgnChannel
from testbed.learning.codec import CodecConfig, SemanticCodec
from testbed.learning.data import load_dataset
from testbed.learning.modes import LocalTraining, LocalUe, draw_batch, pseudo_gradient

CFG = CodecConfig(image_size_px=8, num_symbols=8, decoder_hidden=32)


def _sgd_loop(model: SemanticCodec, ue: LocalUe, work: LocalTraining, generator: torch.Generator) -> dict:
    """What LocalUe.distributed computed before the batching: a scratch copy, torch.optim.SGD, one UE at a time."""
    scratch = SemanticCodec(model.cfg, torch.Generator().manual_seed(0))
    scratch.load_state_dict(model.state_dict())
    opt = torch.optim.SGD(scratch.parameters(), lr=work.lr)
    channel = AwgnChannel(ue.snr_db, generator)
    for _ in range(work.steps):
        idx = draw_batch(len(ue.data), work.batch_size, generator)
        opt.zero_grad()
        scratch.loss(ue.data.images[idx], ue.data.labels[idx], channel).backward()
        opt.step()
    return pseudo_gradient(model, scratch, work.lr)


@pytest.fixture
def ues() -> list[LocalUe]:
    data = load_dataset("digits")
    sizes = [5, 12, 40, 40, 7, 40]  # batches of 5, 12 and 16 rows: three groups
    starts = np.cumsum([0, *sizes])
    return [LocalUe(f"ue{i}", data.subset(np.arange(starts[i], starts[i + 1])), 2.0 + 3 * i,
                    torch.Generator().manual_seed(50 + i)) for i in range(len(sizes))]  # fmt: skip


def test_batched_training_matches_the_per_ue_sgd_loop(ues) -> None:
    model = SemanticCodec(CFG, torch.Generator().manual_seed(3))
    work = LocalTraining(steps=3, batch_size=16, lr=0.1)
    expected = [_sgd_loop(model, u, work, torch.Generator().manual_seed(50 + i)) for i, u in enumerate(ues)]
    got = train_local(model, [u.local_job(model, work) for u in ues])
    # one vmap runs a chunk's convolutions as one grouped convolution: float32 sums in another order, so the
    # pseudo-gradients agree to float32 rounding accumulated over three steps, not bit for bit
    for e, g in zip(expected, got, strict=True):
        assert set(e) == set(g)
        for name in e:
            torch.testing.assert_close(g[name], e[name], rtol=1e-4, atol=1e-5)
    # the generator advanced exactly as the loop's did: the next draws agree
    for i, u in enumerate(ues):
        replay = torch.Generator().manual_seed(50 + i)
        _sgd_loop(model, u, work, replay)
        assert torch.equal(torch.randn(4, generator=u.generator), torch.randn(4, generator=replay))


def test_chunks_group_equal_shapes_and_do_not_change_the_bits(ues, monkeypatch) -> None:
    model = SemanticCodec(CFG, torch.Generator().manual_seed(3))
    work = LocalTraining(steps=2, batch_size=16, lr=0.1)
    jobs = [u.local_job(model, work) for u in ues]
    assert chunks(model, jobs) == [[0], [1], [2, 3, 5], [4]]
    monkeypatch.setattr(batch, "CHUNK_SAMPLES", 32)  # two UEs of 16 rows per chunk
    assert chunks(model, jobs) == [[0], [1], [2, 3], [5], [4]]
    whole = train_local(model, jobs)
    for idx in chunks(model, jobs):  # what an executor computes elsewhere, one chunk at a time
        for i, tensors in zip(idx, train_chunk(model, [jobs[i] for i in idx]), strict=True):
            assert all(torch.equal(tensors[n], whole[i][n]) for n in tensors)


def test_run_local_computes_now_outside_an_executor(ues) -> None:
    model = SemanticCodec(CFG, torch.Generator().manual_seed(3))
    job = ues[0].local_job(model, LocalTraining(steps=1, batch_size=4, lr=0.5))
    assert isinstance(job, LocalJob) and job.images.shape == (1, 4, 1, 8, 8) and job.noise.shape == (1, 4, 8, 2)
    seen = []
    with batch.deferring(lambda codec, j: seen.append(j) or {"x": torch.zeros(1)}):
        assert set(run_local(model, job)) == {"x"}
    assert seen == [job]
    assert set(run_local(model, job)) == {n for n, _ in model.named_parameters()}


def test_a_job_trained_alone_matches_the_batched_step_without_loading_torch_func() -> None:
    """run_local outside an executor (a UE daemon) trains by plain autograd: the same pseudo-gradient as the
    batched path within float32 rounding, and torch._dynamo (about 70 MB, what torch.func loads) stays out."""
    import subprocess
    import sys

    codec = SemanticCodec(CodecConfig(image_size_px=8, num_symbols=4, decoder_hidden=16),
                          torch.Generator().manual_seed(3))  # fmt: skip
    gen = torch.Generator().manual_seed(4)
    params = {n: p.detach() for n, p in codec.named_parameters()}
    job = LocalJob(params, torch.rand((3, 5, 1, 8, 8), generator=gen), torch.randint(0, 10, (3, 5), generator=gen),
                   torch.randn((3, 5, 4, 2), generator=gen), 0.1, 0.02, 0.05)  # fmt: skip
    alone = run_local(codec, job)
    batched = train_local(codec, [job])[0]
    assert alone.keys() == batched.keys()
    for name in alone:
        torch.testing.assert_close(alone[name], batched[name], rtol=1e-4, atol=1e-5)
    assert any(float(t.abs().max()) > 0 for t in alone.values())
    probe = (
        "import sys, torch\n"
        "from testbed.learning.batch import LocalJob, run_local\n"
        "from testbed.learning.codec import CodecConfig, SemanticCodec\n"
        "c = SemanticCodec(CodecConfig(image_size_px=8, num_symbols=4, decoder_hidden=16), torch.Generator())\n"
        "p = {n: q.detach() for n, q in c.named_parameters()}\n"
        "run_local(c, LocalJob(p, torch.rand(1, 2, 1, 8, 8), torch.zeros(1, 2, dtype=torch.int64),"
        " torch.randn(1, 2, 4, 2), 0.1, 0.02, 0.05))\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr[-2000:]
