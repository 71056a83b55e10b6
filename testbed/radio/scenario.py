"""The virtual-RF scenario: who is on the air, where, with which crystals, at what noise floor (TOML).

Example (also docs/radio.md)::

    seed = 7
    center_freq_hz = 2.4e9
    sample_rate_hz = 2.5e6
    noise_floor_dbm = -90.0        # noise power in the sample bandwidth at every receiver
    [[nodes]]
    id = "bs"
    position_m = [0.0, 0.0]
    crystal_ppm = 0.0
    tx_power_dbm = 0.0

Power convention: a unit-power burst from node A arrives at node B with power
``tx_power_dbm(A) - path_loss_db(distance)``; against the noise floor that gives the link's SNR. The
configured SNR uses the PHY's definition, Es/N0 per data subcarrier = P_rx / (occupied_fraction * N).
Crystal error: node A's LO sits at f_c (1 + ppm_A 1e-6), so B sees CFO (ppm_A - ppm_B) 1e-6 f_c and a
sampling-clock ratio of (1 + ppm_A 1e-6) / (1 + ppm_B 1e-6).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from testbed.errors import ConfigError

# 802.11a-like default numerology: 52 of 64 subcarriers carry energy (IEEE 802.11-2020, 17.3.5.10).
DEFAULT_OCCUPIED_FRACTION = 52 / 64
SPEED_OF_LIGHT_M_S = 299_792_458.0

Finite = Annotated[float, msgspec.Meta(ge=-1e12, le=1e12)]
NodeId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class NodeSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One radio in the scenario. ``channel = "multipath"``: every link to or from this node is frequency
    selective, one quasi-static draw per link of an exponential profile of ``rms_delay_spread_samples``
    (Rician K ``k_factor_db`` on the first tap; unset: Rayleigh), as the engine's phy medium draws a selective
    UE; the scenario-wide ``fading`` redraws on every burst instead. ``burst_loss``: a fault to test the link
    layer with: this share of the bursts on every link to or from this node is lost whole (the receiver hears
    nothing of it), each drawn from the scenario seed, the link and the burst's start sample."""

    id: NodeId
    position_m: Annotated[list[Finite], msgspec.Meta(min_length=2, max_length=3)]
    crystal_ppm: Annotated[float, msgspec.Meta(ge=-100.0, le=100.0)] = 0.0
    tx_power_dbm: Annotated[float, msgspec.Meta(ge=-90.0, le=30.0)] = 0.0
    channel: Literal["flat", "multipath"] = "flat"
    rms_delay_spread_samples: Annotated[float, msgspec.Meta(ge=0.0, le=64.0)] = 1.0
    k_factor_db: Annotated[float, msgspec.Meta(ge=-30.0, le=60.0)] | None = None
    burst_loss: Annotated[float, msgspec.Meta(ge=0.0, lt=1.0)] = 0.0


class Scenario(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole virtual air. Every number carries its unit; ``seed`` makes a run repeatable."""

    nodes: Annotated[list[NodeSpec], msgspec.Meta(min_length=1, max_length=256)]
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] = 0
    center_freq_hz: Annotated[float, msgspec.Meta(gt=0.0, le=100e9)] = 2.4e9
    sample_rate_hz: Annotated[float, msgspec.Meta(gt=0.0, le=1e9)] = 2.5e6
    noise_floor_dbm: Annotated[float, msgspec.Meta(ge=-200.0, le=0.0)] = -90.0
    path_loss_exponent: Annotated[float, msgspec.Meta(ge=1.0, le=6.0)] = 2.0
    fading: bool = False
    rms_delay_spread_samples: Annotated[float, msgspec.Meta(ge=0.0, le=64.0)] = 1.0
    k_factor_db: Annotated[float, msgspec.Meta(ge=-30.0, le=60.0)] | None = None
    rx_full_scale_dbm: Annotated[float, msgspec.Meta(ge=-150.0, le=30.0)] = 0.0
    wait_for_all_nodes: bool = True

    def node(self, node_id: str) -> NodeSpec:
        """The node named ``node_id``; ConfigError naming the known ids otherwise."""
        for spec in self.nodes:
            if spec.id == node_id:
                return spec
        raise ConfigError(f"unknown node id {node_id!r}; the scenario has {[n.id for n in self.nodes]}")

    @property
    def node_ids(self) -> list[str]:
        return [n.id for n in self.nodes]

    def distance_m(self, a: str, b: str) -> float:
        pa, pb = self.node(a).position_m, self.node(b).position_m
        pa3 = list(pa) + [0.0] * (3 - len(pa))
        pb3 = list(pb) + [0.0] * (3 - len(pb))
        return math.dist(pa3, pb3)

    def cfo_hz(self, tx: str, rx: str) -> float:
        """Carrier offset node ``rx`` sees on a burst from ``tx`` (crystal error on both LOs)."""
        return (self.node(tx).crystal_ppm - self.node(rx).crystal_ppm) * 1e-6 * self.center_freq_hz

    def clock_ratio(self, tx: str, rx: str) -> float:
        """Samples ``rx`` takes per sample ``tx`` sent (sampling-clock offset from the same crystals)."""
        return (1.0 + self.node(rx).crystal_ppm * 1e-6) / (1.0 + self.node(tx).crystal_ppm * 1e-6)


def validate(scenario: Scenario) -> Scenario:
    """Cross-field checks msgspec cannot express; returns the scenario."""
    ids = scenario.node_ids
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"scenario node ids must be unique; repeated: {dupes}")
    for i, a in enumerate(scenario.nodes):
        for b in scenario.nodes[i + 1 :]:
            if scenario.distance_m(a.id, b.id) <= 0.0:
                raise ConfigError(f"nodes {a.id!r} and {b.id!r} share position {a.position_m}; move one apart")
    return scenario


def parse_scenario(text: str | bytes, source: str = "<scenario>") -> Scenario:
    """Decode and validate TOML text; ConfigError says which field is wrong and where."""
    try:
        scenario = msgspec.toml.decode(text, type=Scenario)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: invalid scenario: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    return validate(scenario)


def scenario_from_dict(fields: dict, source: str = "<scenario>") -> Scenario:
    """Build and validate a scenario from plain Python values (as parsed TOML would give them)."""
    try:
        scenario = msgspec.convert(fields, type=Scenario)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: invalid scenario: {exc}") from exc
    return validate(scenario)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML file."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read scenario file {path}: {exc.strerror}") from exc
    return parse_scenario(text, source=str(path))
