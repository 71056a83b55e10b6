"""The one Radio interface every backend implements (Pluto, loopback, hub client, SigMF replay).

Samples cross this interface as complex64 in *full-scale units*: on receive, 1.0 is the ADC's full scale; on
transmit, 1.0 is the nominal level (a unit-power burst radiates the configured ``tx_power_dbm``) and a
backend with a real DAC keeps head-room above it (Pluto maps 1.0 to 2^14 of +-2^15). Time is a sample count
on the radio's own receive clock: ``receive`` returns where its block starts, ``transmit`` says where its
burst starts. Read-only properties carry pyadi-iio's names (``rx_lo``, ``sample_rate``...) so lab scripts
read the same; settings change only through ``configure`` so no setter can silently do nothing, and the
transmit power alone through ``set_tx_power`` (every round, between bursts), which returns the power the
radio actually applies.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, replace
from types import TracebackType

import numpy as np

from testbed.errors import ConfigError, RadioError

# AD9361 gain-control modes (ad9361 driver, in_voltage0_gain_control_mode_available).
GAIN_MODES = ("manual", "slow_attack", "fast_attack", "hybrid")
MAX_BLOCK_SAMPLES = 1 << 24  # one receive/transmit call; 128 MiB of complex64 is a bug, not a burst


@dataclass(frozen=True)
class RadioConfig:
    """Settings every backend understands.

    center_freq_hz : RX and TX LO (``rx_lo``/``tx_lo``).
    sample_rate_hz : complex baseband rate of both paths (``sample_rate``).
    rf_bandwidth_hz : analog filter bandwidth; ``None`` means equal to the sample rate.
    tx_power_dbm : output power of a unit-power burst; the backend maps it to hardware gain.
    rx_gain_mode : one of GAIN_MODES (``gain_control_mode_chan0``).
    rx_gain_db : receive gain in manual mode (``rx_hardwaregain_chan0``); ignored by the AGC modes.
    """

    center_freq_hz: float = 2_400_000_000.0
    sample_rate_hz: float = 2_500_000.0
    rf_bandwidth_hz: float | None = None
    tx_power_dbm: float = -10.0
    rx_gain_mode: str = "manual"
    rx_gain_db: float = 30.0

    def __post_init__(self) -> None:
        for name in ("center_freq_hz", "sample_rate_hz", "tx_power_dbm", "rx_gain_db"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"RadioConfig.{name} must be a finite number, got {value!r}")
        if self.center_freq_hz <= 0 or self.sample_rate_hz <= 0:
            raise ConfigError(
                f"center_freq_hz and sample_rate_hz must be positive, got {self.center_freq_hz:g} and "
                f"{self.sample_rate_hz:g}"
            )
        if self.rf_bandwidth_hz is not None and not (math.isfinite(self.rf_bandwidth_hz) and self.rf_bandwidth_hz > 0):
            raise ConfigError(f"rf_bandwidth_hz must be positive or None, got {self.rf_bandwidth_hz!r}")
        if self.rx_gain_mode not in GAIN_MODES:
            raise ConfigError(f"rx_gain_mode must be one of {GAIN_MODES}, got {self.rx_gain_mode!r}")

    @property
    def bandwidth_hz(self) -> float:
        """The RF bandwidth in effect (the sample rate when none was given)."""
        return self.sample_rate_hz if self.rf_bandwidth_hz is None else self.rf_bandwidth_hz

    def with_(self, **changes: object) -> RadioConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class RxBlock:
    """One received block.

    iq : (n,) complex64 in full-scale units.
    start_sample : receive-clock sample count of ``iq[0]``.
    overflow : samples were lost before or inside this block (the timestamps after a loss are estimates).
    """

    iq: np.ndarray
    start_sample: int
    overflow: bool = False

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.iq)


def check_burst(iq: np.ndarray) -> np.ndarray:
    """Validate a burst for ``transmit``: (n,) complex, finite, 1 <= n <= MAX_BLOCK_SAMPLES; returns complex64."""
    arr = np.asarray(iq)
    if arr.ndim != 1 or not np.iscomplexobj(arr):
        raise RadioError(f"transmit expects a 1-D complex array, got shape {arr.shape} dtype {arr.dtype}")
    if not 1 <= arr.size <= MAX_BLOCK_SAMPLES:
        raise RadioError(f"transmit expects 1..{MAX_BLOCK_SAMPLES} samples, got {arr.size}")
    arr = arr.astype(np.complex64, copy=False)
    if not np.isfinite(arr.view(np.float32)).all():
        raise RadioError("transmit got NaN or infinite samples; refusing to put them on the air")
    return arr


def check_count(num_samples: int) -> int:
    """Validate a receive length: an int in 1..MAX_BLOCK_SAMPLES."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise RadioError(f"receive expects an integer sample count, got {num_samples!r}")
    if not 1 <= num_samples <= MAX_BLOCK_SAMPLES:
        raise RadioError(f"receive expects 1..{MAX_BLOCK_SAMPLES} samples, got {num_samples}")
    return int(num_samples)


class Radio(ABC):
    """A half of a link: configure, transmit bursts, receive time-stamped blocks, close.

    Subclasses implement ``_apply``, ``_transmit``, ``_receive`` and ``_close``; this base validates input,
    keeps the configuration and gives the context-manager and streaming behaviour once for all backends.
    """

    def __init__(self) -> None:
        self._config: RadioConfig | None = None
        self._closed = False

    # --- settings ---------------------------------------------------------------------------------
    def configure(self, config: RadioConfig) -> None:
        """Apply ``config`` to the device; raises ConfigError for a setting the backend cannot take."""
        if not isinstance(config, RadioConfig):
            raise ConfigError(f"configure expects a RadioConfig, got {type(config).__name__}")
        self._check_open()
        self._apply(config)
        self._config = config

    def set_tx_power(self, tx_power_dbm: float) -> float:
        """Change only the output power of a unit-power burst, for the bursts that follow; returns the power
        actually applied (a backend with gain steps and a range quantises and clamps, and logs a clamp). The
        node applies ASSIGN's power this way every round, without the full ``configure`` (which on a Pluto
        restarts streaming)."""
        self._check_open()
        config = self.config
        if (
            isinstance(tx_power_dbm, bool)
            or not isinstance(tx_power_dbm, (int, float))
            or not math.isfinite(tx_power_dbm)
        ):
            raise ConfigError(f"set_tx_power expects a finite power in dBm, got {tx_power_dbm!r}")
        applied = self._set_tx_power(float(tx_power_dbm))
        self._config = config.with_(tx_power_dbm=applied)
        return applied

    @property
    def config(self) -> RadioConfig:
        if self._config is None:
            raise RadioError(f"{type(self).__name__} is not configured yet: call configure(RadioConfig(...)) first")
        return self._config

    @property
    def rx_lo(self) -> int:
        return int(self.config.center_freq_hz)

    @property
    def tx_lo(self) -> int:
        return int(self.config.center_freq_hz)

    @property
    def sample_rate(self) -> int:
        return int(self.config.sample_rate_hz)

    @property
    def rx_rf_bandwidth(self) -> int:
        return int(self.config.bandwidth_hz)

    @property
    def tx_rf_bandwidth(self) -> int:
        return int(self.config.bandwidth_hz)

    @property
    def gain_control_mode_chan0(self) -> str:
        return self.config.rx_gain_mode

    @property
    def rx_hardwaregain_chan0(self) -> float:
        return self.config.rx_gain_db

    # --- samples ----------------------------------------------------------------------------------
    def transmit(self, iq: np.ndarray, at_sample: int | None = None) -> int:
        """Send one burst; ``iq`` (n,) complex in full-scale units; ``at_sample`` on the receive clock
        (``None``: as soon as possible). Returns the sample count where the burst starts."""
        self._check_open()
        self.config  # noqa: B018 - raises if unconfigured
        if at_sample is not None and (isinstance(at_sample, bool) or not isinstance(at_sample, (int, np.integer))):
            raise RadioError(f"at_sample must be an int sample count or None, got {at_sample!r}")
        return self._transmit(check_burst(iq), None if at_sample is None else int(at_sample))

    def receive(self, num_samples: int) -> RxBlock:
        """The next ``num_samples`` samples of the receive stream, with their start time."""
        self._check_open()
        self.config  # noqa: B018
        return self._receive(check_count(num_samples))

    def stream(self, block_samples: int, num_blocks: int | None = None) -> Iterator[RxBlock]:
        """Consecutive receive blocks (forever when ``num_blocks`` is None)."""
        count = 0
        while num_blocks is None or count < num_blocks:
            yield self.receive(block_samples)
            count += 1

    def close(self) -> None:
        """Release the device (idempotent)."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Radio:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RadioError(f"{type(self).__name__} is closed; open a new one")

    # --- backend hooks ----------------------------------------------------------------------------
    @abstractmethod
    def _apply(self, config: RadioConfig) -> None: ...

    def _set_tx_power(self, tx_power_dbm: float) -> float:
        """Default: apply the configuration with the new power (cheap for the virtual radios: the hub and the
        loopback scale the burst's amplitude by the power); returns it unchanged."""
        self._apply(self.config.with_(tx_power_dbm=tx_power_dbm))
        return tx_power_dbm

    @abstractmethod
    def _transmit(self, iq: np.ndarray, at_sample: int | None) -> int: ...

    @abstractmethod
    def _receive(self, num_samples: int) -> RxBlock: ...

    @abstractmethod
    def _close(self) -> None: ...
