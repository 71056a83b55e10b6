"""pyadi-iio (through Debian's libiio) configures a virtual Pluto as it would a real one."""

from __future__ import annotations

import numpy as np
import pytest

adi = pytest.importorskip("adi")


def test_settings_read_back_with_driver_quantisation(plutos):
    sdr = adi.Pluto(plutos.uris["bs"])
    sdr.sample_rate = 1_000_000  # below 2.08 MS/s: pyadi loads the decimating FIR first
    assert sdr.sample_rate == 1_000_000
    assert sdr._ctrl.attrs["filter_fir_config"].value == "FIR Rx: 128,4 Tx: 128,4"  # a summary, not the file
    sdr.rx_lo, sdr.tx_lo = 915_000_000, 920_000_000
    assert (sdr.rx_lo, sdr.tx_lo) == (915_000_000, 920_000_000)
    sdr.rx_rf_bandwidth = 100_000_000  # the analog filter clamps
    assert sdr.rx_rf_bandwidth == 56_000_000
    sdr.gain_control_mode_chan0 = "manual"
    sdr.rx_hardwaregain_chan0 = 30.7
    assert sdr.rx_hardwaregain_chan0 == 30  # whole dB
    sdr.tx_hardwaregain_chan0 = -10.3
    assert sdr.tx_hardwaregain_chan0 == -10.25  # 0.25 dB steps
    sdr.gain_control_mode_chan0 = "slow_attack"
    assert sdr.gain_control_mode_chan0 == "slow_attack"
    assert sdr.ctx.attrs["hw_serial"] == "emu-bs"


@pytest.mark.parametrize(
    ("attr", "value"),
    [("rx_lo", 100_000_000), ("tx_lo", 4_000_000_000), ("tx_hardwaregain_chan0", 1.0),
     ("tx_hardwaregain_chan0", -90.0), ("gain_control_mode_chan0", "automatic")],
)  # fmt: skip
def test_out_of_range_is_einval_and_keeps_the_old_value(plutos, attr, value):
    sdr = adi.Pluto(plutos.uris["bs"])
    before = getattr(sdr, attr)
    with pytest.raises(OSError) as err:
        setattr(sdr, attr, value)
    assert err.value.errno == 22  # EINVAL, as the ad9361 driver
    assert getattr(sdr, attr) == before


def test_rate_below_the_clock_chain_without_fir_is_refused(plutos):
    sdr = adi.Pluto(plutos.uris["bs"])
    chan = sdr._ctrl.find_channel("voltage0", False)
    with pytest.raises(OSError):
        chan.attrs["sampling_frequency"].value = "1000000"  # no FIR loaded: the driver cannot reach it
    chan.attrs["sampling_frequency"].value = "2500000"
    assert sdr.sample_rate == 2_500_000


def test_digital_loopback_returns_the_dac_words(plutos):
    sdr = adi.Pluto(plutos.uris["bs"])
    sdr.loopback = 1
    sdr.rx_buffer_size = 8192
    sdr.rx()
    burst = (np.arange(1000) % 64 - 32) * 256 + 1j * 512
    sdr.tx(burst.astype(np.complex64))
    got = np.concatenate([sdr.rx() for _ in range(2)])
    k = int(np.argmax(np.abs(got) > 0))
    assert np.array_equal(got[k : k + 1000], burst / 16)  # 16-bit DAC word -> 12-bit ADC word


def test_kernel_buffer_count_and_status_register(plutos):
    sdr = adi.Pluto(plutos.uris["bs"])
    sdr._rxadc.set_kernel_buffers_count(2)
    assert plutos.plutos["bs"].model.s.kernel_buffers == 2
    assert sdr._rxadc.reg_read(0x80000088) & 4 == 0
    plutos.medium.inject_overflow("bs", 1000)
    sdr.rx_buffer_size = 1024
    sdr.rx()
    assert sdr._rxadc.reg_read(0x80000088) & 4  # overflow latched
    sdr._rxadc.reg_write(0x80000088, 4)  # write one to clear
    assert sdr._rxadc.reg_read(0x80000088) & 4 == 0
