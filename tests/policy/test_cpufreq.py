import math
from pathlib import Path

import pytest
from policy_helpers import PI4_STEPS_KHZ, make_cpufreq_tree

from testbed.errors import PolicyError
from testbed.policy.cpufreq import FrequencyTable, SimulatedCpuFreq, SysfsCpuFreq


def _read(root: Path, cpu: int, name: str) -> str:
    return (root / f"cpu{cpu}" / "cpufreq" / name).read_text().strip()


def test_table_and_current_frequency_come_from_sysfs_in_khz(pi4_tree):
    cpu = SysfsCpuFreq(pi4_tree)
    table = cpu.table()
    assert table.min_hz == 600e6 and table.max_hz == 1500e6 and len(table.steps_hz) == 10
    assert cpu.current_frequency_hz() == 1500e6


def test_continuous_driver_uses_cpuinfo_min_max(tmp_path):
    cpu = SysfsCpuFreq(make_cpufreq_tree(tmp_path, None))
    table = cpu.table()
    assert table.continuous and (table.min_hz, table.max_hz) == (800e6, 3000e6)
    assert table.snap_up(1234.5e6) == 1234.5e6


def test_setting_snaps_up_and_writes_scaling_max_freq_on_every_cpu(pi4_tree):
    cpu = SysfsCpuFreq(pi4_tree)
    assert cpu.set_frequency_hz(1050e6) == 1100e6
    assert _read(pi4_tree, 0, "scaling_max_freq") == _read(pi4_tree, 1, "scaling_max_freq") == "1100000"
    assert cpu.set_frequency_hz(100e6) == 600e6  # below the table: the minimum


def test_userspace_governor_writes_scaling_setspeed(tmp_path):
    root = make_cpufreq_tree(tmp_path, PI4_STEPS_KHZ, governor="userspace")
    SysfsCpuFreq(root).set_frequency_hz(700e6)
    assert _read(root, 0, "scaling_setspeed") == "700000"
    assert _read(root, 0, "scaling_max_freq") == "1500000"


def test_frequency_above_the_maximum_is_refused_and_nothing_written(pi4_tree):
    with pytest.raises(PolicyError, match="exceeds"):
        SysfsCpuFreq(pi4_tree).set_frequency_hz(2.0e9)
    assert _read(pi4_tree, 0, "scaling_max_freq") == "1500000"


def test_no_write_permission_is_a_policy_error_not_a_crash(pi4_tree, monkeypatch):
    # The tests may run as root, where chmod does not stop writes; make the write fail as EACCES would.
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    with pytest.raises(PolicyError, match="no permission.*NOT changed"):
        SysfsCpuFreq(pi4_tree).set_frequency_hz(1.0e9)


def test_value_the_kernel_did_not_take_is_detected(pi4_tree, monkeypatch):
    real_write = Path.write_text

    def clamp(self, data, *args, **kwargs):  # a kernel that silently keeps the old cap
        return real_write(self, "1500000\n") if self.name == "scaling_max_freq" else real_write(self, data)

    monkeypatch.setattr(Path, "write_text", clamp)
    with pytest.raises(PolicyError, match="reads 1500000 kHz after writing 1000000"):
        SysfsCpuFreq(pi4_tree).set_frequency_hz(1.0e9)


@pytest.mark.parametrize("content", ["", "garbage", "-5", "nan"])
def test_garbage_in_sysfs_is_a_policy_error(pi4_tree, content):
    (pi4_tree / "cpu0" / "cpufreq" / "scaling_cur_freq").write_text(content)
    with pytest.raises(PolicyError):
        SysfsCpuFreq(pi4_tree).current_frequency_hz()


def test_machine_without_cpufreq_is_a_policy_error(tmp_path):
    (tmp_path / "cpu0").mkdir()
    with pytest.raises(PolicyError, match="no cpufreq"):
        SysfsCpuFreq(tmp_path)


def test_simulated_control_keeps_the_snapped_frequency():
    sim = SimulatedCpuFreq(FrequencyTable(600e6, 1000e6, (600e6, 800e6, 1000e6)))
    assert sim.current_frequency_hz() == 1000e6
    assert sim.set_frequency_hz(700e6) == 800e6 == sim.current_frequency_hz()


@pytest.mark.parametrize("bad", [(0.0, 1e9), (2e9, 1e9), (math.nan, 1e9), (1e9, math.inf)])
def test_impossible_tables_are_refused(bad):
    with pytest.raises(PolicyError):
        FrequencyTable(*bad)
