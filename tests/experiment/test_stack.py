"""The scenario -> multi-process stack translation (testbed/experiment/stack.py): what each daemon is told must
price and hear the links as the in-process engine does for the same scenario."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from testbed.cli.sim import SIM_SCENARIO
from testbed.errors import ConfigError
from testbed.experiment.scenario import load_scenario
from testbed.experiment.stack import TX_POWER_DBM, stack_files
from testbed.node.config import BsConfig, UeConfig, parse_config
from testbed.node.first_info import UeFirstInfo


def _files(sc, tmp_path: Path, scheme: str = "policy"):  # noqa: ANN001, ANN202
    return stack_files(sc, rounds=2, seed=1, state_dir=tmp_path, hub_endpoint="tcp://127.0.0.1:5600",
                       bs_endpoint="tcp://127.0.0.1:5601", keys=None, scheme=scheme)  # fmt: skip


def test_a_daemon_ue_prices_its_radio_as_the_engine_does(tmp_path: Path) -> None:
    """Both ends price the same joules for a second on the air at full power: the daemon at the Pluto's RF
    output plus its draw offset, the engine at the scenario's draw (it used to price the daemon at 1 mW, so the
    cost rule sent every weak UE's raw data)."""
    sc = load_scenario(SIM_SCENARIO)
    files = _files(sc, tmp_path)
    bs = parse_config(files.bs, BsConfig)
    assert bs.assign.tx_power_dbm == TX_POWER_DBM == bs.radio.tx_power_dbm
    for ue in sc.ues:
        cfg = parse_config(files.ues[ue.name], UeConfig)
        assert cfg.radio.tx_power_dbm == TX_POWER_DBM
        daemon = UeFirstInfo(cfg.ue, None, 0)  # type: ignore[arg-type]  # pricing needs no codec
        _, daemon_j = daemon.energy_j(0, 1.0, 1.0, TX_POWER_DBM)
        assert daemon_j == pytest.approx(10 ** ((ue.tx_power_dbm - 30) / 10)), ue.name


def test_a_draw_below_the_radios_output_is_refused(tmp_path: Path) -> None:
    sc = load_scenario(SIM_SCENARIO)
    low = msgspec.structs.replace(sc, ues=[msgspec.structs.replace(sc.ues[0], tx_power_dbm=3.0), *sc.ues[1:]])
    with pytest.raises(ConfigError, match=r"tx_power_dbm=3 .*below the Pluto's 7 dBm"):
        _files(low, tmp_path)


def test_each_scheme_becomes_the_bss_assign_and_the_cli_lists_those_it_runs(tmp_path: Path) -> None:
    from testbed.cli.sim import SIM_SCHEMES
    from testbed.experiment.stack import NOT_ON_STACK
    from testbed.learning.schemes import SCHEME_NAMES
    from testbed.policy.variants import POLICY_VARIANTS

    sc = load_scenario(SIM_SCENARIO)
    assert set(SIM_SCHEMES) == (set(SCHEME_NAMES) | set(POLICY_VARIANTS)) - set(NOT_ON_STACK)
    weak = {ue.name for ue in sc.ues if ue.weak}
    assert weak and weak != {ue.name for ue in sc.ues}
    for scheme, want in {"fedavg_all": ("distributed", "distributed"), "centralized": ("centralized_full",) * 2,
                         "hfcl": ("centralized_full", "distributed"),
                         "hybrid_split": ("centralized_decoder", "distributed")}.items():  # fmt: skip
        bs = parse_config(_files(sc, tmp_path, scheme).bs, BsConfig)
        assert bs.assign.policy == "" and bs.training is not None
        assert {ue: str(m) for ue, m in bs.assign.modes.items()} == {
            ue.name: want[0] if ue.name in weak else want[1] for ue in sc.ues
        }, scheme
        assert bs.training.split_gradient == (scheme == "hybrid_split")
    assert parse_config(_files(sc, tmp_path, "policy_by_channel").bs, BsConfig).assign.policy == "channel"
    for scheme in NOT_ON_STACK:
        with pytest.raises(ConfigError, match="does not run as processes"):
            _files(sc, tmp_path, scheme)
    with pytest.raises(ConfigError, match="unknown scheme 'fedprox'"):
        _files(sc, tmp_path, "fedprox")


def test_privacy_and_streaming_are_refused_until_the_daemons_model_them(tmp_path: Path) -> None:
    sc = load_scenario(SIM_SCENARIO)
    for field, value in (("raw_upload_allowed", False), ("samples_per_round", 40)):
        changed = msgspec.structs.replace(sc, ues=[msgspec.structs.replace(sc.ues[0], **{field: value}), *sc.ues[1:]])
        with pytest.raises(ConfigError, match="the daemons do not model privacy or streaming data yet"):
            _files(changed, tmp_path)
