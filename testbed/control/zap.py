"""The BS's ZAP handler: admits allow-listed CURVE keys and names each connection by its UE id (security.py has
the keys and the allow-list). Its own module because zmq's authenticator thread loads asyncio: a UE, which is only
a CURVE client, does not pay for it."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from testbed.control.security import PLAINTEXT_WARNING, CurveServerKeys, Plaintext
from testbed.errors import ConfigError

log = logging.getLogger("testbed.control.security")  # one logger for the control plane's security


class AllowListAuthenticator(ThreadAuthenticator):
    """ZAP handler (own thread): admits allow-listed CURVE keys and names each connection by its UE id.

    ``counts`` holds the ZAP decisions ("allowed", "denied"): the server-side record of handshake attempts that
    reached authentication.
    """

    def __init__(self, context: zmq.Context, allowed: Mapping[bytes, str]) -> None:
        super().__init__(context, log=logging.getLogger(f"{log.name}.zap"))
        self._ue_by_key = dict(allowed)
        self._warned: set[bytes] = set()
        self.counts: Counter[str] = Counter()
        self.configure_curve_callback("*", self)

    def callback(self, domain: str, key: bytes) -> bool:
        """Credentials-provider hook: is this Z85 public key on the allow-list?"""
        ok = key in self._ue_by_key
        self.counts["allowed" if ok else "denied"] += 1
        if not ok and key not in self._warned:
            self._warned.add(key)
            log.warning("refused control connection from unknown CURVE key %s", key.decode("ascii", "replace"))
        return ok

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The UE id bound to this key: what ``frame.get("User-Id")`` returns for the connection's frames."""
        return self._ue_by_key[z85.encode(client_public_key)]


def secure_server(
    sock: zmq.Socket, security: CurveServerKeys | Plaintext, context: zmq.Context
) -> AllowListAuthenticator | None:
    """Make ``sock`` a CURVE server with an allow-list ZAP handler (returned, to stop on close)."""
    if isinstance(security, Plaintext):
        log.warning(PLAINTEXT_WARNING)
        return None
    if not isinstance(security, CurveServerKeys):
        raise ConfigError(f"server security must be CurveServerKeys or Plaintext, got {type(security).__name__}")
    authenticator = AllowListAuthenticator(context, security.allowed)
    authenticator.start()
    sock.curve_secretkey = security.secret_key
    sock.curve_publickey = security.public_key
    sock.curve_server = True
    return authenticator
