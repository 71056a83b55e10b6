"""systemd readiness and watchdog notification (sd_notify(3)) in a few lines of socket code, no dependency.

Under a ``Type=notify`` unit systemd passes ``$NOTIFY_SOCKET`` (a filesystem path, or ``@name`` for the
abstract namespace); with ``WatchdogSec=`` it also passes ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``, the
process meant). The daemon sends ``READY=1`` once serving, ``WATCHDOG=1`` every half watchdog period (the
interval sd_watchdog_enabled(3) recommends) and ``STOPPING=1`` when it begins to shut down. Outside systemd
every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify datagrams if systemd asked for them; ``env`` defaults to ``os.environ``."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + path[1:] if path.startswith("@") else path
        self.watchdog_interval_s: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval_s = int(usec) / 2e6  # half the watchdog timeout (sd_watchdog_enabled(3))
        self._next_watchdog_s = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, state: str) -> bool:
        """Send one state string (e.g. ``"READY=1"``); False when not under systemd or the send failed."""
        if not self._address:
            return False
        try:  # never block the event loop: a full receive queue costs this notification, not the daemon
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
                sock.sendto(state.encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify %r to %r failed: %s", state, self._address, exc)
            return False
        return True

    def ready(self, status: str = "") -> None:
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def watchdog(self, now_s: float | None = None) -> None:
        """Call on every loop pass; pings the watchdog when half its period has passed since the last ping."""
        if self.watchdog_interval_s is None:
            return
        now_s = time.monotonic() if now_s is None else now_s
        if now_s >= self._next_watchdog_s:
            self._next_watchdog_s = now_s + self.watchdog_interval_s
            self.notify("WATCHDOG=1")
