"""Who computes the UE jobs the in-process engine starts together: ``embedded`` (this process, the default) or
``ray`` (Ray tasks, on a local Ray or an existing cluster).

The network (testbed/experiment/network.py) collects the jobs its cores start within one step of the event
loop (a broadcast that reaches every UE starts every UE's training at once) and hands them to ``run``. Each
job is the core's own closure (plan the work, train, encode the upload); it runs on a fiber, a thread that
only runs while the caller waits for it, so the jobs still run one at a time, in order. When a job reaches its
local training (testbed/learning/batch.py ``run_local``) the fiber stops there; once every job has finished or
stopped, the stopped ones' training runs together (``train_local``: one vmap per chunk of UEs), each fiber
gets its result and goes on to encode its upload. The ray executor sends the same chunks to Ray tasks, in
parallel; the chunks and each chunk's arithmetic are the same, so both executors give the same bits.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from testbed.errors import ConfigError, ExecutorError
from testbed.learning.batch import LocalJob, Tensors, chunks, deferring, train_chunk, train_local
from testbed.learning.codec import CodecConfig, SemanticCodec

EXECUTORS = ("embedded", "ray")
RAY_CONNECT_TIMEOUT_S = 10.0  # an address that does not answer within this is refused


class Executor(Protocol):
    """Runs jobs started together; results in the jobs' order."""

    name: str

    def run(self, jobs: Sequence[Callable[[], Any]]) -> list[Any]: ...

    def close(self) -> None: ...


class EmbeddedExecutor:
    """The jobs in this process; their local training batched across UEs."""

    name = "embedded"

    def run(self, jobs: Sequence[Callable[[], Any]]) -> list[Any]:
        return gathered(jobs, train_local)

    def close(self) -> None:
        pass


class RayExecutor:
    """The jobs' local training as Ray tasks, one per chunk. ``address``: an existing cluster ("host:port" or
    "ray://host:port"); None: a local Ray of ``num_cpus`` CPUs (None: all), started here and stopped by
    ``close``. An address that does not answer: ExecutorError (one line, a runtime failure: exit status 1, the
    input may be right and the cluster down)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        import ray  # not installed: the command's one-line MissingExtra (testbed/cli/__init__.py)

        self._ray = ray
        if address is not None:
            _check_reachable(address)
        try:
            ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                     log_to_driver=False, configure_logging=False, ignore_reinit_error=True)  # fmt: skip
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise ExecutorError(f"cannot start {where}: {exc}") from exc
        self._task = ray.remote(num_cpus=1)(_train_chunk_task)

    def run(self, jobs: Sequence[Callable[[], Any]]) -> list[Any]:
        return gathered(jobs, self._train)

    def _train(self, codec: SemanticCodec, local: Sequence[LocalJob]) -> list[Tensors]:
        parts = chunks(codec, local)
        threads = torch.get_num_threads()  # the tasks compute as this process would
        refs = [self._task.remote(codec.cfg, [local[i] for i in idx], threads) for idx in parts]
        out: list[Tensors | None] = [None] * len(local)
        for idx, results in zip(parts, self._ray.get(refs), strict=True):
            for i, tensors in zip(idx, results, strict=True):
                out[i] = tensors
        return out  # type: ignore[return-value]  # every index is in exactly one chunk

    def close(self) -> None:
        self._ray.shutdown()


def build_executor(name: str, address: str | None = None, num_cpus: int | None = None) -> Executor:
    """The executor called ``name`` (``EXECUTORS``); ``address`` and ``num_cpus`` are for ray only."""
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    if name == "embedded":
        if address is not None:
            raise ConfigError("--ray-address is for --executor ray")
        return EmbeddedExecutor()
    return RayExecutor(address, num_cpus)


def _train_chunk_task(cfg: CodecConfig, jobs: list[LocalJob], threads: int) -> list[Tensors]:
    """A Ray task: one chunk, with the caller's torch thread count (the sums then run as the caller's would)."""
    torch.set_num_threads(threads)
    return train_chunk(SemanticCodec(cfg, torch.Generator().manual_seed(0)), jobs)


def _check_reachable(address: str) -> None:
    """Refuse an address whose host:port does not accept a TCP connection within ``RAY_CONNECT_TIMEOUT_S``
    (ray.init would otherwise retry for about a minute and log a page)."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r}: give host:port (or ray://host:port) of a Ray cluster")
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ExecutorError(
            f"the Ray cluster at {address} does not answer ({exc}); start it (ray start --head) or leave out "
            "--ray-address for a local Ray"
        ) from exc


# --- fibers ---------------------------------------------------------------------------------------------------
Compute = Callable[[SemanticCodec, Sequence[LocalJob]], list[Tensors]]


def gathered(jobs: Sequence[Callable[[], Any]], compute: Compute) -> list[Any]:
    """Run every job, one at a time and in order, each up to its local training or its end; ``compute`` the
    trainings asked for together (per codec architecture), hand each its result and go on, until all are done."""
    fibers = [_Fiber(job) for job in jobs]
    for f in fibers:
        f.advance()
    while asking := [f for f in fibers if f.request is not None]:
        by_cfg: dict[CodecConfig, list[_Fiber]] = {}
        for f in asking:
            by_cfg.setdefault(f.request[0].cfg, []).append(f)  # type: ignore[index]
        for group in by_cfg.values():
            results = compute(group[0].request[0], [f.request[1] for f in group])  # type: ignore[index]
            for f, tensors in zip(group, results, strict=True):
                f.reply, f.request = tensors, None
        for f in asking:
            f.advance()
    for f in fibers:
        if f.error is not None:
            raise f.error
    return [f.result for f in fibers]


class _Fiber:
    """A job on its own thread that runs only between ``advance()`` and its next stop (a request, or the end)."""

    def __init__(self, job: Callable[[], Any]) -> None:
        self.job = job
        self.request: tuple[SemanticCodec, LocalJob] | None = None
        self.reply: Tensors | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self._go, self._back = threading.Semaphore(0), threading.Semaphore(0)
        self._thread: threading.Thread | None = None

    def advance(self) -> None:
        """Start or resume the job; return when it asks for training or has finished."""
        if self._thread is None:
            self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._main,), daemon=True)
            self._thread.start()
        else:
            self._go.release()
        self._back.acquire()

    def _main(self) -> None:
        try:
            with deferring(self._ask):
                self.result = self.job()
        except BaseException as exc:  # handed to the caller's thread by ``gathered``
            self.error = exc
        self._back.release()

    def _ask(self, codec: SemanticCodec, job: LocalJob) -> Tensors:
        self.request = (codec, job)
        self._back.release()
        self._go.acquire()
        reply, self.reply = self.reply, None
        assert reply is not None  # ``gathered`` answers every request before resuming
        return reply
