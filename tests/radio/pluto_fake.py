"""A stand-in for the ``adi`` module (pyadi-iio) that behaves like a Pluto where it matters to the backend:
int-only LO setters, the 521 kS/s floor, int16 wrap-around in tx(), W1C status registers, kernel buffers
that must be sized before the first rx(), TX gain only in -89.75..0 dB and in 0.25 dB steps, and the bare
``Exception('No device found')``."""

from __future__ import annotations

import types
from dataclasses import dataclass, field

import numpy as np

STATUS = 0x80000088


@dataclass
class _Attr:
    value: str


@dataclass
class _Channel:
    attrs: dict


class _Ctrl:
    def __init__(self, lo_range="[325000000 1 3800000000]"):
        self._chans = {
            ("altvoltage0", True): _Channel({"frequency_available": _Attr(lo_range)}),
            ("voltage0", False): _Channel({"hardwaregain_available": _Attr("[-3 1 71]")}),
        }

    def find_channel(self, name, output=False):
        return self._chans[(name, output)]


@dataclass
class _Core:
    status: int = 0
    kernel_buffers: int | None = None
    log: list = field(default_factory=list)
    buffer_exists: bool = False

    def reg_read(self, reg):
        assert reg == STATUS
        return self.status

    def reg_write(self, reg, value):
        assert reg == STATUS
        self.status &= ~value  # write one to clear
        self.log.append(("w1c", value))

    def set_kernel_buffers_count(self, count):
        if self.buffer_exists:
            raise OSError(16, "Device or resource busy")  # libiio refuses once the buffer exists
        self.kernel_buffers = count


class FakePluto:
    """Records what the backend did; ``rx()`` returns a ramp of 12-bit samples so order is checkable."""

    instances: list[FakePluto] = []
    absent_uris = {"ip:192.168.9.9"}

    def __init__(self, uri=""):
        if uri in self.absent_uris:
            raise Exception("No device found")
        self.uri = uri
        self.ctx = types.SimpleNamespace(
            attrs={
                "hw_model": "Analog Devices PlutoSDR Rev.C (Z7010-AD9363A)",
                "hw_serial": "fake01",
                "fw_version": "v0.38",
            }
        )
        self._ctrl = _Ctrl()
        self._rxadc, self._txdac = _Core(), _Core()
        self.sample_rate = 30_720_000
        self.rx_lo = self.tx_lo = 2_400_000_000
        self.rx_rf_bandwidth = self.tx_rf_bandwidth = 18_000_000
        self.gain_control_mode_chan0 = "slow_attack"
        self.rx_hardwaregain_chan0 = 10.0
        self.tx_hardwaregain_chan0 = -10.0
        self.tx_cyclic_buffer = False
        self.rx_buffer_size = 1024
        self.rx_calls = 0
        self.sent: list[np.ndarray] = []
        self.calls: list[str] = []
        self.overflow_on_call: set[int] = set()
        FakePluto.instances.append(self)

    def __setattr__(self, name, value):
        if name in ("rx_lo", "tx_lo", "rx_rf_bandwidth", "tx_rf_bandwidth") and not isinstance(value, int):
            raise Exception("Value must be an int")  # pyadi-iio _set_iio_attr_int
        if name == "sample_rate" and value < 521e3:
            raise ValueError("Error: Does not currently support sample rates below 521e3")
        if name in ("rx_hardwaregain_chan0", "tx_hardwaregain_chan0") and not isinstance(value, float):
            raise Exception("Value must be a float")
        if name == "tx_hardwaregain_chan0" and hasattr(self, "calls"):
            if not -89.75 <= value <= 0.0:
                raise OSError(22, "Invalid argument")  # the ad9361 driver refuses attenuation outside 0..89.75 dB
            value = -(round(-value * 1000) // 250 * 250) / 1000  # the driver keeps whole 0.25 dB steps
            self.calls.append(f"tx_gain={value}")
        object.__setattr__(self, name, value)

    def rx(self):
        self._rxadc.buffer_exists = True
        self.rx_calls += 1
        if self.rx_calls in self.overflow_on_call:
            self._rxadc.status |= 1 << 2
        n = self.rx_buffer_size
        base = (self.rx_calls - 1) * n
        ramp = (np.arange(base, base + n) % 4096) - 2048
        return ramp.astype(np.complex128) + 1j * 1024.0

    def tx(self, data):
        data = np.asarray(data)
        # pyadi casts each part with astype(int16): out-of-range values wrap. Record what the DAC would get.
        i = np.real(data).astype(np.int64).astype(np.int16)
        q = np.imag(data).astype(np.int64).astype(np.int16)
        self.sent.append(i + 1j * q)
        self.calls.append(f"tx({data.size})")

    def rx_destroy_buffer(self):
        self._rxadc.buffer_exists = False
        self.calls.append("rx_destroy")

    def tx_destroy_buffer(self):
        self.calls.append("tx_destroy")


def module() -> types.ModuleType:
    """A fresh fake ``adi`` module."""
    FakePluto.instances = []
    mod = types.ModuleType("adi")
    mod.Pluto = FakePluto
    return mod
