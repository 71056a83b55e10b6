"""The shared virtual air: one sample-count clock, bursts on it, and what each node hears.

Both the in-process loopback backend and the hub process use this class; only the waiting differs.

Time model (why results do not depend on process scheduling): every node has a cursor, the end of what it
has received. A node may only transmit at or after its cursor, and while it waits for a receive window
[c, c + n) it promises not to transmit before c + n; that promise is its *commit*. A receive window is served
only when every other counted node's commit has reached its end, so no burst can still arrive inside a
window that was already handed out. When all nodes wait, the one with the earliest window end is always
servable, so the clock never deadlocks. Noise is drawn per receiver in fixed blocks of absolute time from
(seed, receiver, block) so it too is independent of how nodes split their windows.

Sessions: a node that leaves (Bye, dropped connection) may join again; it starts at the frontier of the nodes
still live. When the last node leaves, the air returns to its initial state, so a hub that runs for hours
gives every new session the samples the first one got.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from testbed.errors import ConfigError, RadioError
from testbed.radio.base import RxBlock
from testbed.radio.links import Link
from testbed.radio.scenario import Scenario

NOISE_BLOCK_SAMPLES = 1 << 15
NOISE_PREFETCH_BLOCKS = 4  # blocks each receiver's noise is computed ahead when a thread pool is given
AGC_NOISE_DBFS = -50.0  # the AGC modes settle the noise floor here (a fixed stand-in for a real AGC loop)


@dataclass
class _Node:
    index: int
    tx_power_dbm: float
    live: bool = False
    joined_once: bool = False
    cursor: int = 0
    pending: int | None = None
    gain_db: float = 0.0

    @property
    def commit(self) -> int:
        return self.cursor + (self.pending or 0)


@dataclass
class _Burst:
    src: str
    start: int
    waves: dict[str, np.ndarray] = field(default_factory=dict)  # per receiver: (m,) complex64

    @property
    def end(self) -> int:
        return self.start + max((w.size for w in self.waves.values()), default=0)


def _noise_block(seed: int, rx_index: int, k: int, sigma: float) -> np.ndarray:
    """Block ``k`` of receiver ``rx_index``'s noise: (NOISE_BLOCK_SAMPLES,) complex64, E|z|^2 = sigma^2.

    Box-Muller on float32 uniforms from a per-(seed, receiver, block) SFC64 stream: about twice as fast as
    numpy's ziggurat here; the 24-bit uniforms cap |z| at 5.8 sigma (probability 1e-8 per sample).
    """
    gen = np.random.Generator(np.random.SFC64(np.random.SeedSequence(seed, spawn_key=(rx_index, k))))
    u = gen.random(2 * NOISE_BLOCK_SAMPLES, dtype=np.float32)
    radius = np.log1p(-u[:NOISE_BLOCK_SAMPLES])  # log(1 - u), 1 - u in (0, 1]: finite
    radius *= np.float32(-1.0)  # |z|^2 / sigma^2 ~ Exp(1)
    np.sqrt(radius, out=radius)
    radius *= np.float32(sigma)
    angle = u[NOISE_BLOCK_SAMPLES:] * np.float32(2.0 * math.pi)
    block = np.empty(NOISE_BLOCK_SAMPLES, np.complex64)
    block.real = radius * np.cos(angle)
    block.imag = radius * np.sin(angle)
    return block


class _Noise:
    """Complex Gaussian noise of one receiver as a function of absolute sample time. With a thread pool the
    next block is computed while the current one is used (numpy releases the GIL); the values do not
    depend on it."""

    def __init__(self, seed: int, rx_index: int, variance: float, pool: ThreadPoolExecutor | None) -> None:
        self._args = (seed, rx_index)
        self._sigma = math.sqrt(variance)
        self._pool = pool
        self._blocks: dict[int, Future | np.ndarray] = {}

    def _block(self, k: int) -> np.ndarray:
        block = self._blocks.get(k)
        if block is None:
            block = _noise_block(*self._args, k, self._sigma)
        elif isinstance(block, Future):
            block = block.result()
        ahead = {j: b for j, b in self._blocks.items() if k < j <= k + NOISE_PREFETCH_BLOCKS}
        if self._pool is not None:
            for j in range(k + 1, k + 1 + NOISE_PREFETCH_BLOCKS):
                if j not in ahead:
                    ahead[j] = self._pool.submit(_noise_block, *self._args, j, self._sigma)
        self._blocks = {k: block, **ahead}
        return block

    def add_to(self, out: np.ndarray, start: int) -> None:
        """Add this receiver's noise for samples [start, start + len(out)) into ``out`` (complex64)."""
        pos, end = start, start + out.size
        while pos < end:
            k, off = divmod(pos, NOISE_BLOCK_SAMPLES)
            take = min(end - pos, NOISE_BLOCK_SAMPLES - off)
            out[pos - start : pos - start + take] += self._block(k)[off : off + take]
            pos += take


class Air:
    """All nodes of a scenario on one clock. Not thread-safe: one owner (the hub loop or a test) drives it."""

    def __init__(self, scenario: Scenario, workers: int = 0) -> None:
        """workers : threads that prepare noise and per-link bursts in parallel (0: all in the caller)."""
        self.scenario = scenario
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="air") if workers > 0 else None
        self._nodes = {spec.id: _Node(index=i, tx_power_dbm=spec.tx_power_dbm) for i, spec in enumerate(scenario.nodes)}
        self._links = self._new_links()
        noise_var = 10.0 ** ((scenario.noise_floor_dbm - scenario.rx_full_scale_dbm) / 10.0)
        self._noise = {
            nid: _Noise(scenario.seed, node.index, noise_var, self._pool) for nid, node in self._nodes.items()
        }
        self._agc_gain_db = AGC_NOISE_DBFS - (scenario.noise_floor_dbm - scenario.rx_full_scale_dbm)
        self._bursts: list[_Burst] = []
        self.delivered_samples = 0

    # --- membership ---------------------------------------------------------------------------------
    def _node(self, node_id: str) -> _Node:
        node = self._nodes.get(node_id)
        if node is None:
            raise ConfigError(f"unknown node id {node_id!r}; the scenario has {list(self._nodes)}")
        return node

    def join(self, node_id: str) -> int:
        """Bring a node on the air; returns its starting sample. A node joining a running air starts at the
        frontier, the latest cursor of the live nodes (no window served to them can then hold its bursts);
        the first node of a session starts at 0. Cursors of nodes that left say nothing about the air now."""
        node = self._node(node_id)
        if node.live:
            raise RadioError(f"node {node_id!r} is already connected; one radio per node id")
        node.cursor = max((n.cursor for n in self._nodes.values() if n.live), default=0)
        node.live, node.joined_once, node.pending = True, True, None
        node.tx_power_dbm, node.gain_db = self.scenario.nodes[node.index].tx_power_dbm, 0.0  # a powered-up radio
        return node.cursor

    def leave(self, node_id: str) -> None:
        """Take a node off the air; the unsent rest of its bursts (after its commit) is cut, as a radio that
        loses power mid-burst would. When the last node leaves, the session ends: the air is back in its
        initial state, so the next session runs exactly like the first (same clock, fading and noise)."""
        node = self._node(node_id)
        if not node.live:
            return
        cut = node.commit
        node.live, node.pending = False, None
        for burst in self._bursts:
            if burst.src == node_id:
                for rx, wave in burst.waves.items():
                    burst.waves[rx] = wave[: max(0, cut - burst.start)]
        if any(n.live for n in self._nodes.values()):
            self._collect_garbage()
        else:
            self._new_session()

    def is_live(self, node_id: str) -> bool:
        return self._node(node_id).live

    def cursor(self, node_id: str) -> int:
        return self._node(node_id).cursor

    # --- settings -----------------------------------------------------------------------------------
    def set_radio(self, node_id: str, tx_power_dbm: float, rx_gain_mode: str, rx_gain_db: float) -> None:
        """Apply a node's TX power and RX gain (AGC modes use a fixed gain putting noise at AGC_NOISE_DBFS)."""
        node = self._node(node_id)
        node.tx_power_dbm = float(tx_power_dbm)
        node.gain_db = float(rx_gain_db) if rx_gain_mode == "manual" else self._agc_gain_db

    # --- samples ------------------------------------------------------------------------------------
    def transmit(self, node_id: str, iq: np.ndarray, at_sample: int | None = None) -> int:
        """Put a burst (n,) complex64 from ``node_id`` on the air at ``at_sample`` (default: its cursor)."""
        node = self._live(node_id)
        if node.pending is not None:
            raise RadioError(f"node {node_id!r} cannot transmit while it waits for a receive window")
        start = node.cursor if at_sample is None else int(at_sample)
        if start < node.cursor:
            raise RadioError(
                f"node {node_id!r}: burst at sample {start} is in the past (its clock is at {node.cursor}); "
                "transmit at or after the end of the last receive"
            )
        burst = _Burst(node_id, start)
        links = [(b, link) for (a, b), link in self._links.items() if a == node_id]
        if self._pool is None:
            waves = [link(iq, start, node.tx_power_dbm) for _, link in links]
        else:  # each link has its own state and generator, so links run in parallel without changing results
            waves = list(self._pool.map(lambda item: item[1](iq, start, node.tx_power_dbm), links))
        burst.waves = {b: wave for (b, _), wave in zip(links, waves, strict=True)}
        self._bursts.append(burst)
        return start

    def request(self, node_id: str, num_samples: int) -> None:
        """Ask for the next window of ``num_samples``; serve it with ``collect`` once ``ready``."""
        node = self._live(node_id)
        if node.pending is not None:
            raise RadioError(f"node {node_id!r} already waits for a receive window; one request at a time")
        node.pending = int(num_samples)

    def ready(self, node_id: str) -> bool:
        """True when no other node can still transmit into this node's requested window."""
        node = self._nodes[node_id]
        if node.pending is None:
            return False
        end = node.commit
        for other_id, other in self._nodes.items():
            if other_id == node_id:
                continue
            counted = other.live or (self.scenario.wait_for_all_nodes and not other.joined_once)
            if counted and other.commit < end:
                return False
        return True

    def waiting(self) -> list[str]:
        """Node ids with a pending receive request."""
        return [nid for nid, n in self._nodes.items() if n.live and n.pending is not None]

    def collect(self, node_id: str) -> RxBlock:
        """Deliver the pending window (call only when ``ready``, or from a single-threaded loopback)."""
        node = self._live(node_id)
        if node.pending is None:
            raise RadioError(f"node {node_id!r} has no pending receive request")
        start, n = node.cursor, node.pending
        end = start + n
        out = np.zeros(n, np.complex64)
        for burst in self._bursts:
            wave = burst.waves.get(node_id)
            if wave is None or burst.start >= end or burst.start + wave.size <= start:
                continue
            lo, hi = max(start, burst.start), min(end, burst.start + wave.size)
            out[lo - start : hi - start] += wave[lo - burst.start : hi - burst.start]
        self._noise[node_id].add_to(out, start)
        if node.gain_db != 0.0:
            out *= np.float32(10.0 ** (node.gain_db / 20.0))
        node.cursor, node.pending = end, None
        self.delivered_samples += n
        self._collect_garbage()
        return RxBlock(out, start)

    def close(self) -> None:
        """Stop the worker threads (if any)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _live(self, node_id: str) -> _Node:
        node = self._node(node_id)
        if not node.live:
            raise RadioError(f"node {node_id!r} is not connected; join first")
        return node

    def _new_links(self) -> dict[tuple[str, str], Link]:
        """Every ordered pair's propagation, each with its own generator spawned from the scenario seed; a
        quasi-static multipath draw comes from the unordered pair's, so both directions see one channel (TDD)."""
        seeds = np.random.SeedSequence(self.scenario.seed).spawn(len(self._nodes) ** 2)
        n = len(self._nodes)
        return {
            (a, b): Link(self.scenario, a, b, np.random.default_rng(seeds[na.index * n + nb.index]),
                         np.random.default_rng(seeds[min(na.index, nb.index) * n + max(na.index, nb.index)]))
            for a, na in self._nodes.items()
            for b, nb in self._nodes.items()
            if a != b
        }

    def _new_session(self) -> None:
        """Nobody is on the air: forget every clock, burst and fading draw (noise is a function of time).
        ``joined_once`` is cleared too, so wait_for_all_nodes waits for every node again."""
        for node in self._nodes.values():
            node.cursor, node.pending, node.joined_once = 0, None, False
        self._bursts.clear()
        self._links = self._new_links()

    def _collect_garbage(self) -> None:
        """Drop bursts every live node has heard in full (call while at least one node is live)."""
        horizon = min(n.cursor for n in self._nodes.values() if n.live)
        self._bursts = [b for b in self._bursts if b.end > horizon]
