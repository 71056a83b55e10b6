"""Executors of the in-process engine: the embedded one batches the UEs' local training without changing the
run; Ray (local mode) gives the same bits; bad executor settings are refused with one line."""

import socket
import sys

import pytest

from testbed import cli
from testbed.errors import ConfigError, ExecutorError
from testbed.experiment.engine import Engine
from testbed.experiment.executor import build_executor, gathered
from testbed.learning.batch import run_local

EXACT = ("round", "outcome", "round_time_s", "virtual_time_s", "round_energy_j", "energy_j", "uplink_bits", "modes",
         "late", "refused", "ue_energy_j", "ue_work", "broadcast_frames_sent")  # fmt: skip


class OneByOne:
    """Every job on its own, as a daemon's UE runs it: each UE's training by plain autograd (batch.train_one)."""

    name = "one-by-one"

    def run(self, jobs):
        return [job() for job in jobs]

    def close(self) -> None:
        pass


def _run(scenario, executor, scheme="fedavg_all"):
    return Engine(scenario, scheme, executor=executor).run(scenario.run.rounds)


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("scheme", ["fedavg_all", "hybrid"])
def test_batched_rounds_keep_every_event_and_the_learning_within_float_rounding(tiny_scenario, scheme) -> None:
    alone = _run(tiny_scenario, OneByOne(), scheme)
    batched = _run(tiny_scenario, build_executor("embedded"), scheme)
    for a, b in zip(alone, batched, strict=True):
        assert {k: a[k] for k in EXACT} == {k: b[k] for k in EXACT}  # the network's events did not move
        # the batched vmap (a grouped convolution) sums in another order than plain autograd on one UE: the
        # models differ by float32 rounding, which a few rounds of SGD grow to about 1e-4 of the loss
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)
        assert abs(b["accuracy"] - a["accuracy"]) <= 0.01


@pytest.mark.usefixtures("one_torch_thread")
def test_ray_in_local_mode_matches_the_embedded_run_exactly(tiny_scenario) -> None:
    pytest.importorskip("ray")
    embedded = _run(tiny_scenario, build_executor("embedded"))
    ray = build_executor("ray", num_cpus=2)
    try:
        remote = _run(tiny_scenario, ray)
    finally:
        ray.close()
    assert remote == embedded


def test_fibers_run_jobs_in_order_answer_every_request_and_pass_errors_on() -> None:

    class Codec:
        cfg = "one architecture"

    calls = []

    def compute(codec, jobs):
        calls.append(list(jobs))
        return [10 * j for j in jobs]

    def asking(i):
        def run():
            return (i, run_local(Codec(), i), run_local(Codec(), -i))  # type: ignore[arg-type]

        return run

    assert gathered([asking(i) for i in (1, 2, 3)], compute) == [(1, 10, -10), (2, 20, -20), (3, 30, -30)]
    assert calls == [[1, 2, 3], [-1, -2, -3]]  # one batch per round of requests

    def broken():
        raise RuntimeError("a job that fails")

    with pytest.raises(RuntimeError, match="a job that fails"):
        gathered([asking(1), broken], compute)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_executor_settings_are_refused_with_one_line(tiny_scenario, capsys, monkeypatch) -> None:
    with pytest.raises(ConfigError, match="unknown executor"):
        build_executor("spark")
    with pytest.raises(ConfigError, match="--ray-address is for --executor ray"):
        build_executor("embedded", "127.0.0.1:6379")
    tiny = ["--dataset", "digits", "--rounds", "1", "--json"]
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    assert cli.main(["train", "--executor", "ray", *tiny]) == 2
    err = capsys.readouterr().err
    assert "needs the ray extra" in err and ".[ray]" in err and len(err.strip().splitlines()) == 1


def test_a_ray_address_that_does_not_answer_is_a_runtime_failure(tmp_path, capsys) -> None:
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(ExecutorError, match=f"the Ray cluster at {address} does not answer"):
        build_executor("ray", address)
    args = ["compare", "--executor", "ray", "--ray-address", address, "--dataset", "digits", "--rounds", "1",
            "--no-plots", "--out", str(tmp_path), "--json"]  # fmt: skip
    assert cli.main(args) == 1
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and "does not answer" in err
    assert '"exit_status": 1' in out
