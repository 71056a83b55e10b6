"""How long a node's jobs take on a modelled board, in seconds of the air's clock.

The in-process engine charges every job this way (testbed/experiment/network.py); a daemon on the virtual air
(the hub, unpaced) holds its radio's clock while a job runs and then lets it move on by the same seconds
(testbed/node/shell.py), so the air's clock is the run's virtual time whatever the host's load. A UE trains at
its report's cycles per sample and its applied clock (cost.py's model); the BS's training step costs the
samples it trained on at its board (``ClockConfig.bs_compute_s``); a capability measurement is free (a board
table's figure, not a measurement of the simulated board).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from testbed.learning.clock import ClockConfig
from testbed.learning.codec_config import CodecConfig, train_macs
from testbed.node.actions import StartJob
from testbed.policy.profiles import default_profiles

if TYPE_CHECKING:
    from testbed.node.first_info import UeFirstInfo

JobTime = Callable[[StartJob, Any], float]  # (the job, its result) -> seconds of virtual time it took


def ue_job_time(first_info: UeFirstInfo) -> JobTime:
    """A UE's training job: the samples and cycle fraction it trained (its result's ``work``) at the cycles per
    sample of its last capability report and its current CPU clock."""

    def seconds(job: StartJob, result: Any) -> float:
        if job.kind != "train" or result is None or first_info.report is None:
            return 0.0
        samples, fraction = result.work
        cycles = first_info.report.cycles_per_sample
        return samples * fraction * cycles / first_info.cpufreq.current_frequency_hz()

    return seconds


def bs_job_time(clock: ClockConfig) -> JobTime:
    """The BS's training step: the samples it trained on (its record's ``bs_train_samples``) at its board."""

    def seconds(job: StartJob, result: Any) -> float:
        learned = result.get("training", {}) if isinstance(result, dict) else {}
        return clock.bs_compute_s(learned.get("bs_train_samples", 0.0)) if job.kind == "consume" else 0.0

    return seconds


def bs_clock(board: str, codec: CodecConfig, control_latency_s: float = ClockConfig.control_latency_s) -> ClockConfig:
    """The round's fixed costs with the BS training ``codec`` on ``board`` (profiles.toml) at its maximum clock."""
    p = default_profiles().get(board)
    return ClockConfig(control_latency_s=control_latency_s, bs_cpu_freq_hz=p.cpu_freq_max_hz,
                       bs_cycles_per_sample=p.cycles_per_mac * train_macs(codec))  # fmt: skip
