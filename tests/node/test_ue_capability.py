"""The UE measures its capability in its worker thread, in process: a real ControlServer (driven here) and a
UeDaemon serving in a thread with a radio pump that hears nothing. The report sent at registration is the
benchmark's measurement, requests while one runs are not queued twice, and a failing measurement is logged
with its traceback while the loop goes on."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import msgspec
import pytest
import torch

from testbed.control.client import ControlClient
from testbed.control.config import Event, ServerConfig
from testbed.control.protocol import CapabilityEnquiry, CapabilityReport
from testbed.control.security import Plaintext
from testbed.control.server import ControlServer
from testbed.learning.codec import SemanticCodec
from testbed.learning.codec_config import CodecConfig
from testbed.node.config import UeConfig, parse_config
from testbed.node.first_info import UeFirstInfo
from testbed.node.sdnotify import Notifier
from testbed.node.training import PlaceholderUe
from testbed.node.ue import UeDaemon
from testbed.policy.capability import build_report, measure_codec_throughput
from testbed.policy.cpufreq import SimulatedCpuFreq
from testbed.policy.profiles import default_profiles
from testbed.policy.wire import report_to_wire
from tests.control.control_helpers import HEARTBEAT_S, poll_until

TINY = CodecConfig(image_size_px=8, num_symbols=4, encoder_channels=(4, 8), decoder_hidden=16)
NUM_SAMPLES = 700
STEPS_S = (0.05, 0.08, 0.11, 0.07)  # what the fake clock advances per reading, in turn


def stepping_clock() -> Callable[[], float]:
    """A deterministic clock: every reading is STEPS_S further on (cyclically), whatever the machine does."""
    readings = itertools.accumulate(itertools.cycle(STEPS_S))
    return lambda: next(readings)


@dataclass
class SilentPump:
    """The radio pump's interface to the loop, with no radio: nothing heard, nothing sent."""

    cursor: int = 0
    submitted: list[object] = field(default_factory=list)

    def events(self) -> list[object]:
        return []

    def submit(self, job: object) -> None:
        self.submitted.append(job)

    def cancel(self, job_id: int) -> None:
        pass


class RecordingExecutor(ThreadPoolExecutor):
    """The daemon's worker, telling the test when shutdown has cancelled the queue (before it waits)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="ue-1-worker")
        self.queue_cancelled = threading.Event()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=False, cancel_futures=cancel_futures)
        self.queue_cancelled.set()
        super().shutdown(wait=wait)


class Harness:
    """A ControlServer in the test's thread and a UeDaemon serving in another; ``close`` stops both."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.server = ControlServer(ServerConfig(heartbeat_interval_s=HEARTBEAT_S), Plaintext())
        text = f'[ue]\nue_id = "ue-1"\nnode_id = 1\n[control]\nserver_endpoint = "{self.server.endpoint}"\n'
        self.cfg = parse_config(text.encode(), UeConfig)
        self.codec = SemanticCodec(TINY, torch.Generator().manual_seed(0))
        self.first_info = UeFirstInfo(self.cfg.ue, self.codec, NUM_SAMPLES, clock=clock)
        self.stop = threading.Event()
        training = PlaceholderUe("ue-1", 100)
        self.daemon = UeDaemon(self.cfg, training, self.stop, Notifier({}), self.first_info)
        self.worker = self.daemon._worker.executor = RecordingExecutor()
        self.exit_code: int | None = None
        self.thread = threading.Thread(target=self._serve, name="ue-1-loop", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with ControlClient(self.cfg.client_config(), Plaintext()) as client:
            self.exit_code = self.daemon.serve(client, SilentPump())  # type: ignore[arg-type]

    def reports(self, events: list[Event]) -> list[CapabilityReport]:
        return [
            e.message.body for e in events if e.message is not None and isinstance(e.message.body, CapabilityReport)
        ]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        self.server.close()
        if self.thread.is_alive():
            raise AssertionError("the UE daemon did not stop within 15 s of stop")


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One torch thread, as the daemons run in CI: two threads on a loaded 2-core machine ran 20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def harness_factory() -> Iterator[Callable[[Callable[[], float]], Harness]]:
    made: list[Harness] = []

    def make(clock: Callable[[], float]) -> Harness:
        made.append(Harness(clock))
        return made[-1]

    yield make
    for h in made:
        h.close()


def test_report_at_registration_is_the_benchmarks_measurement(harness_factory) -> None:
    h = harness_factory(stepping_clock())
    events = poll_until(h.server, lambda ev: bool(h.reports(ev)))
    assert [e.kind for e in events if e.kind == "joined"] == ["joined"]
    sent = h.reports(events)[0]
    # what measure_codec_throughput gives under the same clock, through the same report builder
    profiles = default_profiles()
    pi4 = profiles.get("pi_4")
    measured = measure_codec_throughput(SemanticCodec(TINY, torch.Generator().manual_seed(0)), clock=stepping_clock())
    assert measured.passes_per_block == 1 and measured.warmup_passes >= 3 and len(measured.repeats_samples_per_s) == 7
    report = build_report("ue-1", pi4, measured, SimulatedCpuFreq(pi4.frequency_table),
                          speed_scale=profiles.speed_scale("pi_4"))  # fmt: skip
    want = report_to_wire(report, NUM_SAMPLES)
    assert sent.cycles_per_sample == want.cycles_per_sample  # exact: same passes, same clock readings
    assert msgspec.structs.replace(sent, memory_bytes=0) == msgspec.structs.replace(want, memory_bytes=0)
    assert h.first_info.report is not None and h.first_info.report.samples_per_s == report.samples_per_s


class GatedClock:
    """A stepping clock whose first reading waits until the test opens the gate; counts measurements."""

    def __init__(self) -> None:
        self.gate, self.waiting = threading.Event(), threading.Event()
        self.clock = stepping_clock()
        self.measurements = 0
        self._fresh = True

    def __call__(self) -> float:
        if self._fresh:
            self._fresh = False
            self.measurements += 1
            self.waiting.set()
            if not self.gate.wait(15):
                raise AssertionError("the test never opened the gate")
        return self.clock()

    def next_measurement(self) -> None:
        """The next reading starts a new measurement (called after a report was received)."""
        self._fresh = True


def test_enquiries_while_measuring_share_one_measurement(harness_factory, caplog) -> None:
    clock = GatedClock()
    h = harness_factory(clock)
    with caplog.at_level(logging.DEBUG, logger="testbed.node"):
        poll_until(h.server, lambda ev: any(e.kind == "joined" for e in ev))
        assert clock.waiting.wait(15)  # the registration's measurement is running (held at its first reading)
        for _ in range(3):
            h.server.send("ue-1", CapabilityEnquiry())
        poll_until(h.server, lambda ev: sum("not queued again" in r.getMessage() for r in caplog.records) == 3)
        clock.gate.set()
        first = poll_until(h.server, lambda ev: bool(h.reports(ev)))
        assert len(h.reports(first)) == 1 and clock.measurements == 1
        # the heartbeats went on while it measured, so the UE is still registered and answers a new enquiry
        clock.next_measurement()
        h.server.send("ue-1", CapabilityEnquiry())
        again = poll_until(h.server, lambda ev: bool(h.reports(ev)))
    assert len(h.reports(again)) == 1 and clock.measurements == 2
    assert not any(e.kind == "gone" for e in first + again)


def test_a_failing_measurement_is_logged_with_its_traceback_and_the_loop_goes_on(harness_factory, caplog) -> None:
    readings = stepping_clock()
    broken = {"yes": True}

    def clock() -> float:
        if broken["yes"]:
            raise RuntimeError("injected clock fault")
        return readings()

    with caplog.at_level(logging.INFO, logger="testbed.node"):
        h = harness_factory(clock)
        poll_until(h.server, lambda ev: any("measurement failed" in r.getMessage() for r in caplog.records))
        failed = next(r for r in caplog.records if "measurement failed" in r.getMessage())
        assert failed.exc_info is not None and "injected clock fault" in str(failed.exc_info[1])
        broken["yes"] = False
        h.server.send("ue-1", CapabilityEnquiry())  # the loop still serves: a fresh enquiry is measured and sent
        events = poll_until(h.server, lambda ev: bool(h.reports(ev)))
    assert h.reports(events)[0].num_local_samples == NUM_SAMPLES
    assert not any(e.kind == "gone" for e in events)


def test_stop_waits_for_the_running_job_only(harness_factory) -> None:
    clock = GatedClock()
    h = harness_factory(clock)
    poll_until(h.server, lambda ev: any(e.kind == "joined" for e in ev))
    assert clock.waiting.wait(15)  # the measurement is running, held at its first reading
    queued = threading.Event()
    h.worker.submit(queued.set)  # a job behind it (as a training step would queue)
    h.stop.set()
    assert h.worker.queue_cancelled.wait(15)  # the loop ended and shut its worker down, the measurement still held
    clock.gate.set()  # now the running measurement finishes, and serve returns
    h.thread.join(15)
    assert not h.thread.is_alive() and h.exit_code == 0
    assert not queued.is_set()  # cancelled at shutdown, never run
