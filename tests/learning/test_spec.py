"""One training spec and one board table, loaded alike by scenario files and node configs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.experiment.scenario import DEFAULT_SCENARIO, load_scenario
from testbed.learning.codec_config import CodecConfig
from testbed.learning.spec import DAEMON_CHANNEL_SNR_DB, TrainingSpec
from testbed.node.config import BsConfig, UeConfig, UeSection, load_config, parse_config
from testbed.policy.profiles import default_profiles

REPO = Path(__file__).resolve().parents[2]
UES = b'[bs]\nues = { "ue-1" = 1, "ue-2" = 2 }\n'


def _training_toml(path: Path) -> str:
    """The [training] table of a TOML file, as TOML text."""
    table = tomllib.loads(path.read_text())["training"]
    lines = [f"{k} = {_toml(v)}" for k, v in table.items()]
    return "[training]\n" + "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def test_a_scenario_and_a_node_config_load_the_same_spec_from_the_same_section() -> None:
    section = _training_toml(DEFAULT_SCENARIO)
    scenario = load_scenario()
    bs = parse_config(UES + section.encode(), BsConfig)
    ue_section = section.replace("[training]", "[training]\nnum_shards = 2")
    ue = parse_config(b'[ue]\nue_id = "ue-1"\nnode_id = 1\n' + ue_section.encode(), UeConfig)
    assert isinstance(scenario.training, TrainingSpec) and bs.training == scenario.training
    assert ue.training is not None and ue.training.num_shards == 2
    # the shipped node configs and the default scenario agree on what they share
    node = load_config(REPO / "firmware_cfg" / "nodes" / "bs.toml", BsConfig).training
    assert node is not None
    for field in ("dataset", "seed", "num_symbols", "encoder_channels", "local_lr", "server_optimizer", "server_lr"):
        assert getattr(node, field) == getattr(scenario.training, field), field


def test_one_set_of_defaults() -> None:
    empty = parse_config(UES + b"[training]\n", BsConfig).training
    assert empty == TrainingSpec()
    assert (empty.dataset, empty.server_optimizer, empty.raw_block_samples) == ("mnist", "momentum", 0)
    assert empty.symbol_snr_db() == DAEMON_CHANNEL_SNR_DB and empty.symbol_snr_db(7.0) == 7.0
    assert TrainingSpec(channel_snr_db=3.0).symbol_snr_db(7.0) == 3.0
    assert empty.codec_config(28, 10) == CodecConfig()  # the spec's codec defaults are the codec's


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"[training]\nlr = 0.1\n", r"lr is gone; use \[training\] local_lr"),
        (b"[training]\nrounds = 5\n", r"\[bs\] num_rounds"),
        (b'[training]\npartition = "dirichlet"\n', "IID"),
        (b"[training]\nlocal_lr = -1.0\n", "local_lr"),
    ],
)
def test_a_node_config_with_old_or_bad_training_names_is_refused_naming_the_field(text: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(UES + text, BsConfig, source="bs.toml")


def test_a_ue_must_be_told_the_number_of_shards() -> None:
    with pytest.raises(ConfigError, match="num_shards must be set on a UE"):
        parse_config(b'[ue]\nue_id = "ue-1"\nnode_id = 1\n[training]\n', UeConfig)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace("local_lr = 0.1", "lr = 0.1"), r"lr is gone; use \[training\] local_lr"),
        (lambda s: s.replace('name = "default"', 'name = "default"\nseed = 1'), r"seed is gone; use \[training\] seed"),
        (lambda s: s + '\n[data]\ndataset = "digits"\n', r"data is gone; use \[training\]"),
        (lambda s: s + "\n[boards.pi_4]\nkappa = 1e-27\n", "boards is gone.*profiles.toml"),
        (
            lambda s: s.replace("[run]\nrounds = 60", "[run]").replace("[training]", "[training]\nrounds = 60", 1),
            r"rounds is gone; use \[run\] rounds",
        ),
    ],
)
def test_a_scenario_with_the_old_schema_is_refused_naming_the_new_field(tmp_path: Path, edit, message: str) -> None:
    path = tmp_path / "old.toml"
    path.write_text(edit(DEFAULT_SCENARIO.read_text()))
    with pytest.raises(ConfigError, match=message):
        load_scenario(path)


def test_one_board_table_drives_scenario_ues_node_configs_and_the_bs() -> None:
    profiles = default_profiles()
    scenario = load_scenario()
    for ue, prof in zip(scenario.ues, scenario.profiles(CodecConfig()), strict=True):
        board = profiles.get(ue.board)
        assert prof.board == ue.board
        assert (prof.kappa, prof.max_cpu_freq_hz) == (board.kappa_j_per_cycle_hz2, board.cpu_freq_max_hz)
    bs = scenario.round_config(CodecConfig()).clock
    assert bs.bs_cpu_freq_hz == profiles.get(scenario.clock.bs_board).cpu_freq_max_hz
    # a node config names a board of the same table; a name not in it is refused when the config loads
    assert profiles.get(UeSection("ue-1", 1, board="pi_zero_2").board).kappa_j_per_cycle_hz2 == 1.7e-27
    with pytest.raises(ConfigError, match=r"\[ue\] board='pi_9'"):
        parse_config(b'[ue]\nue_id = "ue-1"\nnode_id = 1\nboard = "pi_9"\n', UeConfig)
