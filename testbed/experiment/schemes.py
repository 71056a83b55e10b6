"""Every scheme ``testbed train`` and ``testbed compare`` can run, built from one scenario in one place.

The fixed schemes come from testbed/learning/schemes.py (fedavg_all, fedavg_deadline, centralized, hfcl,
hybrid); the policy schemes from testbed/policy/assign.py (the full method ``policy`` and its ablations).
The experiment layer is the one that knows both and the scenario, so the policy gets here what it needs
from the run: the work sizes of the scenario's codec and training, the allocation config matching the
scenario's link, the same airtime model the virtual clock charges, each UE's sample count and the horizon.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from testbed.errors import ConfigError
from testbed.learning import schemes as fixed
from testbed.learning.clock import Airtime
from testbed.learning.schemes import Scheme
from testbed.link.airtime import LinkAirtime
from testbed.policy.allocation import AllocationConfig
from testbed.policy.assign import DEFAULT_DEADLINE_FACTOR, policy_variants
from testbed.policy.variants import POLICY_VARIANTS
from testbed.policy.work import WorkSizes, codec_work_sizes

if TYPE_CHECKING:
    from testbed.experiment.scenario import Scenario
    from testbed.learning.codec_config import CodecConfig

#: Every scheme name, fixed baselines first.
SCHEME_NAMES: tuple[str, ...] = (*fixed.SCHEME_NAMES, *POLICY_VARIANTS)


@dataclass(frozen=True)
class PolicyInputs:
    """What the policy schemes take from a run (see the module docstring)."""

    work: WorkSizes
    allocation: AllocationConfig
    airtime: Airtime
    local_samples: Mapping[str, int]
    horizon_rounds: int
    raw_upload_budget_s: float = 0.0
    deadline_factor: float = DEFAULT_DEADLINE_FACTOR


def policy_inputs(
    scenario: Scenario, codec: CodecConfig, airtime: LinkAirtime, local_samples: Mapping[str, int]
) -> PolicyInputs:
    """The policy's view of a run of ``scenario`` with ``codec``; ``local_samples`` per UE name; ``airtime`` is
    the run's one model of the shared medium, for the allocation and the grouping alike."""
    rounds = scenario.round_config(codec)
    return PolicyInputs(
        work=codec_work_sizes(codec, rounds.work, rounds.raw_block_samples),
        allocation=AllocationConfig(airtime=airtime),
        airtime=airtime,
        local_samples=dict(local_samples),
        horizon_rounds=scenario.run.rounds,
        raw_upload_budget_s=scenario.policy.raw_upload_budget_s,
        deadline_factor=scenario.policy.deadline_factor,
    )


def build_scheme(name: str, scenario: Scenario, inputs: PolicyInputs) -> Scheme:
    """The scheme called ``name`` (any of SCHEME_NAMES) for a run of ``scenario``."""
    if name in fixed.SCHEME_NAMES:
        return fixed.make_scheme(name, scenario.run.deadline_s)
    if name not in POLICY_VARIANTS:
        raise ConfigError(f"unknown scheme {name!r}; choose from {', '.join(SCHEME_NAMES)}")
    variants = policy_variants(
        inputs.work,
        allocation=inputs.allocation,
        airtime=inputs.airtime,
        local_samples=inputs.local_samples,
        horizon_rounds=inputs.horizon_rounds,
        raw_upload_budget_s=inputs.raw_upload_budget_s,
        deadline_factor=inputs.deadline_factor,
    )
    return Scheme(name, variants[name])
