"""The ADALM-Pluto as libiio sees it: devices, channels, attributes, their value formats, ranges and errors.

No sockets and no samples here: ``PlutoModel.read``/``write`` take libiio's addressing (device, kind, channel,
attribute) and return the text the Pluto's drivers (ad9361 and the axi-ad9361 HDL cores, firmware v0.38)
would, or raise ``IioErrno`` with the errno the driver gives (EINVAL for an out-of-range value, ENOENT for an
unknown name). ``context_xml`` is the document a 0.2x client validates against libiio's inline DTD.
Rates follow the driver's rule that below 25 MHz / 12 the baseband needs the FIR decimating by 4 or 2.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

LO_RANGE_HZ = (325_000_000, 3_800_000_000)  # AD9363 (stock Pluto firmware)
RX_GAIN_RANGE_DB = (-3, 71)  # ad9361 full gain table, 1.3-4 GHz (the driver reports the LO's table)
TX_ATTEN_STEP_MDB = 250  # AD9361 TX attenuation step 0.25 dB, 0..89.75 dB
TX_ATTEN_MAX_MDB = 89_750
RX_BW_RANGE_HZ = (200_000, 56_000_000)
TX_BW_RANGE_HZ = (200_000, 40_000_000)
MIN_RATE_NO_FIR_HZ = 25_000_000 // 12  # 2083333: the lowest rate the clock chain reaches without the FIR
MAX_RATE_HZ = 61_440_000
GAIN_MODES = ("manual", "fast_attack", "slow_attack", "hybrid")
STATUS_REG = 0x80000088  # axi_ad9361 status; bit 2 RX overflow (ADC core), bit 0 TX underflow (DAC core)
RX_OVERFLOW_BIT, TX_UNDERFLOW_BIT = 1 << 2, 1 << 0
NOMINAL_XO_HZ = 40_000_000
PHY, RXDEV, TXDEV = "ad9361-phy", "cf-ad9361-lpc", "cf-ad9361-dds-core-lpc"
DEVICE_IDS = {PHY: "iio:device0", TXDEV: "iio:device2", RXDEV: "iio:device3"}
RX_FORMAT, TX_FORMAT = "le:S12/16>>0", "le:S16/16>>0"
CONTEXT_DTD = (  # libiio 0.2x validates the context against this DTD (the one its own backends emit)
    '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE context [<!ELEMENT context (device | context-attribute)*>'
    "<!ELEMENT context-attribute EMPTY><!ELEMENT device (channel | attribute | debug-attribute | "
    "buffer-attribute)*><!ELEMENT channel (scan-element?, attribute*)><!ELEMENT attribute EMPTY>"
    "<!ELEMENT scan-element EMPTY><!ELEMENT debug-attribute EMPTY><!ELEMENT buffer-attribute EMPTY>"
    "<!ATTLIST context name CDATA #REQUIRED version-major CDATA #REQUIRED version-minor CDATA #REQUIRED "
    "version-git CDATA #REQUIRED description CDATA #IMPLIED><!ATTLIST context-attribute name CDATA #REQUIRED "
    "value CDATA #REQUIRED><!ATTLIST device id CDATA #REQUIRED name CDATA #IMPLIED label CDATA #IMPLIED>"
    "<!ATTLIST channel id CDATA #REQUIRED type (input|output) #REQUIRED name CDATA #IMPLIED>"
    "<!ATTLIST scan-element index CDATA #REQUIRED format CDATA #REQUIRED scale CDATA #IMPLIED>"
    "<!ATTLIST attribute name CDATA #REQUIRED filename CDATA #IMPLIED><!ATTLIST debug-attribute name CDATA "
    "#REQUIRED><!ATTLIST buffer-attribute name CDATA #REQUIRED>]>"
)


class IioErrno(Exception):
    """A driver refusal: ``code`` is the positive errno the client receives negated."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(f"{errno.errorcode.get(code, code)}: {why}")
        self.code = code


def _number(text: str, what: str) -> float:
    """Parse a value as the kernel's IIO parser would (leading number, unit text ignored)."""
    head = text.strip().split()
    try:
        value = float(head[0]) if head else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise IioErrno(errno.EINVAL, f"{what}: {text!r} is not a number")
    return value


def _db(value_db: float) -> str:
    """IIO_VAL_INT_PLUS_MICRO_DB formatting, e.g. ``-10.250000 dB``."""
    return f"{value_db:.6f} dB"


@dataclass
class PlutoSettings:
    """What the drivers hold; ``changed`` is called after every accepted write (the air re-reads gains)."""

    rx_lo_hz: int = 2_400_000_000
    tx_lo_hz: int = 2_450_000_000
    sample_rate_hz: int = 30_720_000
    rx_bw_hz: int = 18_000_000
    tx_bw_hz: int = 18_000_000
    gain_mode: str = "slow_attack"
    rx_gain_db: int = 71
    tx_atten_mdb: int = 10_000
    fir_enabled: bool = False
    fir_decimation: int = 0  # 0: no FIR configuration loaded
    fir_taps: int = 0
    loopback: int = 0  # ad9361 BIST loopback: 0 off, 1 digital (TX data path to RX), 2 RF
    xo_hz: int = NOMINAL_XO_HZ
    kernel_buffers: int = 4
    registers: dict[str, int] = field(default_factory=lambda: {RXDEV: 0, TXDEV: 0})
    reg_addr: dict[str, int] = field(default_factory=lambda: {PHY: 0, RXDEV: 0, TXDEV: 0})
    dds: dict[str, dict[str, str]] = field(
        default_factory=lambda: {
            f"altvoltage{k}": {"raw": "1", "frequency": "9279985", "scale": "0.250000", "phase": "90000"}
            for k in range(4)
        }
    )

    @property
    def tx_gain_db(self) -> float:
        return -self.tx_atten_mdb / 1000.0


Getter = Callable[[], str]
Setter = Callable[[str], None]


class PlutoModel:
    """One board's drivers. ``serial`` names it (hw_serial); ``on_change`` runs after each accepted write."""

    def __init__(self, serial: str, on_change: Callable[[], None] = lambda: None) -> None:
        self.serial = serial
        self.s = PlutoSettings()
        self._on_change = on_change
        self.agc_gain_db: Callable[[], float] = lambda: float(RX_GAIN_RANGE_DB[1])  # the air says what AGC chose
        s = self.s
        self._attrs: dict[tuple[str, str, str | None, str], tuple[Getter, Setter | None]] = {}
        phy_in, phy_out = ("input", "voltage0"), ("output", "voltage0")
        for kind_chan, bw_range, bw_key in (
            (phy_in, RX_BW_RANGE_HZ, "rx_bw_hz"),
            (phy_out, TX_BW_RANGE_HZ, "tx_bw_hz"),
        ):
            self._chan(PHY, *kind_chan, "sampling_frequency", lambda: str(s.sample_rate_hz), self._set_rate)
            self._chan(PHY, *kind_chan, "sampling_frequency_available", self._rates_available)
            self._chan(PHY, *kind_chan, "rf_bandwidth", lambda k=bw_key: str(getattr(s, k)),
                       lambda v, k=bw_key, r=bw_range: self._set_bw(k, r, v))  # fmt: skip
            self._chan(PHY, *kind_chan, "rf_bandwidth_available", lambda r=bw_range: f"[{r[0]} 1 {r[1]}]")
            self._chan(PHY, *kind_chan, "filter_fir_en", lambda: str(int(s.fir_enabled)), self._set_fir_en)
        self._chan(PHY, *phy_in, "hardwaregain", self._rx_gain, self._set_rx_gain)
        self._chan(PHY, *phy_in, "hardwaregain_available", lambda: "[{} 1 {}]".format(*RX_GAIN_RANGE_DB))
        self._chan(PHY, *phy_in, "gain_control_mode", lambda: s.gain_mode, self._set_gain_mode)
        self._chan(PHY, *phy_in, "gain_control_mode_available", lambda: " ".join(GAIN_MODES))
        self._chan(PHY, *phy_in, "rssi", lambda: _db(max(0.0, 100.0 - self._rx_gain_value())))
        self._chan(PHY, *phy_in, "rf_port_select", lambda: "A_BALANCED", self._fixed("A_BALANCED"))
        self._chan(PHY, *phy_in, "rf_port_select_available", lambda: "A_BALANCED B_BALANCED C_BALANCED")
        self._chan(PHY, *phy_out, "hardwaregain", lambda: _db(s.tx_gain_db), self._set_tx_gain)
        self._chan(PHY, *phy_out, "hardwaregain_available", lambda: "[-89.750000 0.250000 0.000000]")
        self._chan(PHY, *phy_out, "rf_port_select", lambda: "A", self._fixed("A"))
        self._chan(PHY, *phy_out, "rf_port_select_available", lambda: "A B")
        for chan, key in (("altvoltage0", "rx_lo_hz"), ("altvoltage1", "tx_lo_hz")):
            self._chan(PHY, "output", chan, "frequency", lambda k=key: str(getattr(s, k)),
                       lambda v, k=key: self._set_lo(k, v))  # fmt: skip
            self._chan(PHY, "output", chan, "frequency_available", lambda: "[{} 1 {}]".format(*LO_RANGE_HZ))
            self._chan(PHY, "output", chan, "powerdown", lambda: "0", self._fixed("0"))
        self._chan(PHY, "input", "out", "voltage_filter_fir_en", lambda: str(int(s.fir_enabled)), self._set_fir_en)
        self._chan(PHY, "input", "temp0", "input", lambda: "35000")
        self._dev(PHY, "filter_fir_config", self._fir_summary, self._set_fir_config)
        self._dev(PHY, "rx_path_rates", lambda: self._path_rates("RX", "ADC", "R2", "R1", "RF", "RXSAMP"))
        self._dev(PHY, "tx_path_rates", lambda: self._path_rates("TX", "DAC", "T2", "T1", "TF", "TXSAMP"))
        self._dev(PHY, "xo_correction", lambda: str(s.xo_hz), self._set_xo)
        self._dev(PHY, "xo_correction_available", lambda: "[39992000 1 40008000]")
        self._dev(PHY, "ensm_mode", lambda: "fdd", self._fixed("fdd"))
        self._dev(PHY, "ensm_mode_available", lambda: "sleep wait alert fdd pinctrl pinctrl_fdd_indep")
        self._dev(PHY, "calib_mode", lambda: "auto", self._fixed("auto"))
        self._dev(PHY, "calib_mode_available", lambda: "auto manual manual_tx_quad tx_quad rf_dc_offs rssi_gain_step")
        self._dev(PHY, "trx_rate_governor", lambda: "nominal", self._fixed("nominal"))
        self._debug(PHY, "loopback", lambda: str(s.loopback), self._set_loopback)
        self._debug(PHY, "initialize", lambda: "0", self._fixed_any)
        for dev in (PHY, RXDEV, TXDEV):
            self._debug(
                dev, "direct_reg_access", lambda d=dev: self._reg_read(d), lambda v, d=dev: self._reg_write(d, v)
            )
        for dev, kind in ((RXDEV, "input"), (TXDEV, "output")):
            for chan in ("voltage0", "voltage1"):
                self._chan(dev, kind, chan, "sampling_frequency", lambda: str(s.sample_rate_hz))
                self._chan(dev, kind, chan, "sampling_frequency_available",
                           lambda: f"{s.sample_rate_hz} {s.sample_rate_hz // 8}")  # fmt: skip
            self._buffer(dev, "data_available", lambda: "0")
            self._buffer(dev, "length_align_bytes", lambda: "8")
            self._buffer(dev, "watermark", lambda: "2048")
        self._chan(RXDEV, "input", "voltage0", "calibphase", lambda: "0.000000", self._fixed_any)
        self._chan(RXDEV, "input", "voltage0", "calibscale", lambda: "1.000000", self._fixed_any)
        for chan, values in s.dds.items():
            for attr in values:
                self._chan(TXDEV, "output", chan, attr, lambda c=chan, a=attr: s.dds[c][a],
                           lambda v, c=chan, a=attr: self._set_dds(c, a, v))  # fmt: skip

    # --- registry -------------------------------------------------------------------------------------
    def _chan(self, dev: str, kind: str, chan: str, attr: str, get: Getter, put: Setter | None = None) -> None:
        self._attrs[(dev, kind, chan, attr)] = (get, put)

    def _dev(self, dev: str, attr: str, get: Getter, put: Setter | None = None) -> None:
        self._attrs[(dev, "device", None, attr)] = (get, put)

    def _debug(self, dev: str, attr: str, get: Getter, put: Setter | None = None) -> None:
        self._attrs[(dev, "debug", None, attr)] = (get, put)

    def _buffer(self, dev: str, attr: str, get: Getter) -> None:
        self._attrs[(dev, "buffer", None, attr)] = (get, None)

    def _lookup(self, dev: str, kind: str, chan: str | None, attr: str) -> tuple[Getter, Setter | None]:
        entry = self._attrs.get((dev, kind, chan, attr))
        if entry is None:
            where = f"{dev} {kind} {chan or ''}".rstrip()
            raise IioErrno(errno.ENOENT, f"{where} has no attribute {attr!r}")
        return entry

    def read(self, dev: str, kind: str, chan: str | None, attr: str) -> str:
        """kind : "device" | "debug" | "buffer" | "input" | "output" (a channel's direction)."""
        return self._lookup(dev, kind, chan, attr)[0]()

    def write(self, dev: str, kind: str, chan: str | None, attr: str, value: str) -> None:
        put = self._lookup(dev, kind, chan, attr)[1]
        if put is None:
            raise IioErrno(errno.EACCES, f"{attr} of {dev} is read-only")
        put(value.rstrip("\x00").strip())
        self._on_change()

    # --- the XML context --------------------------------------------------------------------------------
    def context_attrs(self) -> dict[str, str]:
        return {
            "hw_model": "Analog Devices PlutoSDR Rev.B (Z7010-AD9363A)",
            "hw_model_variant": "0",
            "hw_serial": self.serial,
            "fw_version": "v0.38",
            "ad9361-phy,xo_correction": str(self.s.xo_hz),
            "ad9361-phy,model": "ad9363a",
            "local,kernel": "5.15.0-testbed-virtual",
            "description": "testbed virtual Pluto (testbed/emu)",
        }

    def context_xml(self) -> str:
        parts = [CONTEXT_DTD, '<context name="network" version-major="0" version-minor="24" version-git="testbed" '
                 'description="testbed virtual ADALM-Pluto">']  # fmt: skip
        parts += [
            f"<context-attribute name={quoteattr(k)} value={quoteattr(v)} />" for k, v in self.context_attrs().items()
        ]
        for dev, dev_id in DEVICE_IDS.items():
            parts.append(f'<device id="{dev_id}" name="{dev}">')
            chans: dict[tuple[str, str], list[str]] = {}
            for d, kind, chan, attr in self._attrs:
                if d == dev and chan is not None:
                    chans.setdefault((chan, kind), []).append(attr)
            for (chan, kind), attrs in chans.items():
                name = (
                    {"altvoltage0": ' name="RX_LO"', "altvoltage1": ' name="TX_LO"'}.get(chan, "") if dev == PHY else ""
                )
                parts.append(f'<channel id="{chan}"{name} type="{kind}">')
                if dev in (RXDEV, TXDEV) and chan in ("voltage0", "voltage1"):
                    fmt = RX_FORMAT if dev == RXDEV else TX_FORMAT
                    parts.append(f'<scan-element index="{chan[-1]}" format={quoteattr(fmt)} />')
                prefix = "in" if kind == "input" else "out"
                parts += [f'<attribute name="{a}" filename="{prefix}_{chan}_{a}" />' for a in attrs]
                parts.append("</channel>")
            for d, kind, chan, attr in self._attrs:
                if d == dev and chan is None:
                    tag = {"device": "attribute", "debug": "debug-attribute", "buffer": "buffer-attribute"}[kind]
                    parts.append(f'<{tag} name="{attr}" />')
            parts.append("</device>")
        parts.append("</context>")
        return "".join(parts)

    # --- driver rules -----------------------------------------------------------------------------------
    def _fixed(self, allowed: str) -> Setter:
        def put(value: str) -> None:
            if value != allowed:
                raise IioErrno(errno.EINVAL, f"only {allowed!r} is modelled, got {value!r}")

        return put

    def _fixed_any(self, value: str) -> None:
        _number(value, "value")

    def _min_rate(self) -> int:
        return (
            MIN_RATE_NO_FIR_HZ // self.s.fir_decimation
            if self.s.fir_enabled and self.s.fir_decimation
            else MIN_RATE_NO_FIR_HZ
        )

    def _rates_available(self) -> str:
        return f"[{self._min_rate()} 1 {MAX_RATE_HZ}]"

    def _set_rate(self, value: str) -> None:
        rate = int(_number(value, "sampling_frequency"))
        if not self._min_rate() <= rate <= MAX_RATE_HZ:
            need = " (below 2083333 Hz load and enable a decimating FIR first)" if rate < MIN_RATE_NO_FIR_HZ else ""
            raise IioErrno(errno.EINVAL, f"sampling_frequency {rate} outside {self._rates_available()}{need}")
        self.s.sample_rate_hz = rate

    def _path_rates(self, side: str, conv: str, h2: str, h1: str, hf: str, samp: str) -> str:
        """``BBPLL:... DAC:... T2:... T1:... TF:... TXSAMP:...`` with the chain the rate needs (pyadi-iio
        parses fields 1 and 5 below 2.08 MS/s to decide whether the FIR fits)."""
        rate = self.s.sample_rate_hz
        fir = self.s.fir_decimation if self.s.fir_enabled and self.s.fir_decimation else 1
        tf = rate * fir
        conv_rate = tf * 4 if tf * 4 <= MAX_RATE_HZ * 2 else tf * 2
        bbpll = conv_rate * max(1, 2 ** int(math.log2(max(1.0, 715e6 / conv_rate)) + 1))
        return f"BBPLL:{bbpll} {conv}:{conv_rate} {h2}:{conv_rate // 2} {h1}:{conv_rate // 4} {hf}:{tf} {samp}:{rate}"

    def _set_fir_en(self, value: str) -> None:
        on = bool(int(_number(value, "filter_fir_en")))
        if on and not self.s.fir_decimation:
            raise IioErrno(errno.EINVAL, "no FIR configuration loaded (write filter_fir_config first)")
        if not on and self.s.sample_rate_hz < MIN_RATE_NO_FIR_HZ:
            raise IioErrno(errno.EINVAL, f"the FIR is needed at {self.s.sample_rate_hz} Hz; raise the rate first")
        self.s.fir_enabled = on

    def _set_fir_config(self, text: str) -> None:
        """``RX 3 GAIN -6 DEC 4`` / ``TX 3 GAIN 0 INT 4`` and one ``rx,tx`` tap pair per line."""
        dec, taps = 0, 0
        for line in text.splitlines():
            words = line.replace(",", " ").split()
            if words[:1] == ["RX"] and "DEC" in words:
                dec = int(_number(words[words.index("DEC") + 1], "DEC"))
            elif words and all(w.lstrip("-").isdigit() for w in words):
                taps += 1
        if dec not in (1, 2, 4) or taps == 0 or taps > 128 or taps % 16:
            raise IioErrno(errno.EINVAL, f"FIR config with DEC {dec} and {taps} taps (want DEC 1|2|4, 16..128 taps)")
        if self.s.fir_enabled:
            raise IioErrno(errno.EBUSY, "disable the FIR before loading a new one")
        self.s.fir_decimation, self.s.fir_taps = dec, taps

    def _fir_summary(self) -> str:
        """The driver reads back a summary, not the file (a client's attribute buffer is about 1 KiB)."""
        if not self.s.fir_decimation:
            return "FIR Rx: 0,0 Tx: 0,0"
        d = self.s.fir_decimation
        return f"FIR Rx: {self.s.fir_taps},{d} Tx: {self.s.fir_taps},{d}"

    def _set_bw(self, key: str, limits: tuple[int, int], value: str) -> None:
        """The driver clamps the analog filter bandwidth into its range (no error)."""
        bw = int(_number(value, "rf_bandwidth"))
        setattr(self.s, key, min(max(bw, limits[0]), limits[1]))

    def _set_lo(self, key: str, value: str) -> None:
        lo = int(_number(value, "frequency"))
        if not LO_RANGE_HZ[0] <= lo <= LO_RANGE_HZ[1]:
            raise IioErrno(errno.EINVAL, f"LO {lo} Hz outside [{LO_RANGE_HZ[0]} {LO_RANGE_HZ[1]}]")
        setattr(self.s, key, lo)

    def _rx_gain_value(self) -> float:
        if self.s.gain_mode == "manual":
            return float(self.s.rx_gain_db)
        return float(min(max(round(self.agc_gain_db()), RX_GAIN_RANGE_DB[0]), RX_GAIN_RANGE_DB[1]))

    def _rx_gain(self) -> str:
        return _db(self._rx_gain_value())

    def _set_rx_gain(self, value: str) -> None:
        """Whole dB (the gain table's step; the fraction is dropped as the driver does); manual mode only."""
        gain = _number(value, "hardwaregain")
        if self.s.gain_mode != "manual":
            raise IioErrno(errno.EINVAL, f"hardwaregain is set by the AGC in {self.s.gain_mode}; select manual first")
        if not RX_GAIN_RANGE_DB[0] <= gain <= RX_GAIN_RANGE_DB[1]:
            raise IioErrno(errno.EINVAL, f"RX gain {gain:g} dB outside [{RX_GAIN_RANGE_DB[0]} {RX_GAIN_RANGE_DB[1]}]")
        self.s.rx_gain_db = int(gain)

    def _set_gain_mode(self, value: str) -> None:
        if value not in GAIN_MODES:
            raise IioErrno(errno.EINVAL, f"gain_control_mode {value!r} not in {' '.join(GAIN_MODES)}")
        self.s.gain_mode = value

    def _set_tx_gain(self, value: str) -> None:
        """Attenuation in mdB truncated to the 0.25 dB step; a positive gain or more than 89.75 dB is EINVAL."""
        gain = _number(value, "hardwaregain")
        atten = round(-gain * 1000.0)
        if gain > 0 or atten > TX_ATTEN_MAX_MDB:
            raise IioErrno(errno.EINVAL, f"TX gain {gain:g} dB outside [-89.75 0]")
        self.s.tx_atten_mdb = atten // TX_ATTEN_STEP_MDB * TX_ATTEN_STEP_MDB

    def _set_xo(self, value: str) -> None:
        xo = int(_number(value, "xo_correction"))
        if not 39_992_000 <= xo <= 40_008_000:
            raise IioErrno(errno.EINVAL, f"xo_correction {xo} outside [39992000 40008000]")
        self.s.xo_hz = xo

    def _set_loopback(self, value: str) -> None:
        mode = int(_number(value, "loopback"))
        if mode not in (0, 1, 2):
            raise IioErrno(errno.EINVAL, f"loopback {mode} (0 off, 1 digital, 2 RF)")
        self.s.loopback = mode

    def _set_dds(self, chan: str, attr: str, value: str) -> None:
        _number(value, f"{chan} {attr}")
        self.s.dds[chan][attr] = value

    def _reg_read(self, dev: str) -> str:
        addr = self.s.reg_addr[dev]
        return f"0x{self.s.registers.get(dev, 0) if addr == STATUS_REG else 0:X}"

    def _reg_write(self, dev: str, value: str) -> None:
        """``ADDR`` selects the register to read; ``ADDR VALUE`` writes (the status bits are write-one-to-clear)."""
        try:
            words = [int(w, 0) for w in value.split()]
        except ValueError as exc:
            raise IioErrno(errno.EINVAL, f"direct_reg_access {value!r}: want 0xADDR [0xVALUE]") from exc
        if not 1 <= len(words) <= 2:
            raise IioErrno(errno.EINVAL, f"direct_reg_access {value!r}: want 0xADDR [0xVALUE]")
        self.s.reg_addr[dev] = words[0]
        if len(words) == 2 and words[0] == STATUS_REG and dev in self.s.registers:
            self.s.registers[dev] &= ~words[1]

    def raise_flag(self, dev: str, bit: int) -> None:
        """Latch a status bit (RX overflow on the ADC core, TX underflow on the DAC core)."""
        self.s.registers[dev] |= bit
