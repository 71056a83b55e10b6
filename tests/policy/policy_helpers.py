"""Helpers of the policy tests: a fake cpufreq sysfs tree and a typical UE."""

from pathlib import Path

from testbed.link.messages import ChannelReport
from testbed.policy.allocation import UeResources
from testbed.policy.profiles import default_profiles


def make_cpufreq_tree(
    root: Path, steps_khz: list[int] | None, governor: str = "schedutil", cpus: int = 2, cur_khz: int = 1500000
) -> Path:
    """Write cpuN/cpufreq/ files like a Raspberry Pi's (``steps_khz`` None: a continuous driver)."""
    for n in range(cpus):
        d = root / f"cpu{n}" / "cpufreq"
        d.mkdir(parents=True)
        lo, hi = (steps_khz[0], steps_khz[-1]) if steps_khz else (800000, 3000000)
        if steps_khz:
            (d / "scaling_available_frequencies").write_text(" ".join(map(str, steps_khz)) + " \n")
        files = {
            "cpuinfo_min_freq": lo,
            "cpuinfo_max_freq": hi,
            "scaling_min_freq": lo,
            "scaling_max_freq": hi,
            "scaling_cur_freq": cur_khz,
            "scaling_governor": governor,
            "scaling_setspeed": "<unsupported>",
        }
        for name, value in files.items():
            (d / name).write_text(f"{value}\n")
    (root / "cpufreq").mkdir()  # siblings that are not cpuN must be ignored
    return root


PI4_STEPS_KHZ = list(range(600000, 1500001, 100000))


def make_ue(
    ue_id: str = "ue",
    profile: str = "pi_4",
    snr_db: float = 15.0,
    samples_per_s: float = 2500.0,
    energy_budget_j: float | None = None,
) -> UeResources:
    """A UE of ``profile`` training ``samples_per_s`` at its maximum frequency, SNR ``snr_db`` at 0 dBm."""
    p = default_profiles().get(profile)
    return UeResources(
        ue_id=ue_id,
        frequency_table=p.frequency_table,
        cycles_per_sample=p.cpu_freq_max_hz / samples_per_s,
        kappa_j_per_cycle_hz2=p.kappa_j_per_cycle_hz2,
        min_tx_power_dbm=p.min_tx_power_dbm,
        max_tx_power_dbm=p.max_tx_power_dbm,
        energy_budget_j=p.energy_budget_j if energy_budget_j is None else energy_budget_j,
        channel=ChannelReport.assumed(snr_db, 0.0),
    )
