"""The Pluto backend against a fake ``adi`` module: scaling, clipping, buffers, gains, flags, teardown, errors."""

import sys

import numpy as np
import pluto_fake
import pytest

from testbed.errors import ConfigError, RadioError
from testbed.radio.base import RadioConfig
from testbed.radio.calibration import BoardCal, CalPoint, TxCalibration, load_calibration
from testbed.radio.pluto import PlutoRadio

CFG = RadioConfig(center_freq_hz=2.4e9, sample_rate_hz=2.5e6, tx_power_dbm=-10.0, rx_gain_db=30.0)
CAL = TxCalibration(boards=[BoardCal("fake01", [CalPoint(915e6, 7.0), CalPoint(2.4e9, 4.0), CalPoint(3.4e9, 2.0)])])


@pytest.fixture
def adi(monkeypatch):
    mod = pluto_fake.module()
    monkeypatch.setitem(sys.modules, "adi", mod)
    return mod


def _radio(**kw):
    radio = PlutoRadio("ip:192.168.2.1", calibration=CAL, rx_buffer_samples=1000, **kw)
    radio.configure(CFG)
    return radio, pluto_fake.FakePluto.instances[-1]


def test_configuration_reaches_the_device(adi):
    radio, dev = _radio()
    assert (dev.sample_rate, dev.rx_lo, dev.tx_lo, dev.rx_rf_bandwidth) == (
        2_500_000,
        2_400_000_000,
        2_400_000_000,
        2_500_000,
    )
    assert dev.gain_control_mode_chan0 == "manual" and dev.rx_hardwaregain_chan0 == 30.0
    assert dev.tx_hardwaregain_chan0 == -14.0  # -10 dBm wanted, board gives +4 dBm at 0 dB, 2.4 GHz
    assert radio.tx_hardwaregain_chan0 == -14.0 and radio.rx_lo == 2_400_000_000


def test_tx_gain_follows_calibration_between_points(adi):
    radio, dev = _radio()
    radio.configure(CFG.with_(center_freq_hz=2.9e9, tx_power_dbm=0.0))
    assert dev.tx_hardwaregain_chan0 == -3.0  # offset interpolates to 3.0 dBm at 2.9 GHz
    radio.configure(CFG.with_(tx_power_dbm=-10.1))
    assert dev.tx_hardwaregain_chan0 == -14.0  # rounded to the 0.25 dB step
    with pytest.raises(ConfigError, match="this board gives"):
        radio.configure(CFG.with_(tx_power_dbm=10.0))


def test_agc_mode_leaves_manual_gain_alone(adi):
    radio, dev = _radio()
    radio.configure(CFG.with_(rx_gain_mode="slow_attack", rx_gain_db=99.0))  # gain ignored in AGC modes
    assert dev.gain_control_mode_chan0 == "slow_attack" and dev.rx_hardwaregain_chan0 == 30.0


def test_receive_scales_counts_and_flushes(adi):
    radio, dev = _radio(kernel_buffers=3, flush_buffers=2)
    blk = radio.receive(1500)
    assert dev._rxadc.kernel_buffers == 3
    assert blk.start_sample == 0 and blk.iq.dtype == np.complex64 and blk.iq.size == 1500
    # two buffers (2000 ramp samples) were flushed; the first delivered sample is ramp value 2000 - 2048
    assert blk.iq[0] == pytest.approx((2000 - 2048) / 2048 + 0.5j)
    np.testing.assert_allclose(blk.iq.imag, 0.5)
    nxt = radio.receive(700)
    assert nxt.start_sample == 1500
    assert nxt.iq[0] == pytest.approx(((3500 % 4096) - 2048) / 2048 + 0.5j)  # continuous across calls
    assert not blk.overflow and not nxt.overflow


def test_reconfigure_destroys_the_buffer_and_flushes_again(adi):
    radio, dev = _radio(flush_buffers=1)
    radio.receive(10)
    radio.configure(CFG.with_(rx_gain_db=20.0))
    assert "rx_destroy" in dev.calls
    before = dev.rx_calls
    radio.receive(10)
    assert dev.rx_calls == before + 2  # one flushed, one delivered


def test_overflow_is_flagged_and_cleared(adi):
    radio, dev = _radio(flush_buffers=1)
    dev.overflow_on_call = {1, 3}  # the flushed buffer overflowing is not reported; the third is
    assert not radio.receive(1000).overflow
    assert radio.receive(1000).overflow
    assert not radio.receive(1000).overflow
    assert radio.overflows == 1 and dev._rxadc.status == 0
    dev._txdac.status = 1
    radio.receive(1000)
    assert radio.underflows == 1 and dev._txdac.status == 0


def test_transmit_scales_and_clips_never_wraps(adi):
    radio, dev = _radio()
    burst = np.array([0.5, 1.0 + 1.0j, -1.0j, 3.0 - 5.0j, -2.5], np.complex64)
    radio.transmit(burst)
    sent = dev.sent[-1]
    np.testing.assert_array_equal(sent.real, [8192, 16384, 0, 32767, -32768])
    np.testing.assert_array_equal(sent.imag, [0, 16384, -16384, -32768, 0])
    radio.transmit(np.ones(7, np.complex64))
    assert dev.calls[-2:] == ["tx_destroy", "tx(7)"]  # a new burst length needs a new buffer


def test_timed_transmit_waits_for_the_clock_and_keeps_samples(adi):
    radio, dev = _radio(flush_buffers=0)
    assert radio.transmit(np.ones(4, np.complex64), at_sample=2500) == 3000
    blk = radio.receive(3000)  # nothing fetched while waiting was lost
    assert blk.start_sample == 0 and blk.iq[0] == pytest.approx(-1 + 0.5j)
    with pytest.raises(RadioError, match="10 s ahead"):
        radio.transmit(np.ones(4, np.complex64), at_sample=10**9)


@pytest.mark.parametrize(
    ("want_dbm", "gain_db", "applied_dbm"),
    [
        (-10.0, -14.0, -10.0),  # the board gives +4 dBm at 0 dB (CAL at 2.4 GHz)
        (-20.1, -24.0, -20.0),  # -24.1 dB: the nearest 0.25 dB step
        (-9.8, -13.75, -9.75),  # -13.8 dB rounds to -13.75
        (12.0, 0.0, 4.0),  # above the board's maximum: clamped to 0 dB
        (-120.0, -89.75, -85.75),  # below its minimum: clamped to -89.75 dB
    ],
)
def test_set_tx_power_sets_only_the_tx_gain_on_the_step_within_range(adi, want_dbm, gain_db, applied_dbm):
    radio, dev = _radio()
    radio.receive(10)
    calls = len(dev.calls)
    assert radio.set_tx_power(want_dbm) == pytest.approx(applied_dbm)
    assert dev.tx_hardwaregain_chan0 == gain_db and radio.tx_hardwaregain_chan0 == gain_db
    assert dev.calls[calls:] == [f"tx_gain={gain_db}"]  # streaming goes on: no buffer destroyed, no flush
    assert radio.config.tx_power_dbm == pytest.approx(applied_dbm)
    assert radio.receive(10).start_sample == 10


def test_set_tx_power_refuses_a_non_number(adi):
    radio, _ = _radio()
    with pytest.raises(ConfigError, match="finite power"):
        radio.set_tx_power(float("nan"))


def test_close_leaves_minimum_power_and_no_buffers(adi):
    radio, dev = _radio()
    radio.receive(10)
    radio.close()
    assert dev.calls[-3:] == ["tx_gain=-89.75", "tx_destroy", "rx_destroy"]
    radio.close()  # idempotent
    with pytest.raises(RadioError, match="closed"):
        radio.receive(10)


def test_context_manager_tears_down_on_error(adi):
    with pytest.raises(RuntimeError), PlutoRadio("ip:192.168.2.1") as radio:
        radio.configure(CFG)
        raise RuntimeError("boom")
    assert pluto_fake.FakePluto.instances[-1].calls[-3] == "tx_gain=-89.75"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"sample_rate_hz": 300e3}, "pyadi-iio refuses"),
        ({"center_freq_hz": 5.8e9}, "LO range"),
        ({"rf_bandwidth_hz": 100e3}, "rf_bandwidth_hz"),
        ({"rx_gain_db": 80.0}, "rx_gain_db"),
    ],
)
def test_unsupported_settings_are_config_errors(adi, change, fragment):
    radio = PlutoRadio("ip:192.168.2.1")
    with pytest.raises(ConfigError, match=fragment):
        radio.configure(CFG.with_(**change))


def test_absent_radio_and_bad_uri(adi):
    with pytest.raises(RadioError, match="No device found") as info:
        PlutoRadio("ip:192.168.9.9")
    assert "No device found" in str(info.value.__cause__)
    with pytest.raises(ConfigError, match="URI"):
        PlutoRadio("192.168.2.1")
    with pytest.raises(ConfigError, match="URI"):
        PlutoRadio("")


def test_xml_context_uris_are_accepted_like_ip_and_usb(adi, tmp_path):
    """libiio's xml: backend (a context description from iio_genxml) reaches pyadi-iio; refused before."""
    desc = tmp_path / "pluto.xml"
    desc.write_text("<context name='xml'/>")
    radio = PlutoRadio(f"xml:{desc}")
    assert pluto_fake.FakePluto.instances[-1].uri == f"xml:{desc}" and radio.uri == f"xml:{desc}"
    with pytest.raises(ConfigError, match="no XML context description"):
        PlutoRadio(f"xml:{tmp_path / 'absent.xml'}")
    with pytest.raises(ConfigError, match="xml:PATH"):
        PlutoRadio("tcp:192.168.2.1")


def test_missing_pyadi_is_a_radio_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "adi", None)  # import adi -> ImportError
    with pytest.raises(RadioError, match="libiio0"):
        PlutoRadio("ip:192.168.2.1")


def test_calibration_file(tmp_path):
    path = tmp_path / "cal.toml"
    path.write_text(
        'default_power_at_0db_dbm = 6.0\n[[boards]]\nserial = "b1"\n'
        "points = [{ freq_hz = 1e9, power_at_0db_dbm = 5.0 }, { freq_hz = 2e9, power_at_0db_dbm = 3.0 }]\n"
    )
    cal = load_calibration(path)
    assert cal.power_at_0db_dbm("b1", 1.5e9) == pytest.approx(4.0)
    assert cal.power_at_0db_dbm("other", 1.5e9) == 6.0
    path.write_text('[[boards]]\nserial = "b1"\npoints = []\n')
    with pytest.raises(ConfigError, match="points"):
        load_calibration(path)


def test_real_pyadi_is_importable():
    """CI installs libiio0 + pyadi-iio 0.0.21 + pylibiio 0.25: the real module must load and offer Pluto."""
    import adi

    assert callable(adi.Pluto)


def test_probe_reports_firmware_ranges_and_settings(adi):
    radio, _ = _radio()
    info = radio.probe()
    assert info["fw_version"] == "v0.38" and info["hw_serial"] == "fake01"
    assert info["lo_range_hz"] == [325e6, 3.8e9] and info["rx_gain_range_db"] == [-3.0, 71.0]
    assert info["current"]["sample_rate_hz"] == 2.5e6 and info["current"]["tx_hardwaregain_db"] == -14.0


def test_firmware_rules():
    from testbed.radio.firmware import check_pluto, parse_version, xo_note

    good = {"fw_version": "v0.38", "hw_model": "Analog Devices PlutoSDR Rev.C", "lo_range_hz": [70e6, 6e9]}
    assert parse_version("v0.38") == (0, 38) and parse_version("junk") is None
    assert check_pluto(good, expect_ad9364=True) == []
    assert any("older" in p for p in check_pluto({**good, "fw_version": "v0.29"}))
    assert any("AD9364 mode" in p for p in check_pluto({**good, "lo_range_hz": [325e6, 3.8e9]}, expect_ad9364=True))
    assert any("not an ADALM-Pluto" in p for p in check_pluto({**good, "hw_model": "FMCOMMS2"}))
    assert "not calibrated" in xo_note({"xo_correction_hz": "40000000"})
    assert "calibrated" in xo_note({"xo_correction_hz": "40000123"})


def test_unreadable_status_register_is_survivable(adi, caplog):
    radio, dev = _radio(flush_buffers=0)

    def refuse(reg):
        raise OSError(13, "Permission denied")

    dev._rxadc.reg_read = refuse
    assert not radio.receive(1000).overflow
    assert not radio.receive(1000).overflow
    assert sum("status register" in r.message for r in caplog.records) == 1
