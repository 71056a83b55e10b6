"""One virtual Pluto on TCP, speaking libiio 0.2x's network protocol (the text commands iiod serves).

A thread per connection; libiio keeps one connection for the context and opens one per buffer. Every line is
parsed into a command or refused with ``-EINVAL``; a length the board could not hold gets ``-EINVAL`` or
``-ENOMEM``, an unknown device or attribute ``-ENOENT``. What cannot be answered in step with the client (an
over-long line, a payload announced but never sent) closes that connection only; buffers it held are closed
so the air does not wait for it. Faults for tests: ``stall``, ``drop_connections``, ``vanish``.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time

import numpy as np

from testbed.emu.medium import SharedAir
from testbed.emu.pluto_model import DEVICE_IDS, PHY, RXDEV, TXDEV, IioErrno

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 4096
MAX_ATTR_BYTES = 1 << 16  # a FIR configuration is a few KiB
MAX_BUFFER_SAMPLES = 1 << 24  # the Pluto's CMA region holds about this many 32-bit samples
MAX_CONNECTIONS = 64
IDLE_TIMEOUT_S = 600.0
VERSION_LINE = b"0.24.testbed\n"  # major.minor.<7-character git tag>


class _Closed(Exception):
    """The connection must end (peer gone, or out of step with it)."""


class _Conn:
    """Buffered reads on one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self._buf = sock, bytearray()

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(1 << 16)
        except OSError as exc:
            raise _Closed(str(exc)) from exc
        if not chunk:
            raise _Closed("peer closed")
        self._buf += chunk

    def line(self) -> str:
        while b"\n" not in self._buf:
            if len(self._buf) > MAX_LINE_BYTES:
                raise _Closed(f"command line longer than {MAX_LINE_BYTES} bytes")
            self._fill()
        end = self._buf.index(b"\n")
        raw, self._buf = bytes(self._buf[:end]), self._buf[end + 1 :]
        if len(raw) > MAX_LINE_BYTES:
            raise _Closed(f"command line longer than {MAX_LINE_BYTES} bytes")
        return raw.rstrip(b"\r").decode("ascii", errors="replace")

    def exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        data, self._buf = bytes(self._buf[:n]), self._buf[n:]
        return data

    def send(self, data: bytes | memoryview) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise _Closed(str(exc)) from exc


class _Buffer:
    def __init__(self, dev: str, samples: int, mask: int, cyclic: bool) -> None:
        self.dev, self.samples, self.mask, self.cyclic = dev, samples, mask, cyclic
        self.channels = bin(mask & 3).count("1")
        self.pushed = False

    @property
    def nbytes(self) -> int:
        return self.samples * 2 * self.channels


class VirtualPluto:
    """Listen on ``host:port`` (0: any free port) as node ``node_id`` of ``medium``; ``uri`` says where."""

    def __init__(self, medium: SharedAir, node_id: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.node_id, self.medium = node_id, medium
        self.model = medium.add(node_id, serial=f"emu-{node_id}")
        self._lock = threading.Lock()  # attribute state (buffers go through the medium's own lock)
        self._listener = socket.create_server((host, port), backlog=128)
        self.host, self.port = host, self._listener.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._stall_until = 0.0
        self._gone = threading.Event()
        self.refused = 0  # error replies sent (for tests and logs)
        self._thread = threading.Thread(target=self._accept_loop, name=f"emu-{node_id}", daemon=True)
        self._thread.start()

    @property
    def uri(self) -> str:
        return f"ip:{self.host}:{self.port}"

    # --- faults -------------------------------------------------------------------------------------------
    def stall(self, seconds: float) -> None:
        """Answer no buffer command for ``seconds`` (a hung USB/network transfer)."""
        self._stall_until = time.monotonic() + seconds

    def drop_connections(self) -> None:
        """Close every client connection now (a cable pulled and put back: new connections work)."""
        with self._lock:
            conns = list(self._conns)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def vanish(self) -> None:
        """The board is gone: stop listening and drop every connection (also what ``close`` does)."""
        self._gone.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self.drop_connections()

    close = vanish

    # --- serving ------------------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._gone.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                crowded = len(self._conns) >= MAX_CONNECTIONS
                if not crowded:
                    self._conns.add(sock)
            if crowded:
                log.warning("virtual Pluto %s: more than %d connections, refusing one", self.node_id, MAX_CONNECTIONS)
                sock.close()
                continue
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(IDLE_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn, buffers = _Conn(sock), {}
        self.medium.connect(self.node_id)
        try:
            while not self._gone.is_set():
                words = conn.line().split()
                if not words:
                    continue
                if words[0].upper() == "EXIT":
                    break
                try:
                    self._command(conn, words, buffers)
                except IioErrno as exc:
                    self.refused += 1
                    log.info("virtual Pluto %s refused %r: %s", self.node_id, " ".join(words)[:80], exc)
                    conn.send(b"%d\n" % -exc.code)
        except _Closed as exc:
            log.debug("virtual Pluto %s: connection ended (%s)", self.node_id, exc)
        except Exception:  # a bug must cost this connection only; the board keeps serving the others
            log.exception("virtual Pluto %s: connection closed after an internal error", self.node_id)
        finally:
            for buf in buffers.values():
                self.medium.buffer(self.node_id, buf.dev == RXDEV, is_open=False)
            self.medium.disconnect(self.node_id)
            with self._lock:
                self._conns.discard(sock)
            sock.close()

    def _device(self, ident: str) -> str:
        for name, dev_id in DEVICE_IDS.items():
            if ident in (name, dev_id):
                return name
        raise IioErrno(errno.ENODEV, f"no device {ident!r}")

    def _command(self, conn: _Conn, words: list[str], buffers: dict[str, _Buffer]) -> None:
        cmd, args = words[0].upper(), words[1:]
        if cmd == "VERSION":
            conn.send(VERSION_LINE)
        elif cmd == "PRINT":
            with self._lock:
                xml = self.model.context_xml().encode()
            conn.send(b"%d\n" % len(xml) + xml + b"\n")
        elif cmd == "TIMEOUT" and len(args) == 1 and args[0].isdigit():
            conn.send(b"0\n")
        elif cmd in ("READ", "WRITE") and args:
            self._attribute(conn, cmd, args)
        elif cmd == "OPEN" and len(args) in (3, 4):
            self._open(conn, args, buffers)
        elif cmd == "CLOSE" and len(args) == 1:
            dev = self._device(args[0])
            buf = buffers.pop(dev, None)
            if buf is None:
                raise IioErrno(errno.EBADF, f"{dev} has no buffer open on this connection")
            self.medium.buffer(self.node_id, dev == RXDEV, is_open=False)
            conn.send(b"0\n")
        elif cmd in ("READBUF", "WRITEBUF") and len(args) == 2 and args[1].isdigit():
            self._wait_if_stalled()
            dev = self._device(args[0])
            buf = buffers.get(dev)
            if buf is None:
                raise IioErrno(errno.EBADF, f"{cmd} on {dev} without OPEN on this connection")
            nbytes = int(args[1])
            if not 0 < nbytes <= buf.nbytes or nbytes % (2 * buf.channels):
                raise IioErrno(errno.EINVAL, f"{cmd} of {nbytes} bytes; the buffer holds {buf.nbytes} in whole samples")
            (self._readbuf if cmd == "READBUF" else self._writebuf)(conn, buf, nbytes)
        elif cmd == "GETTRIG" and len(args) == 1:
            self._device(args[0])
            raise IioErrno(errno.ENOENT, "no trigger on the Pluto's devices")
        elif cmd == "SETTRIG" and len(args) in (1, 2):
            self._device(args[0])
            if len(args) == 2:
                raise IioErrno(errno.ENOENT, f"no trigger {args[1]!r}")
            conn.send(b"0\n")
        elif cmd == "SET" and len(args) == 3 and args[1].upper() == "BUFFERS_COUNT" and args[2].isdigit():
            self._device(args[0])
            count = int(args[2])
            if not 1 <= count <= 64:
                raise IioErrno(errno.EINVAL, f"buffer count {count} (1..64)")
            with self._lock:
                self.model.s.kernel_buffers = count
            conn.send(b"0\n")
        elif cmd in ("ZPRINT", "BINARY", "HELP"):
            raise IioErrno(errno.ENOSYS, f"{cmd} is not served by this 0.24-protocol server")
        else:
            raise IioErrno(errno.EINVAL, f"malformed command {' '.join(words)[:80]!r}")

    def _attribute(self, conn: _Conn, cmd: str, args: list[str]) -> None:
        """READ|WRITE dev [DEBUG|BUFFER|INPUT ch|OUTPUT ch] attr [len]."""
        size = None
        if cmd == "WRITE":
            if len(args) < 3 or not args[-1].isdigit():
                raise IioErrno(errno.EINVAL, "WRITE needs a byte count")
            size = int(args[-1])
            if size > MAX_ATTR_BYTES:
                raise _Closed(f"WRITE of {size} bytes (most {MAX_ATTR_BYTES}); the payload cannot be skipped")
            args = args[:-1]
        value = conn.exact(size).decode("utf-8", errors="replace") if size is not None else None
        dev, rest = self._device(args[0]), args[1:]
        head = rest[0].upper() if rest else ""
        if head in ("DEBUG", "BUFFER") and len(rest) == 2:
            kind, chan, attr = head.lower(), None, rest[1]
        elif head in ("INPUT", "OUTPUT") and len(rest) == 3:
            kind, chan, attr = head.lower(), rest[1], rest[2]
        elif len(rest) == 1:
            kind, chan, attr = "device", None, rest[0]
        else:
            raise IioErrno(errno.EINVAL, f"malformed {cmd} {' '.join(args)[:80]!r}")
        with self._lock:
            if value is None:
                text = self.model.read(dev, kind, chan, attr).encode() + b"\x00"
                conn.send(b"%d\n" % len(text) + text + b"\n")
                return
            self.model.write(dev, kind, chan, attr, value)
        conn.send(b"%d\n" % size)

    def _open(self, conn: _Conn, args: list[str], buffers: dict[str, _Buffer]) -> None:
        dev = self._device(args[0])
        cyclic = len(args) == 4
        if cyclic and args[3].upper() != "CYCLIC":
            raise IioErrno(errno.EINVAL, f"OPEN flag {args[3]!r} (only CYCLIC)")
        if dev == PHY:
            raise IioErrno(errno.ENODEV, "ad9361-phy has no buffer")
        if dev in buffers:
            raise IioErrno(errno.EBUSY, f"{dev} already has a buffer on this connection")
        try:
            samples, mask = int(args[1]), int(args[2], 16)
        except ValueError as exc:
            raise IioErrno(errno.EINVAL, f"OPEN {args[1]!r} {args[2]!r}: want a sample count and a hex mask") from exc
        if not 0 < samples <= MAX_BUFFER_SAMPLES:
            raise IioErrno(errno.ENOMEM, f"a buffer of {samples} samples (most {MAX_BUFFER_SAMPLES})")
        if mask & 3 == 0 or mask & ~3:
            raise IioErrno(errno.EINVAL, f"channel mask {args[2]} (voltage0/voltage1 are bits 0 and 1)")
        if cyclic and dev == RXDEV:
            raise IioErrno(errno.EINVAL, "an RX buffer cannot be cyclic")
        buffers[dev] = _Buffer(dev, samples, mask, cyclic)
        self.medium.buffer(self.node_id, dev == RXDEV, is_open=True)
        conn.send(b"0\n")

    def _wait_if_stalled(self) -> None:
        while time.monotonic() < self._stall_until and not self._gone.is_set():
            time.sleep(0.01)

    def _readbuf(self, conn: _Conn, buf: _Buffer, nbytes: int) -> None:
        samples = nbytes // (2 * buf.channels)
        words, _lost = self.medium.receive(self.node_id, samples)
        if buf.channels == 1:  # one of I or Q
            words = np.ascontiguousarray(words[(0 if buf.mask & 1 else 1) :: 2])
        conn.send(b"%d\n%08x\n" % (nbytes, buf.mask))
        conn.send(memoryview(words.astype("<i2", copy=False)).cast("B"))

    def _writebuf(self, conn: _Conn, buf: _Buffer, nbytes: int) -> None:
        if buf.dev != TXDEV:
            raise IioErrno(errno.EINVAL, "WRITEBUF on an input device")
        if buf.cyclic and buf.pushed:
            raise IioErrno(errno.EBUSY, "a cyclic buffer takes one push; close it to send another")
        conn.send(b"0\n")
        data = np.frombuffer(conn.exact(nbytes), "<i2")
        if buf.channels == 1:
            full = np.zeros(2 * data.size, np.int16)
            full[(0 if buf.mask & 1 else 1) :: 2] = data
            data = full
        self.medium.transmit(self.node_id, data.astype(np.int16), buf.cyclic)
        buf.pushed = True
        conn.send(b"%d\n" % nbytes)
