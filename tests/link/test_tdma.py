"""The TDMA cycle (link/tdma.py): which node counts fit, and the one line a cycle that cannot fit them gets."""

import numpy as np
import pytest

from testbed.errors import ConfigError
from testbed.link.messages import MAX_SLOTS
from testbed.link.tdma import cycle_schedule, max_slots, min_cycle_samples


def test_max_slots_and_min_cycle_are_exactly_cycle_schedules_rule(rng):
    for _ in range(300):
        frame, guard = int(rng.integers(100, 50_000)), int(rng.integers(0, 500))
        cycle = int(rng.integers(frame, 40 * frame))
        fit = max_slots(cycle, guard, frame)
        for n in (fit, fit + 1):
            if 1 <= n <= MAX_SLOTS:
                fits = n <= fit
                try:
                    schedule = cycle_schedule(cycle, guard, range(n), frame)
                except ConfigError:
                    assert not fits
                else:
                    assert fits and min(s.length_samples for s in schedule.slots) >= frame
        n = int(rng.integers(1, 60))
        need = min_cycle_samples(n, guard, frame)
        assert len(cycle_schedule(need, guard, range(n), frame).slots) == n
        with pytest.raises(ConfigError):
            cycle_schedule(need - 1, guard, range(n), frame)
        assert max_slots(need, guard, frame) == n and max_slots(need - 1, guard, frame) == n - 1


def test_a_crowded_cycle_says_how_many_ues_fit_and_what_to_change():
    """Fails on the old message: it said neither how many UEs fit nor 'use at most'."""
    with pytest.raises(ConfigError) as err:
        cycle_schedule(300_000, 80, range(11), 40_720)  # the default scenario's frame, 10 UEs, a short cycle
    text = str(err.value)
    assert "\n" not in text
    assert "tdma_cycle_samples=300000" in text and "guard_samples=80" in text
    assert "fits the BS and 6 UEs" in text  # 7 * 40720 + 8 * 80 <= 300000 < 8 * 40720 + 9 * 80
    assert "at least 448880 for 10 UEs" in text and "use at most 6 UEs" in text
    no_ue = "fits no UE beside the BS: raise tdma_cycle_samples to at least 81680 for 1 UE or lower frame_payload"
    with pytest.raises(ConfigError, match=no_ue):
        cycle_schedule(60_000, 80, range(2), 40_720)


def test_more_nodes_than_a_schedule_holds_is_a_config_error():
    """Fails on the old code: make_schedule's LinkError (exit status 1, no hint) came first."""
    with pytest.raises(ConfigError, match=f"at most {MAX_SLOTS} .* use at most {MAX_SLOTS - 1} UEs"):
        cycle_schedule(10**9, 80, range(MAX_SLOTS + 1), 1000)
    assert len(cycle_schedule(10**9, 80, np.arange(MAX_SLOTS), 1000).slots) == MAX_SLOTS
