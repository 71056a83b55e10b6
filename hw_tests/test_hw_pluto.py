"""Real-Pluto tests (skipped without --uri / PLUTO_URI). Each body runs in its own process; tables of
(setting, limit) as in pyadi-iio's hardware tests. Wiring: docs/lab-guide.md."""

import hw_checks
import pytest
from conftest import isolated

from testbed.radio.firmware import check_pluto, xo_note

# (sample rate, overflows allowed): USB 2.0 sustains about 4-5 MS/s (ARCHITECTURE.md); above that, losses
SUSTAINED = [(1e6, 0), (2.5e6, 0), (4e6, 0), (6e6, None)]
# (MCS, PER limit) through >= 30 dB of cable attenuation on one board
RF_PER = [("qpsk-1/2", 0.01), ("16qam-1/2", 0.02)]


def test_firmware_and_model(uri):
    info = isolated(hw_checks.probe, uri)
    assert check_pluto(info) == [], info
    print(xo_note(info))


def test_digital_loopback_returns_exact_samples(uri):
    result = isolated(hw_checks.digital_loopback, uri)
    assert result["exact"], result


@pytest.mark.rf_cable
@pytest.mark.parametrize(("mcs", "per_limit"), RF_PER)
def test_cabled_rf_loopback_per(uri, mcs, per_limit):
    result = isolated(hw_checks.rf_loopback, uri, 200, mcs)
    assert result["per"] <= per_limit, result


@pytest.mark.parametrize(("rate_hz", "max_overflows"), SUSTAINED)
def test_sustained_rate_flags(uri, rate_hz, max_overflows):
    result = isolated(hw_checks.sustained_rate, uri, rate_hz, 3.0)
    print(f"{rate_hz / 1e6:g} MS/s: {result}")
    if max_overflows is not None:
        assert result["overflows"] <= max_overflows, result


@pytest.mark.rf_cable
def test_latency_after_flush(uri):
    result = isolated(hw_checks.latency_after_flush, uri)
    assert result["latency_s"] is not None, "burst not seen: check the cable"
    assert 0.0 <= result["latency_s"] < 0.1, result  # 2 kernel buffers of 4096 at 2.5 MS/s are ~3 ms


def test_teardown_leaves_minimum_tx_power(uri):
    result = isolated(hw_checks.teardown_leaves_minimum_power, uri)
    assert result["tx_hardwaregain_db"] == result["minimum_db"], result
