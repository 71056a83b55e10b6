"""ADALM-Pluto backend over pyadi-iio (imported lazily: the package works without libiio).

What this layer adds to ``adi.Pluto``: scaling both ways with clipping (pyadi casts to int16 and *wraps*),
the kernel buffer count set before the first receive and stale buffers flushed after every (re)configure,
TX gain from a requested power through the board's calibration, the RX-overflow / TX-underflow flags of the
HDL cores, clear errors instead of pyadi's bare exceptions, and a teardown that leaves the board at minimum
TX power. The receive clock counts delivered samples; after an overflow it is an estimate (flagged).
"""

from __future__ import annotations

import collections
import errno
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from testbed.errors import ConfigError, RadioError
from testbed.radio.base import Radio, RadioConfig, RxBlock
from testbed.radio.calibration import TxCalibration

log = logging.getLogger(__name__)

RX_FULL_SCALE = 2048.0  # AD9363 12-bit ADC: pyadi-iio rx() values span about +-2^11
TX_FULL_SCALE = 32767  # pyadi-iio tx() takes int16 (+-2^15)
TX_NOMINAL = 16384.0  # 1.0 in full-scale units -> 2^14: 6 dB head-room for OFDM peaks before clipping
STATUS_REG = 0x80000088  # ADI axi_ad9361 core status register (0x22 << 2, core space bit 31)
RX_OVERFLOW_BIT = 1 << 2  # on cf-ad9361-lpc (ADC core)
TX_UNDERFLOW_BIT = 1 << 0  # on cf-ad9361-dds-core-lpc (DAC core)
MIN_SAMPLE_RATE_HZ = 521e3  # pyadi-iio ad9364.sample_rate refuses rates below this
MAX_SAMPLE_RATE_HZ = 61.44e6  # AD9361 datasheet maximum
RF_BANDWIDTH_RANGE_HZ = (200e3, 56e6)  # AD9361 datasheet: analog filter range
TX_GAIN_RANGE_DB = (-89.75, 0.0)  # AD9361 TX attenuation 0..89.75 dB in 0.25 dB steps
TX_GAIN_STEP_DB = 0.25
AD9363_LO_RANGE_HZ = (325e6, 3.8e9)  # stock Pluto (AD9363) when the driver does not report its range
AD9363_RX_GAIN_RANGE_DB = (-3.0, 71.0)  # ad9361 driver, above 1.3 GHz, when the driver does not report it
_URI = re.compile(r"^(ip|usb|serial|local|xml):\S*$")  # libiio's context backends (iio_create_context_from_uri)
URI_FORMS = "ip:ADDRESS, usb:BUS.DEV.IF, serial:PORT,BAUD, local: or xml:PATH"
LIBIIO_TIMEOUT_S = 5.0  # libiio's network client gives up on a silent board after about this long
_DROPPED = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNABORTED, errno.EBADF)
_AVAILABLE = re.compile(r"\[\s*(-?[\d.eE+]+)\s+(-?[\d.eE+]+)\s+(-?[\d.eE+]+)\s*\]")


def quantise_tx_gain_db(gain_db: float) -> float:
    """The AD9361 TX attenuation step nearest to ``gain_db`` (not clamped to the range)."""
    return round(gain_db / TX_GAIN_STEP_DB) * TX_GAIN_STEP_DB


def check_uri(uri: object) -> str:
    """``uri`` if libiio takes it (URI_FORMS) and, for ``xml:``, the context description exists; ConfigError
    otherwise. An ``xml:`` context (``iio_genxml -u ip:... > pluto.xml``) has the attributes but no buffers."""
    if not isinstance(uri, str) or not _URI.match(uri):
        raise ConfigError(f"Pluto URI {uri!r} is not of the form {URI_FORMS}")
    if uri.startswith("xml:") and not Path(uri[4:]).is_file():
        raise ConfigError(f"Pluto URI {uri!r}: no XML context description at {uri[4:]!r}; give an existing file")
    return uri


def describe_failure(uri: str, what: str, exc: BaseException, elapsed_s: float) -> str:
    """One line saying which of the lab's failures this is: a stalled link (libiio timed out), a dropped
    connection (it reconnects next time if the board is back), a board that is gone, or the bare error."""
    code = getattr(exc, "errno", None)
    if code == errno.ETIMEDOUT or (code in _DROPPED and elapsed_s >= 0.9 * LIBIIO_TIMEOUT_S):
        why = (f"no answer for {elapsed_s:.1f} s (libiio's timeout): the link stalled or the board hung; "
               "check the cable or network, power-cycle the board if `iio_info` hangs too")  # fmt: skip
    elif code in _DROPPED:
        why = "the connection dropped (cable, network or the board's power); the next call reconnects if it is back"
    elif code in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENODEV, errno.ENOENT):
        why = f"the board is gone (nothing answers at {uri}); reconnect it and open the radio again"
    else:
        why = repr(exc)
    return f"Pluto at {uri} {what} failed: {why} [{exc!r}]"


def _import_adi() -> Any:
    try:
        import adi
    except Exception as exc:  # ImportError, or OSError when libiio cannot be loaded
        raise RadioError(
            f"pyadi-iio cannot be imported ({exc}); install Debian libiio0 with pyadi-iio==0.0.21 and "
            "pylibiio==0.25 (see docs/radio.md)"
        ) from exc
    return adi


def _range(channel: Any, attr: str, fallback: tuple[float, float]) -> tuple[float, float]:
    """Parse an IIO ``*_available`` attribute "[lo step hi]"; the fallback when absent."""
    try:
        m = _AVAILABLE.search(channel.attrs[attr].value)
    except (KeyError, AttributeError, OSError):
        m = None
    return (float(m.group(1)), float(m.group(3))) if m else fallback


class PlutoRadio(Radio):
    """One ADALM-Pluto.

    uri : always explicit (``ip:192.168.2.1``, ``usb:1.2.5``, ``xml:pluto.xml``; see check_uri); never scanned.
    calibration : TX power per board; the nominal offset when None.
    rx_buffer_samples : samples per kernel buffer (one ``rx()`` call).
    kernel_buffers : buffer count set before the first receive (the driver default, 4, serves stale data).
    flush_buffers : buffers read and discarded when streaming (re)starts.
    """

    def __init__(
        self,
        uri: str,
        calibration: TxCalibration | None = None,
        rx_buffer_samples: int = 16384,
        kernel_buffers: int = 2,
        flush_buffers: int = 3,
    ) -> None:
        super().__init__()
        check_uri(uri)
        if not 1 <= kernel_buffers <= 64 or not 0 <= flush_buffers <= 64 or not 64 <= rx_buffer_samples <= 1 << 22:
            raise ConfigError(
                f"kernel_buffers={kernel_buffers} (1..64), flush_buffers={flush_buffers} (0..64), "
                f"rx_buffer_samples={rx_buffer_samples} (64..4194304): a value is out of range"
            )
        adi = _import_adi()
        try:
            self._sdr = adi.Pluto(uri)
        except Exception as exc:  # pyadi raises a bare Exception('No device found') and drops the cause
            raise RadioError(
                f"no Pluto reachable at {uri!r}: {exc!r}; check cable/network and `iio_info -u {uri}`"
            ) from exc
        self.uri, self._cal = uri, calibration or TxCalibration()
        self._rx_buffer_samples, self._kernel_buffers, self._flush = rx_buffer_samples, kernel_buffers, flush_buffers
        self._streaming = False
        self._backlog: collections.deque[np.ndarray] = collections.deque()
        self._backlog_samples = 0
        self._fetched = 0  # samples pulled from the device since streaming started
        self._delivered = 0  # samples handed to the caller
        self._overflow_pending = False
        self._flags_readable = True
        self.overflows = 0
        self.underflows = 0
        self._tx_len: int | None = None
        self._tx_gain_db = TX_GAIN_RANGE_DB[0]

    # --- identity -------------------------------------------------------------------------------------
    def context_attrs(self) -> dict[str, str]:
        """The IIO context attributes (hw_model, hw_serial, fw_version, ad9361-phy,xo_correction, ...)."""
        try:
            return {str(k): str(v) for k, v in dict(self._sdr.ctx.attrs).items()}
        except Exception as exc:
            raise RadioError(f"cannot read context attributes from {self.uri}: {exc!r}") from exc

    @property
    def serial(self) -> str | None:
        return self.context_attrs().get("hw_serial")

    @property
    def lo_range_hz(self) -> tuple[float, float]:
        """LO tuning range the driver reports (wider in AD9364 mode)."""
        return _range(self._sdr._ctrl.find_channel("altvoltage0", True), "frequency_available", AD9363_LO_RANGE_HZ)

    @property
    def rx_gain_range_db(self) -> tuple[float, float]:
        return _range(
            self._sdr._ctrl.find_channel("voltage0", False), "hardwaregain_available", AD9363_RX_GAIN_RANGE_DB
        )

    @property
    def tx_hardwaregain_chan0(self) -> float:
        return self._tx_gain_db

    def probe(self) -> dict[str, Any]:
        """Device, firmware, ranges and current settings, read from the board (for reports and checks)."""
        sdr, attrs = self._sdr, self.context_attrs()
        try:
            current = {
                "sample_rate_hz": float(sdr.sample_rate),
                "rx_lo_hz": float(sdr.rx_lo),
                "tx_lo_hz": float(sdr.tx_lo),
                "rx_rf_bandwidth_hz": float(sdr.rx_rf_bandwidth),
                "gain_control_mode": str(sdr.gain_control_mode_chan0),
                "rx_hardwaregain_db": float(sdr.rx_hardwaregain_chan0),
                "tx_hardwaregain_db": float(sdr.tx_hardwaregain_chan0),
            }
        except Exception as exc:
            raise RadioError(f"cannot read settings from the Pluto at {self.uri}: {exc!r}") from exc
        return {
            "uri": self.uri,
            "hw_model": attrs.get("hw_model"),
            "hw_serial": attrs.get("hw_serial"),
            "fw_version": attrs.get("fw_version"),
            "phy_model": attrs.get("ad9361-phy,model"),
            "xo_correction_hz": attrs.get("ad9361-phy,xo_correction") or attrs.get("xo_correction"),
            "lo_range_hz": list(self.lo_range_hz),
            "rx_gain_range_db": list(self.rx_gain_range_db),
            "tx_gain_range_db": list(TX_GAIN_RANGE_DB),
            "sample_rate_range_hz": [MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ],
            "current": current,
        }

    # --- settings -------------------------------------------------------------------------------------
    def _apply(self, config: RadioConfig) -> None:
        rate, bw, lo = config.sample_rate_hz, config.bandwidth_hz, config.center_freq_hz
        if not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
            raise ConfigError(
                f"sample_rate_hz={rate:g} is outside {MIN_SAMPLE_RATE_HZ:g}..{MAX_SAMPLE_RATE_HZ:g} "
                "(pyadi-iio refuses lower rates); use a higher rate and decimate in software"
            )
        if not RF_BANDWIDTH_RANGE_HZ[0] <= bw <= RF_BANDWIDTH_RANGE_HZ[1]:
            raise ConfigError(
                f"rf_bandwidth_hz={bw:g} is outside {RF_BANDWIDTH_RANGE_HZ[0]:g}..{RF_BANDWIDTH_RANGE_HZ[1]:g}"
            )
        lo_lo, lo_hi = self.lo_range_hz
        if not lo_lo <= lo <= lo_hi:
            raise ConfigError(
                f"center_freq_hz={lo:g} is outside this Pluto's LO range {lo_lo:g}..{lo_hi:g} Hz "
                "(AD9364 mode widens it to 70 MHz..6 GHz; see firmware_cfg/README.md)"
            )
        gain_lo, gain_hi = self.rx_gain_range_db
        if config.rx_gain_mode == "manual" and not gain_lo <= config.rx_gain_db <= gain_hi:
            raise ConfigError(f"rx_gain_db={config.rx_gain_db:g} is outside {gain_lo:g}..{gain_hi:g} dB at this LO")
        offset = self._cal.power_at_0db_dbm(self.serial, lo)
        tx_gain = quantise_tx_gain_db(config.tx_power_dbm - offset)
        if not TX_GAIN_RANGE_DB[0] <= tx_gain <= TX_GAIN_RANGE_DB[1]:
            raise ConfigError(
                f"tx_power_dbm={config.tx_power_dbm:g} needs hardware gain {tx_gain:g} dB; this board gives "
                f"{offset + TX_GAIN_RANGE_DB[0]:.1f}..{offset:.1f} dBm at {lo:g} Hz"
            )
        sdr = self._sdr
        self._stop_streaming()
        try:
            sdr.sample_rate = int(rate)
            sdr.rx_rf_bandwidth = int(bw)
            sdr.tx_rf_bandwidth = int(bw)
            sdr.rx_lo = int(lo)
            sdr.tx_lo = int(lo)
            sdr.gain_control_mode_chan0 = config.rx_gain_mode
            if config.rx_gain_mode == "manual":  # pyadi ignores this setter in AGC modes: set it only here
                sdr.rx_hardwaregain_chan0 = float(config.rx_gain_db)
            sdr.tx_hardwaregain_chan0 = float(tx_gain)
            sdr.tx_cyclic_buffer = False
            sdr.rx_buffer_size = self._rx_buffer_samples
        except Exception as exc:
            raise RadioError(f"Pluto at {self.uri} refused the configuration {config}: {exc!r}") from exc
        self._tx_gain_db = float(tx_gain)

    def _set_tx_power(self, tx_power_dbm: float) -> float:
        """Only ``tx_hardwaregain_chan0``: the power through the calibration, on the 0.25 dB step, clamped to
        -89.75..0 dB (logged); returns the power of the gain the driver reads back (streaming goes on)."""
        offset = self._cal.power_at_0db_dbm(self.serial, self.config.center_freq_hz)
        wanted = quantise_tx_gain_db(tx_power_dbm - offset)
        gain = min(max(wanted, TX_GAIN_RANGE_DB[0]), TX_GAIN_RANGE_DB[1])
        if gain != wanted:
            log.warning(
                "Pluto %s: %.2f dBm needs TX gain %.2f dB; clamped to %.2f dB (this board gives %.1f..%.1f dBm)",
                self.uri, tx_power_dbm, wanted, gain, offset + TX_GAIN_RANGE_DB[0], offset,
            )  # fmt: skip
        try:
            self._sdr.tx_hardwaregain_chan0 = float(gain)
            applied = float(self._sdr.tx_hardwaregain_chan0)
        except Exception as exc:
            raise RadioError(f"Pluto at {self.uri} refused TX gain {gain:g} dB: {exc!r}") from exc
        self._tx_gain_db = applied
        return offset + applied

    # --- streaming --------------------------------------------------------------------------------------
    def _stop_streaming(self) -> None:
        """Destroy buffers so the next receive starts fresh (settings changed, stale samples dropped)."""
        if self._streaming:
            self._sdr.rx_destroy_buffer()
        self._streaming = False
        self._backlog.clear()
        self._backlog_samples = 0

    def _start_streaming(self) -> None:
        t0 = time.monotonic()
        try:
            self._sdr._rxadc.set_kernel_buffers_count(self._kernel_buffers)  # before the buffer exists
            self._streaming = True
            for _ in range(self._flush):
                self._sdr.rx()  # stale data from before the (re)configure
        except Exception as exc:
            raise RadioError(describe_failure(self.uri, "start of receiving", exc, time.monotonic() - t0)) from exc
        self._read_flags()  # flushing may overflow; that loss is not the caller's

    def _read_flags(self) -> tuple[bool, bool]:
        """(rx overflow, tx underflow) since the last read; clears them (write-one-to-clear). Without
        register access (some IIOD set-ups refuse it) the flags read False after one warning."""
        if not self._flags_readable:
            return False, False
        flags = []
        try:
            for dev, bit in ((self._sdr._rxadc, RX_OVERFLOW_BIT), (self._sdr._txdac, TX_UNDERFLOW_BIT)):
                value = dev.reg_read(STATUS_REG)
                if value & bit:
                    dev.reg_write(STATUS_REG, bit)
                flags.append(bool(value & bit))
        except Exception as exc:
            self._flags_readable = False
            log.warning("Pluto %s: cannot read the status register (%r); overflows go undetected", self.uri, exc)
            return False, False
        return flags[0], flags[1]

    def _fetch(self) -> None:
        if not self._streaming:
            self._start_streaming()
        t0 = time.monotonic()
        try:
            raw = np.asarray(self._sdr.rx())
        except Exception as exc:
            raise RadioError(describe_failure(self.uri, "receive", exc, time.monotonic() - t0)) from exc
        overflow, underflow = self._read_flags()
        if overflow:
            self.overflows += 1
            self._overflow_pending = True
            log.warning("Pluto %s: RX overflow, samples were lost before sample %d", self.uri, self._fetched)
        if underflow:  # the DAC runs dry after every burst: expected when sending bursts, so counted, not warned
            self.underflows += 1
            log.log(logging.INFO if self.underflows == 1 else logging.DEBUG,
                    "Pluto %s: TX underflow (the DAC ran dry after a burst; %d so far, in .underflows)", self.uri,
                    self.underflows)  # fmt: skip
        iq = (raw / RX_FULL_SCALE).astype(np.complex64)
        self._backlog.append(iq)
        self._backlog_samples += iq.size
        self._fetched += iq.size

    def _receive(self, num_samples: int) -> RxBlock:
        while self._backlog_samples < num_samples:
            self._fetch()
        parts, need = [], num_samples
        while need:
            head = self._backlog[0]
            if head.size <= need:
                parts.append(self._backlog.popleft())
                need -= head.size
            else:
                parts.append(head[:need])
                self._backlog[0] = head[need:]
                need = 0
        self._backlog_samples -= num_samples
        start, self._delivered = self._delivered, self._delivered + num_samples
        overflow, self._overflow_pending = self._overflow_pending, False
        return RxBlock(np.concatenate(parts), start, overflow)

    def _transmit(self, iq: np.ndarray, at_sample: int | None) -> int:
        """No timed TX on a Pluto: the burst leaves when the receive clock has reached ``at_sample`` (to
        within one buffer; samples fetched while waiting are kept for ``receive``), or now if it has passed."""
        if at_sample is not None:
            limit = self._fetched + int(10 * self.config.sample_rate_hz)
            if at_sample > limit:
                raise RadioError(
                    f"at_sample={at_sample} is more than 10 s ahead of the receive clock ({self._fetched})"
                )
            while self._fetched < at_sample:
                self._fetch()
        scaled = iq * TX_NOMINAL
        burst = np.clip(np.round(scaled.real), -TX_FULL_SCALE - 1, TX_FULL_SCALE) + 1j * np.clip(
            np.round(scaled.imag), -TX_FULL_SCALE - 1, TX_FULL_SCALE
        )
        t0 = time.monotonic()
        try:
            if self._tx_len is not None and self._tx_len != burst.size:
                self._sdr.tx_destroy_buffer()  # pyadi keeps the first buffer's length
            self._tx_len = burst.size
            self._sdr.tx(burst)
        except Exception as exc:
            self._tx_len = None
            self._sdr.tx_destroy_buffer()  # a buffer on a dropped connection is dead: the next push makes one
            raise RadioError(describe_failure(self.uri, "transmit", exc, time.monotonic() - t0)) from exc
        return self._fetched

    def _close(self) -> None:
        """Minimum TX power first (so a failing teardown still leaves the board quiet), then buffers."""
        steps = (
            ("minimum TX gain", lambda: setattr(self._sdr, "tx_hardwaregain_chan0", TX_GAIN_RANGE_DB[0])),
            ("destroy TX buffer", self._sdr.tx_destroy_buffer),
            ("destroy RX buffer", self._sdr.rx_destroy_buffer),
        )
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # keep tearing down; report what failed
                log.error("Pluto %s teardown: %s failed: %r", self.uri, what, exc)
        self._tx_gain_db = TX_GAIN_RANGE_DB[0]
        self._streaming = False
        del self._sdr
