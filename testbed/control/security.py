"""CURVE keys, the UE allow-list and socket hardening for the control plane.

The BS authenticates every UE by its CURVE public key against an allow-list (a directory of ``<ue_id>.key``
public-key files) through a ZAP handler (zap.py); the handler sets each connection's ZAP User-Id to the UE id bound to
its key, so the server can check that a message's claimed UE id is its sender's. Unknown keys, clients without
encryption and clients with a wrong server key fail the handshake inside libzmq: none of their messages reaches
the application. :class:`Plaintext` turns all of this off for local debugging and warns on every start.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

from testbed.errors import ConfigError

log = logging.getLogger(__name__)

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
SECRET_FILE_MODE = 0o600  # readable by the owner only, as ssh insists for private keys
PUBLIC_FILE_MODE = 0o644
PLAINTEXT_WARNING = (
    "CONTROL PLANE IN PLAIN TEXT: no encryption, no authentication, any host can join and claim any UE id. "
    "Use only for local debugging; configure CURVE keys (`testbed keys`) for anything else."
)


@dataclass(frozen=True)
class KeyFiles:
    """The two files of one generated key pair."""

    public_file: Path
    secret_file: Path
    public_key: bytes  # Z85, 40 bytes


@dataclass(frozen=True)
class CurveServerKeys:
    """The BS's key pair and the allow-list mapping each permitted UE public key (Z85) to its UE id."""

    public_key: bytes
    secret_key: bytes
    allowed: Mapping[bytes, str] = field(default_factory=dict)

    @classmethod
    def from_files(cls, secret_file: Path, allowed_dir: Path) -> CurveServerKeys:
        """Load the BS key pair and every ``<ue_id>.key`` in ``allowed_dir`` (the BS's own key is skipped).

        An allow-list without UE keys is legal (UEs may be added later) but warned about: every UE is refused."""
        public, secret = load_secret(secret_file)
        allowed = {key: ue_id for key, ue_id in load_allow_list(allowed_dir).items() if key != public}
        if not allowed:
            log.warning(
                "allow-list %s holds no UE key (<ue_id>%s): every UE will be refused; copy the UEs' public key "
                "files there",
                allowed_dir,
                PUBLIC_SUFFIX,
            )
        return cls(public, secret, allowed)


@dataclass(frozen=True)
class CurveClientKeys:
    """A UE's key pair and the BS public key it expects (a wrong one fails the handshake)."""

    public_key: bytes
    secret_key: bytes
    server_public_key: bytes

    @classmethod
    def from_files(cls, secret_file: Path, server_public_file: Path) -> CurveClientKeys:
        """Load the UE key pair and the BS public key."""
        public, secret = load_secret(secret_file)
        server_public, _ = read_key_file(server_public_file, "BS public key")
        return cls(public, secret, server_public)


@dataclass(frozen=True)
class Plaintext:
    """No encryption or authentication: UE ids are taken on trust. Debugging only; warns on every start."""


def generate_keypair(directory: Path, name: str, *, overwrite: bool = False) -> KeyFiles:
    """Write ``<name>.key`` (public, 0644) and ``<name>.key_secret`` (owner-only 0600) into ``directory``.

    ``zmq.auth.create_certificates`` writes both world-readable, so they are made inside a private (0700)
    temporary directory, the modes fixed there, and only then moved into place: the secret is never readable
    by others, not even for an instant.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    public_file, secret_file = directory / f"{name}{PUBLIC_SUFFIX}", directory / f"{name}{SECRET_SUFFIX}"
    if not overwrite and (public_file.exists() or secret_file.exists()):
        raise ConfigError(f"{public_file} or {secret_file} exists; pass overwrite=True (--force) to replace it")
    with tempfile.TemporaryDirectory(dir=directory, prefix=".keys-") as private:
        tmp_public, tmp_secret = zmq.auth.create_certificates(private, name)
        os.chmod(tmp_secret, SECRET_FILE_MODE)
        os.chmod(tmp_public, PUBLIC_FILE_MODE)
        os.replace(tmp_secret, secret_file)
        os.replace(tmp_public, public_file)
    public_key, _ = zmq.auth.load_certificate(public_file)
    return KeyFiles(public_file, secret_file, public_key)


def _is_z85_key(key: bytes | None) -> bool:
    """A CURVE key in Z85 is 40 characters that decode to 32 bytes."""
    if key is None or len(key) != 40:
        return False
    try:
        return len(z85.decode(key)) == 32
    except (ValueError, KeyError, TypeError):
        return False


def read_key_file(path: Path, what: str) -> tuple[bytes, bytes | None]:
    """(public, secret or None) of a key file, refusing a missing, unreadable or malformed one in one line.

    ``what`` names the file's role in the message ("BS public key", "allow-list key", "secret key")."""
    path = Path(path)
    regenerate = "generate key pairs with `testbed keys DIR bs ue-1 ...` (docs/control-protocol.md)"
    if not path.is_file():
        raise ConfigError(f"{what} file {path} does not exist or is not a file; {regenerate}")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError, IndexError) as exc:  # unreadable, no public-key line, a line without '='
        raise ConfigError(f"{what} file {path} is not a CURVE key file ({exc}); {regenerate}") from exc
    if not _is_z85_key(public) or (secret is not None and not _is_z85_key(secret)):
        raise ConfigError(f"{what} file {path} holds a malformed key (not 40 Z85 characters); {regenerate}")
    return public, secret


def load_secret(path: Path) -> tuple[bytes, bytes]:
    """Load a key pair from a secret-key file, refusing one that group or others can read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read secret key {path}: {exc}; generate one with `testbed keys`") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"secret key {path} has mode {stat.filemode(mode)}; run `chmod 600 {path}`")
    public, secret = read_key_file(path, "secret key")
    if secret is None:
        raise ConfigError(f"{path} holds no secret key; pass the {SECRET_SUFFIX} file, not the public one")
    return public, secret


def load_allow_list(directory: Path) -> dict[bytes, str]:
    """Map each public key (Z85) in ``directory`` to its UE id, the file's stem (``ue-3.key`` -> ``ue-3``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"allow-list directory {directory} does not exist; put the UEs' <ue_id>.key files there")
    allowed: dict[bytes, str] = {}
    for file in sorted(directory.glob(f"*{PUBLIC_SUFFIX}")):
        public, _ = read_key_file(file, "allow-list key")
        if public in allowed:
            raise ConfigError(f"{file} repeats the key of UE {allowed[public]!r}; each UE needs its own key pair")
        allowed[public] = file.stem
    return allowed


def harden(sock: zmq.Socket, *, max_message_bytes: int, hwm: int) -> None:
    """Options every control socket gets: frame-size cap, bounded queues, no linger on close."""
    sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.LINGER, 0)


def secure_client(sock: zmq.Socket, security: CurveClientKeys | Plaintext) -> None:
    """Make ``sock`` a CURVE client of the BS whose public key ``security`` names (the caller warns on plain)."""
    if isinstance(security, Plaintext):
        return
    if not isinstance(security, CurveClientKeys):
        raise ConfigError(f"client security must be CurveClientKeys or Plaintext, got {type(security).__name__}")
    sock.curve_secretkey = security.secret_key
    sock.curve_publickey = security.public_key
    sock.curve_serverkey = security.server_public_key
