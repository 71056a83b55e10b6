"""Every scheme ``testbed train`` and ``testbed compare`` can run, built from one scenario in one place.

The fixed schemes come from testbed/learning/schemes.py (fedavg_all, fedavg_deadline, centralized, hfcl,
hybrid); the policy schemes from testbed/policy/assign.py (the full method ``policy`` and its ablations).
The experiment layer is the one that knows both and the scenario, so the policy gets here what it needs
from the run: the work sizes of the scenario's codec and training, the allocation config matching the
scenario's link, the same airtime model the virtual clock charges, each UE's sample count and the horizon,
and what each UE's data allow (privacy, streaming). A fixed scheme that would put a UE whose raw samples may not
leave it in centralized_full is not allowed in that scenario (``not_allowed`` says why; ``build_scheme`` refuses
it with ``SchemeNotAllowed``); the policy schemes give such a UE symbols instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from testbed.errors import ConfigError
from testbed.learning import schemes as fixed
from testbed.learning.assignment import FixedAssignment
from testbed.learning.clock import Airtime
from testbed.learning.schemes import Scheme
from testbed.link.airtime import LinkAirtime
from testbed.mode import Mode
from testbed.policy.allocation import AllocationConfig
from testbed.policy.assign import DEFAULT_DEADLINE_FACTOR, policy_variants
from testbed.policy.choice import DataTerms
from testbed.policy.variants import POLICY_VARIANTS
from testbed.policy.work import WorkSizes, codec_work_sizes

if TYPE_CHECKING:
    from testbed.experiment.scenario import Scenario
    from testbed.learning.codec_config import CodecConfig

#: Every scheme name, fixed baselines first.
SCHEME_NAMES: tuple[str, ...] = (*fixed.SCHEME_NAMES, *POLICY_VARIANTS)


class SchemeNotAllowed(ConfigError):
    """The scheme needs something the scenario forbids (raw uploads from a UE that keeps its raw samples)."""


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
    terms: Mapping[str, DataTerms] | None = None


def data_terms(scenario: Scenario) -> dict[str, DataTerms]:
    """Per UE name, what its data allow (``[[ues]] raw_upload_allowed``, ``samples_per_round``)."""
    return {ue.name: DataTerms(ue.raw_upload_allowed, ue.samples_per_round) for ue in scenario.ues}


def not_allowed(name: str, scenario: Scenario) -> str | None:
    """Why the scheme ``name`` cannot run in ``scenario`` (None: it can): a fixed scheme that puts a UE whose raw
    samples may not leave it in centralized_full. The policy schemes honour privacy themselves."""
    policy = fixed.make_scheme(name, scenario.run.deadline_s).policy if name in fixed.SCHEME_NAMES else None
    if not isinstance(policy, FixedAssignment):
        return None
    raw = [ue for ue in scenario.ues if (policy.weak_mode if ue.weak else policy.strong_mode) is Mode.CENTRALIZED_FULL]
    kept = [ue.name for ue in raw if not ue.raw_upload_allowed]
    if not kept:
        return None
    who = "every UE" if len(raw) == len(scenario.ues) else "the weak UEs"
    names = ", ".join(kept[:3]) + (f" and {len(kept) - 3} more" if len(kept) > 3 else "")
    return f"needs the raw samples of {who}, but {names} keep theirs (raw_upload_allowed = false)"


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
        terms=data_terms(scenario),
    )


def build_scheme(name: str, scenario: Scenario, inputs: PolicyInputs) -> Scheme:
    """The scheme called ``name`` (any of SCHEME_NAMES) for a run of ``scenario``; SchemeNotAllowed if the
    scenario forbids what it needs."""
    why = not_allowed(name, scenario)
    if why is not None:
        raise SchemeNotAllowed(
            f"scheme {name} is not allowed in scenario {scenario.name}: it {why}; choose a "
            "scheme that keeps raw data on the UEs or allow their raw uploads"
        )
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
        terms=inputs.terms,
    )
    return Scheme(name, variants[name])
