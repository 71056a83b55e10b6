"""The training mode of one UE in one round: the one vocabulary of the whole testbed.

The values are the strings everywhere a mode is written down: ASSIGN on the control plane
(docs/control-protocol.md), the ``[assign]`` section of node configs, the round records of the daemons and
the engine's metrics. It lives at the package root, beside ``errors``, because every layer that names a mode
(learning, policy, control, node, experiment) imports it and none of them may import the layer above.
"""

from __future__ import annotations

import enum


class Mode(enum.StrEnum):
    """Training mode of one UE in one round (the value is the wire and file string)."""

    DISTRIBUTED = "distributed"  # trains (phi, theta) locally, uploads its update
    CENTRALIZED_DECODER = "centralized_decoder"  # runs phi forward, uploads received symbols + labels
    CENTRALIZED_FULL = "centralized_full"  # uploads raw samples; the BS trains phi and theta
    IDLE = "idle"  # sits this round out
