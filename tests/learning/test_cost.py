import math

import pytest

from testbed.errors import LearningError
from testbed.learning.cost import compute_energy_j, compute_time_s, dbm_to_w, radio_energy_j


def test_compute_time_and_energy_follow_the_cmos_model():
    # 1000 samples * 2e6 cycles = 2e9 cycles; at 1 GHz: 2 s and 1e-28 * 2e9 * 1e18 = 0.2 J.
    assert compute_time_s(1000, 2e6, 1e9) == pytest.approx(2.0)
    assert compute_energy_j(1000, 2e6, 1e9, 1e-28) == pytest.approx(0.2)
    # Halving the frequency doubles time and quarters energy.
    assert compute_time_s(1000, 2e6, 5e8) == pytest.approx(4.0)
    assert compute_energy_j(1000, 2e6, 5e8, 1e-28) == pytest.approx(0.05)


def test_radio_energy_is_power_times_airtime():
    assert dbm_to_w(30.0) == pytest.approx(1.0)
    assert radio_energy_j(20.0, 0.5) == pytest.approx(0.05)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_nonphysical_inputs_are_refused(bad):
    with pytest.raises(LearningError):
        compute_time_s(10, 1e6, bad)
    with pytest.raises(LearningError):
        compute_energy_j(10, bad, 1e9, 1e-28)
    with pytest.raises(LearningError):
        radio_energy_j(10.0, -abs(bad) if bad else -1.0)
