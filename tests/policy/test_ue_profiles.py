import pytest

from testbed.errors import PolicyError
from testbed.policy.profiles import default_profiles, load_profiles


def test_shipped_profiles_have_the_documented_cpufreq_tables():
    profiles = default_profiles()
    pi4 = profiles.get("pi_4").frequency_table
    pi5 = profiles.get("pi_5").frequency_table
    assert pi4.steps_hz == tuple(f * 1e6 for f in range(600, 1501, 100))
    assert pi5.steps_hz == tuple(f * 1e6 for f in range(1500, 2401, 100))
    assert profiles.get("laptop").frequency_table.continuous
    assert set(profiles.profiles) == {"pi_zero_2", "pi_3", "pi_4", "pi_5", "laptop"}
    for p in profiles.profiles.values():
        assert p.source  # every profile says where its numbers come from


def test_speed_scale_is_relative_to_the_host_profile():
    profiles = default_profiles()
    assert profiles.speed_scale(profiles.host_profile) == 1.0
    assert profiles.speed_scale("pi_5") == pytest.approx(2.5 * profiles.speed_scale("pi_4"))


def test_unknown_profile_lists_the_valid_names():
    with pytest.raises(PolicyError, match="pi_4"):
        default_profiles().get("pi_9")


@pytest.mark.parametrize(
    "text",
    [
        'host_profile = "a"\n[profiles.a]\ncpu_freq_min_mhz = 600\n',  # fields missing
        'host_profile = "b"\n',  # no profiles
        "not toml [[[",
    ],
)
def test_malformed_profile_files_are_refused(tmp_path, text):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PolicyError):
        load_profiles(path)


def test_negative_numbers_in_a_profile_are_refused(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(
        'host_profile = "a"\n[radio]\nmax_tx_power_dbm = 7.0\nmin_tx_power_dbm = -80.0\n[profiles.a]\n'
        "cpu_freq_min_mhz = 600\ncpu_freq_max_mhz = 1500\ncpu_freq_step_mhz = 100\nrelative_speed = -1.0\n"
        "cycles_per_mac = 1.5\n"
        'kappa_j_per_cycle_hz2 = 1e-27\nmemory_mb = 1024\nenergy_budget_j = 10.0\nsource = "test"\n'
    )
    with pytest.raises(PolicyError, match="relative_speed"):
        load_profiles(path)
