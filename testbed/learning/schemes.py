"""The compared schemes, all driven through the same ``RoundRunner``; they differ only in assignment.

- fedavg_all: every UE distributed; the round waits for the slowest (McMahan et al., AISTATS 2017).
- fedavg_deadline: every UE distributed; contributions later than the deadline are dropped
  (stragglers; as in FedCS, Nishio and Yonetani, ICC 2019).
- centralized: every UE uploads its raw data; the BS trains phi and theta.
- hfcl: weak UEs upload raw data, strong UEs run FedAvg, joined by the joint update
  (Elbir et al., "Hybrid Federated and Centralized Learning", EUSIPCO 2021).
- hybrid: weak UEs centralized-decoder (they send encoded symbols, raw data stay on the UE), strong UEs
  distributed, joined by the joint update. A fixed assignment on purpose: it is the pure semantic-symbol
  point of the design space. The full method, whose grouping sends a weak UE's raw data when that costs
  less than symbols over the horizon, is the ``policy`` scheme (testbed/policy, built in testbed/experiment).
- hybrid_split: hybrid's groups with split learning: the BS returns d loss / d symbols to each weak UE, whose
  encoder gradient joins phi's aggregation (testbed/learning/split.py); raw data still never leave a UE.
"""

from __future__ import annotations

from dataclasses import dataclass

from testbed.errors import ConfigError
from testbed.learning.assignment import AssignmentPolicy, FixedAssignment
from testbed.mode import Mode


@dataclass(frozen=True)
class Scheme:
    """A named way to train: the assignment policy, an optional straggler deadline, and whether centralized-decoder
    UEs learn by split learning (else as the scenario's ``[training] split_gradient`` says)."""

    name: str
    policy: AssignmentPolicy
    deadline_s: float | None = None
    split_gradient: bool = False


SCHEME_NAMES = ("fedavg_all", "fedavg_deadline", "centralized", "hfcl", "hybrid", "hybrid_split")


def make_scheme(name: str, deadline_s: float) -> Scheme:
    """The scheme called ``name``; ``deadline_s`` is used by fedavg_deadline only."""
    d, dec, full = Mode.DISTRIBUTED, Mode.CENTRALIZED_DECODER, Mode.CENTRALIZED_FULL
    table = {
        "fedavg_all": Scheme(name, FixedAssignment(d, d)),
        "fedavg_deadline": Scheme(name, FixedAssignment(d, d), deadline_s),
        "centralized": Scheme(name, FixedAssignment(full, full)),
        "hfcl": Scheme(name, FixedAssignment(full, d)),
        "hybrid": Scheme(name, FixedAssignment(dec, d)),
        "hybrid_split": Scheme(name, FixedAssignment(dec, d), split_gradient=True),
    }
    if name not in table:
        raise ConfigError(f"unknown scheme {name!r}; choose from {', '.join(SCHEME_NAMES)}")
    return table[name]
