"""A scenario as the multi-process stack: the hub's air, the BS's and each UE's config, as TOML files.

``testbed sim`` (testbed/experiment/launch.py) runs the scenario ``testbed compare`` runs, as processes: the
virtual-RF hub, the BS daemon and one UE daemon per UE, every frame through the real PHY. This module only
translates; it writes nothing but the files it is asked for:

- the air (testbed/radio/scenario.py): the BS at the origin, each UE at the distance where the hub's path
  loss gives the UE's ``snr_db`` (Es/N0 per data subcarrier, the PHY's definition), crystals +-2 ppm
  alternating; a UE with ``channel = "multipath"`` gets a quasi-static multipath draw on its links;
- the BS: [bs] (the UEs and their link node ids, the rounds, the deadline, the scenario's BS board), the
  scenario's [training], the method's policy in [assign], [air] from the scenario's [link] unpaced: the air's
  clock is the run's virtual time (a job holds it and moves it on by its modelled time on the node's board,
  testbed/node/jobtime.py), so each radio waits up to the deadline for the others (``timeout_s``);
- each UE: its board (simulated), its shard, the same [training] and [air]; its radio at the Pluto's full
  RF output (TX_POWER_DBM, the most the BS may assign) drawing the scenario's ``tx_power_dbm`` while it
  transmits ([ue] tx_draw_offset_db = the difference), so its radio energy is the engine's.
Each config is parsed back with the daemons' own loader before anything starts, so a scenario the daemons
would refuse is refused here, with the field named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from testbed.channel.pathloss import path_loss_db
from testbed.errors import ConfigError
from testbed.experiment.scenario import Scenario
from testbed.node.config import BsConfig, UeConfig, parse_config
from testbed.radio.scenario import DEFAULT_OCCUPIED_FRACTION
from testbed.radio.scenario import Scenario as AirScenario
from testbed.radio.scenario import validate as validate_air

BS_NODE = "bs"
NOISE_FLOOR_DBM = -90.0  # the hub's noise floor; with 7 dBm TX the distances come out at metres to a few km
TX_POWER_DBM = 7.0  # the radios' RF power on the hub: a Pluto's maximum (policy/profiles.toml [radio])
CRYSTAL_PPM = 2.0  # +-2 ppm alternating: a Pluto's TCXO class (docs/radio.md)
MIN_DISTANCE_M = 1.0
METHOD = "policy"  # the full method (docs/policy.md)
# A policy scheme is a grouping rule the BS sends in its first information; a fixed scheme, per-UE modes.
POLICY_RULES = {"policy": "joint", "policy_by_capability": "capability", "policy_by_channel": "channel",
                "policy_snr_threshold": "joint_snr"}  # fmt: skip
NOT_ON_STACK = {
    "fedavg_deadline": "it drops UEs later than a deadline in virtual time, and the BS's round deadline is wall "
    "time; testbed compare runs it",
    "policy_no_alloc": "the daemons' BS has no rule that keeps every UE at its nominal clock and TX power; testbed "
    "compare runs it",
}


@dataclass(frozen=True)
class StackFiles:
    """The TOML text of every process's config, by file name."""

    air: str
    bs: str
    ues: dict[str, str]  # UE name -> config text


def distance_for_snr_m(snr_db: float, center_freq_hz: float, exponent: float = 2.0) -> float:
    """Distance at which the hub's path loss gives ``snr_db`` at TX_POWER_DBM over NOISE_FLOOR_DBM."""
    budget_db = TX_POWER_DBM - NOISE_FLOOR_DBM - 10.0 * math.log10(DEFAULT_OCCUPIED_FRACTION) - snr_db
    at_1m_db = float(path_loss_db(1.0, center_freq_hz, exponent))
    return max(10.0 ** ((budget_db - at_1m_db) / (10.0 * exponent)), MIN_DISTANCE_M)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"cannot write the non-finite number {value!r} to a config")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"cannot write {type(value).__name__} {value!r} to a config")


def toml_text(sections: Mapping[str, Any], arrays: Mapping[str, list[dict[str, Any]]] | None = None) -> str:
    """TOML of top-level keys (scalars first), one-level tables and arrays of tables; None values are left
    out (TOML has no null: the field keeps its default)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in sections.items() if not isinstance(v, dict) and v is not None]
    for name, table in sections.items():
        if isinstance(table, dict):
            lines += ["", f"[{name}]", *(f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None)]
    for name, items in (arrays or {}).items():
        for item in items:
            lines += ["", f"[[{name}]]", *(f"{k} = {_toml_value(v)}" for k, v in item.items() if v is not None)]
    return "\n".join(lines) + "\n"


def _refuse_unsupported(sc: Scenario) -> None:
    """What the daemons cannot run yet: a partition other than IID shards of equal size."""
    if sc.training.partition != "iid":
        raise ConfigError(f"[training] partition = {sc.training.partition!r}: testbed sim splits the data into "
                          "equal IID shards (the daemons' partition); use partition = \"iid\"")  # fmt: skip
    kept = [ue.name for ue in sc.ues if not ue.raw_upload_allowed]
    streaming = [ue.name for ue in sc.ues if ue.samples_per_round]
    if kept or streaming:
        what = "raw_upload_allowed = false" if kept else "samples_per_round > 0"
        raise ConfigError(f"[[ues]] {what} ({', '.join(kept or streaming)}): the daemons do not model privacy or "
                          "streaming data yet; testbed compare runs those regimes")  # fmt: skip
    shares = {ue.data_share for ue in sc.ues}
    if len(shares) > 1:
        raise ConfigError(f"[[ues]] data_share differs between UEs ({sorted(shares)}): testbed sim gives every UE "
                          "an equal shard; give every UE the same data_share")  # fmt: skip


def air_scenario(sc: Scenario, seed: int, burst_loss: Mapping[str, float] | None = None) -> str:
    """The hub's air for ``sc`` (module docstring); ``burst_loss``: node -> share of bursts lost on its links (a
    fault, testbed sim --drop)."""
    center = 2.4e9
    loss = dict(burst_loss or {})
    unknown = set(loss) - {BS_NODE, *(ue.name for ue in sc.ues)}
    if unknown:
        raise ConfigError(f"burst loss for {', '.join(sorted(unknown))}: not a node of this scenario")
    nodes = [{"id": BS_NODE, "position_m": [0.0, 0.0], "crystal_ppm": 0.0, "tx_power_dbm": TX_POWER_DBM}]
    for i, ue in enumerate(sc.ues):
        r = distance_for_snr_m(ue.snr_db, center)
        angle = 2.0 * math.pi * i / len(sc.ues)
        node = {"id": ue.name, "position_m": [round(r * math.cos(angle), 3), round(r * math.sin(angle), 3)],
                "crystal_ppm": CRYSTAL_PPM * (-1) ** i, "tx_power_dbm": TX_POWER_DBM}  # fmt: skip
        if ue.channel == "multipath":
            node |= {"channel": "multipath", "rms_delay_spread_samples": ue.rms_delay_spread_samples or 1.0,
                     "k_factor_db": ue.k_factor_db}  # fmt: skip
        if ue.name in loss:
            node["burst_loss"] = loss[ue.name]
        nodes.append(node)
    if BS_NODE in loss:
        nodes[0]["burst_loss"] = loss[BS_NODE]
    top = {"seed": seed, "center_freq_hz": center, "sample_rate_hz": sc.link.sample_rate_hz,
           "noise_floor_dbm": NOISE_FLOOR_DBM, "wait_for_all_nodes": False}  # fmt: skip
    text = toml_text(top, {"nodes": nodes})
    try:
        validate_air(msgspec.toml.decode(text, type=AirScenario))
    except msgspec.ValidationError as exc:
        raise ConfigError(f"the hub's air for this scenario is invalid: {exc}") from exc
    return text


def _draw_offset_db(name: str, draw_dbm: float) -> float:
    """The radio's draw above its RF output for a UE whose scenario draw is ``draw_dbm`` at full output."""
    offset = draw_dbm - TX_POWER_DBM
    if offset < 0:
        raise ConfigError(
            f"[[ues]] {name}: tx_power_dbm={draw_dbm:g} (the radio's draw while transmitting) is "
            f"below the Pluto's {TX_POWER_DBM:g} dBm RF output; testbed sim needs >= {TX_POWER_DBM:g}"
        )
    return round(offset, 6)


def _air(sc: Scenario) -> dict[str, Any]:
    link = sc.link
    return {"sample_rate_hz": link.sample_rate_hz, "frame_payload_bytes": link.frame_payload_bytes,
            "mcs": "adaptive", "guard_samples": link.guard_samples, "tdma_cycle_samples": link.tdma_cycle_samples,
            "realtime_factor": 0.0}  # fmt: skip


def scheme_assign(sc: Scenario, scheme: str) -> tuple[dict[str, Any], bool]:
    """The BS's [assign] fields that make ``scheme`` (one of testbed compare's) and whether it trains by split
    learning: a policy scheme's grouping rule, a fixed scheme's mode per UE by its ``weak`` flag. ConfigError
    names a scheme the stack cannot run and why."""
    from testbed.learning.schemes import SCHEME_NAMES, make_scheme

    if scheme in POLICY_RULES:
        return {"policy": POLICY_RULES[scheme]}, sc.training.split_gradient
    if scheme in NOT_ON_STACK:
        raise ConfigError(f"scheme {scheme!r} does not run as processes: {NOT_ON_STACK[scheme]}")
    if scheme not in SCHEME_NAMES:
        known = [n for n in (*SCHEME_NAMES, *POLICY_RULES) if n not in NOT_ON_STACK]
        raise ConfigError(f"unknown scheme {scheme!r}; testbed sim runs {', '.join(known)}")
    fixed = make_scheme(scheme, sc.run.deadline_s)
    policy = fixed.policy
    modes = {ue.name: str((policy.weak_mode if ue.weak else policy.strong_mode).value) for ue in sc.ues}
    return {"policy": "", "modes": modes}, fixed.split_gradient or sc.training.split_gradient


def stack_files(
    sc: Scenario, *, rounds: int, seed: int, state_dir: Path, hub_endpoint: str, bs_endpoint: str,
    keys: Path | None, deadline_s: float = 600.0, scheme: str = METHOD, burst_loss: Mapping[str, float] | None = None,
) -> StackFiles:  # fmt: skip
    """Every config of the stack for ``sc`` running ``scheme``; ``bs_endpoint`` is where the UEs dial (the BS
    binds it); ``keys``: the CURVE key directory (testbed keys layout), None for plain text (tests)."""
    _refuse_unsupported(sc)
    assign, split = scheme_assign(sc, scheme)
    spec = msgspec.structs.replace(sc.training, seed=seed, num_shards=len(sc.ues), split_gradient=split)
    training = msgspec.to_builtins(spec, builtin_types=(), order="deterministic")
    air = _air(sc)
    ues = {ue.name: i + 1 for i, ue in enumerate(sc.ues)}

    def security(name: str) -> dict[str, Any]:
        if keys is None:
            return {"plaintext": True}
        secret = str(keys / f"{name}.key_secret")
        peer = {"allowed_dir": str(keys / "ues")} if name == BS_NODE else {"server_key_file": str(keys / "bs.key")}
        return {"secret_key_file": secret, **peer}

    bs = {
        "bs": {"ues": ues, "state_dir": str(state_dir), "num_rounds": rounds, "min_ues": len(ues),
               "deadline_s": deadline_s, "round_gap_s": 0.0, "board": sc.clock.bs_board},
        "training": training,
        "assign": {**assign, "deadline_factor": sc.policy.deadline_factor,
                   "raw_upload_budget_s": sc.policy.raw_upload_budget_s, "tx_power_dbm": TX_POWER_DBM},
        "air": air,
        "radio": {"endpoint": hub_endpoint, "node": BS_NODE, "tx_power_dbm": TX_POWER_DBM, "timeout_s": deadline_s},
        "control": {"bind_endpoint": bs_endpoint, "security": security(BS_NODE)},
    }  # fmt: skip
    texts = {"bs": toml_text(bs)}
    for i, ue in enumerate(sc.ues):
        section = {"ue_id": ue.name, "node_id": i + 1, "board": ue.board, "simulated_board": True, "shard": i,
                   "tx_draw_offset_db": _draw_offset_db(ue.name, ue.tx_power_dbm)}  # fmt: skip
        texts[ue.name] = toml_text({
            "ue": section, "training": training, "air": air,
            "radio": {"endpoint": hub_endpoint, "node": ue.name, "tx_power_dbm": TX_POWER_DBM,
                      "timeout_s": deadline_s},
            "control": {"server_endpoint": bs_endpoint, "security": security(ue.name)},
        })  # fmt: skip
    parse_config(texts["bs"], BsConfig, source="the BS config testbed sim wrote")
    for name in ues:
        parse_config(texts[name], UeConfig, source=f"the config testbed sim wrote for {name}")
    return StackFiles(air_scenario(sc, seed, burst_loss or {}), texts.pop("bs"), texts)
