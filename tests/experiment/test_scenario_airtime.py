"""Scenario validation, and the scenario's shared medium."""

import json
import tomllib

import msgspec
import pytest

from testbed.errors import ConfigError
from testbed.experiment.scenario import DEFAULT_SCENARIO, Scenario, load_scenario
from testbed.learning.codec_config import CodecConfig


def test_default_scenario_is_the_heterogeneous_one() -> None:
    s = load_scenario()
    assert len(s.ues) == 10 and sum(u.weak for u in s.ues) == 4
    snrs = [u.snr_db for u in s.ues]
    assert min(snrs) == 5.0 and max(snrs) == 25.0
    profiles = s.profiles(CodecConfig())
    weak = [p for p in profiles if p.weak]
    strong = [p for p in profiles if not p.weak]
    assert max(p.cpu_freq_hz for p in weak) < min(p.cpu_freq_hz for p in strong)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"run": {"rounds": 0}}, "rounds"),
        ({"run": {"deadline_s": -1.0}}, "deadline_s"),
        ({"training": {"partition": "stripes"}}, "partition"),
        ({"training": {"num_shards": 4}}, "num_shards is for the daemons"),
        ({"clock": {"bs_board": "cray_1"}}, "cray_1"),
        ({"training": {"learning_rate": 0.1}}, "unknown field"),
        ({"training": {"server_lr": "fast"}}, "Expected `float`"),
        ({"policy": {"raw_upload_budget_s": -1.0}}, "raw_upload_budget_s"),
        ({"policy": {"deadline_factor": 0.5}}, "deadline_factor"),
    ],
)
def test_bad_scenarios_are_refused_with_the_field_named(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_scenario(overrides=overrides)


def test_missing_board_and_unreadable_file(tmp_path) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text('name = "x"\n[[ues]]\nname = "a"\nboard = "pi_9"\nweak = true\nsnr_db = 5.0\ntx_power_dbm = 20.0\n')
    with pytest.raises(ConfigError, match="pi_9"):
        load_scenario(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "absent.toml")


def test_a_scenario_whose_ues_cannot_fit_the_tdma_cycle_is_refused_on_load() -> None:
    with pytest.raises(ConfigError, match=r"default.toml: \[link\] tdma_cycle_samples=200000 .* raise tdma_cycle_sam"):
        load_scenario(overrides={"link": {"tdma_cycle_samples": 200_000}})
    # the line says how many of the [[ues]] fit and the cycle that fits them all (tests/cli/test_bad_input.py: the CLI)
    with pytest.raises(ConfigError, match=r"fits the BS and 3 UEs: raise tdma_cycle_samples to at least 448880 for 10"):
        load_scenario(overrides={"link": {"tdma_cycle_samples": 200_000}})
    with pytest.raises(ConfigError, match=r"\[link\] .* fits the BS and 9 UEs: .* 507840 for 10 UEs, .* at most 9 UEs"):
        load_scenario(overrides={"link": {"frame_payload_bytes": 1700}})  # 46,080-sample bpsk-1/2 frames
    with pytest.raises(ConfigError, match="guard_samples"):
        load_scenario(overrides={"link": {"guard_samples": -1}})


def test_the_scenario_medium_is_the_daemons_cycle() -> None:
    s = load_scenario()
    air = s.airtime()
    assert (air.cycle_samples, air.guard_samples, air.num_ues) == (500_000, 80, 10)
    assert air.slot_samples == (500_000 - 80 * 12) // 11


def test_engine_policy_and_bs_make_the_same_mcs_choice() -> None:
    """One chooser: the engine's clock, the policy's allocation at maximum power and the BS daemon's [air]."""
    from testbed.node.config import AirConfig
    from testbed.policy.allocation import AllocationConfig, DigitalUpload, RoundWork, max_performance
    from tests.policy.policy_helpers import make_ue

    s = load_scenario()
    engine = s.airtime()
    policy = AllocationConfig(airtime=engine)
    bs = AirConfig(sample_rate_hz=s.link.sample_rate_hz, frame_payload_bytes=s.link.frame_payload_bytes, mcs="adaptive")
    work = RoundWork(10, DigitalUpload(100_000))
    seen = set()
    for tenth_db in range(0, 300, 2):  # 0.2 dB steps: bpsk-3/4 is chosen over a 0.44 dB window only
        ue = make_ue(snr_db=tenth_db / 10 - 7.0)  # measured at 0 dBm, sending at up to 7 dBm
        at_max = ue.channel.snr_db_at(ue.max_tx_power_dbm)
        by_engine = engine.upload(100_000, at_max).mcs
        by_bs = bs.mcs_policy.choose(at_max)
        by_policy = max_performance(ue, work, policy).mcs if engine.mcs.usable(at_max) else by_bs
        assert by_engine == by_policy == by_bs, at_max
        seen.add(by_bs)
    assert len(seen) == 8  # every coded MCS was chosen somewhere on the sweep


SELECTIVE = {"channel": "multipath", "rms_delay_spread_samples": 1.0}


def _with_ue0(**fields) -> dict:
    """Overrides that replace ue0 of the default scenario by itself plus ``fields``."""
    raw = load_scenario()
    ues = [
        {k: getattr(u, k) for k in ("name", "board", "weak", "snr_db", "tx_power_dbm")} | (fields if i == 0 else {})
        for i, u in enumerate(raw.ues)
    ]
    return {"ues": ues}


def _load(overrides: dict, seed: int = 1) -> Scenario:
    raw = tomllib.loads(DEFAULT_SCENARIO.read_text()) | overrides
    raw["training"]["seed"] = seed
    return msgspec.convert(raw, Scenario)


def test_the_default_scenario_is_flat_and_a_multipath_ue_gets_a_seeded_channel() -> None:
    assert all(g is None for g in load_scenario().channel_gains())
    a, b, c = (_load(_with_ue0(**SELECTIVE), seed) for seed in (1, 1, 2))
    ga, gb, gc = (s.channel_gains()[0] for s in (a, b, c))
    assert ga == gb and ga != gc  # same seed, same draw
    assert ga is not None and len(ga) == a.phy_config().num_data and a.channel_gains()[1:] == [None] * 9
    assert a.profiles(CodecConfig())[0].channel_gain == ga


def test_a_selective_ue_is_charged_more_airtime_than_at_the_same_mean_snr_flat() -> None:
    """Fails on the code before EESM in the engine: a UE's channel was not a scenario field."""
    flat, sel = load_scenario(), load_scenario("testbed/experiment/scenarios/selective.toml")
    pf, ps = flat.profiles(CodecConfig()), sel.profiles(CodecConfig())
    air = sel.airtime()
    longer = 0
    for f, s in zip(pf, ps, strict=True):
        assert f.snr_db == s.snr_db
        up_f = air.upload(60_000, f.snr_db, gain=f.channel_gain)
        up_s = air.upload(60_000, s.snr_db, gain=s.channel_gain)
        assert up_s.elapsed_s >= up_f.elapsed_s
        longer += up_s.elapsed_s > up_f.elapsed_s
        assert (s.channel_gain is not None) == s.weak  # selective.toml: the weak UEs are the selective ones
    assert longer >= 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"channel": "rayleigh"}, "ues ue0: channel='rayleigh' is not one of flat, multipath"),
        ({"channel": "multipath"}, 'ues ue0: channel = "multipath" needs rms_delay_spread_samples'),
        ({**SELECTIVE, "rms_delay_spread_samples": 100.0}, "rms_delay_spread_samples in"),
        ({**SELECTIVE, "rms_delay_spread_samples": -1.0}, "rms_delay_spread_samples in"),
        ({**SELECTIVE, "k_factor_db": 99.0}, "k_factor_db=99.0"),
        ({"rms_delay_spread_samples": 1.0}, "rms_delay_spread_samples is for channel"),
        ({"delay_spread": 1.0}, "unknown field"),
    ],
)
def test_bad_channel_fields_are_refused_with_the_field_named(fields, message, tmp_path) -> None:
    text = DEFAULT_SCENARIO.read_text().replace(
        "snr_db = 5.0\n", "snr_db = 5.0\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items()), 1
    )
    assert tomllib.loads(text)["ues"][0]["name"] == "ue0"
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
