"""The training step inside a round, as the daemons see it: bytes in, bytes out.

The BS side produces the model bytes to broadcast and consumes the verified uploads of the UEs that made
the deadline; the UE side turns the received model bytes into its upload. The learning layer's round logic
(testbed/learning/rounds.py, ``RoundRunner`` with ``UeEndpoint``) plugs in behind these two Protocols; until
then the daemons run the seeded placeholder below, whose output tests can recompute exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Protocol

import numpy as np


class BsTraining(Protocol):
    """BS side of a round."""

    def model_bytes(self, round_no: int) -> bytes:
        """The model to broadcast at the start of round ``round_no``."""
        ...

    def consume(self, round_no: int, uploads: Mapping[str, bytes]) -> None:
        """The verified uploads (UE id -> bytes) of the UEs that finished in time; called only when the round
        counts (enough of its participants made the deadline)."""
        ...


class UeTraining(Protocol):
    """UE side of a round."""

    def upload_bytes(self, round_no: int, model: bytes) -> bytes:
        """The upload (gradients, symbols or samples) computed from the verified model of ``round_no``."""
        ...


class PlaceholderBs:
    """Model of ``model_size_bytes`` seeded bytes per round; keeps the SHA-256 of what it consumed."""

    def __init__(self, model_size_bytes: int, seed: int) -> None:
        self.model_size_bytes, self.seed = model_size_bytes, seed
        self.consumed: dict[int, dict[str, str]] = {}

    def model_bytes(self, round_no: int) -> bytes:
        return np.random.default_rng([self.seed, round_no]).bytes(self.model_size_bytes)

    def consume(self, round_no: int, uploads: Mapping[str, bytes]) -> None:
        self.consumed[round_no] = {ue: hashlib.sha256(data).hexdigest() for ue, data in uploads.items()}


class PlaceholderUe:
    """Upload of ``upload_size_bytes``: SHA-256 in counter mode over (model digest, UE id), so the BS (or a
    test) can check that each upload came from the right model and the right UE."""

    def __init__(self, ue_id: str, upload_size_bytes: int) -> None:
        self.ue_id, self.upload_size_bytes = ue_id, upload_size_bytes

    def upload_bytes(self, round_no: int, model: bytes) -> bytes:
        return placeholder_upload(model, self.ue_id, self.upload_size_bytes)


def placeholder_upload(model: bytes, ue_id: str, size_bytes: int) -> bytes:
    """The placeholder upload of ``ue_id`` for ``model`` (SHA-256 blocks of digest || id || counter)."""
    seed = hashlib.sha256(model).digest() + ue_id.encode()
    blocks = (hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(-(-size_bytes // 32)))
    return b"".join(blocks)[:size_bytes]
