import itertools
import math
import time

import pytest
import torch
from torch import nn

from testbed.errors import PolicyError
from testbed.learning.codec import SemanticCodec
from testbed.learning.codec_config import CodecConfig
from testbed.link.messages import ChannelReport
from testbed.policy.capability import (
    CODEC_PASS_NOISE_VAR,
    CapabilityReport,
    ThroughputMeasurement,
    available_memory_bytes,
    battery_energy_j,
    build_report,
    measure_codec_throughput,
    measure_throughput,
    measurement_clock,
)
from testbed.policy.cpufreq import SimulatedCpuFreq, SysfsCpuFreq
from testbed.policy.profiles import default_profiles


def _model_and_batch():
    gen = torch.Generator().manual_seed(7)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.rand(12, 1, 4, 4, generator=gen)
    y = torch.randint(0, 3, (12,), generator=gen)
    return model, x, y


def _fake_clock(durations_s):
    """A clock whose k-th timed pass lasts durations_s[k] (start/stop readings alternate)."""
    t = itertools.accumulate(itertools.chain([0.0], *[(d, 0.0) for d in durations_s]))
    return lambda: next(t)


def test_throughput_is_the_fastest_timed_repeat_after_warmup():
    model, x, y = _model_and_batch()
    # 2 warm-up passes (slow, ignored) then 5 repeats; fastest pass 0.02 s -> 12 / 0.02 = 600 samples/s (the
    # slower ones were disturbed; the median would say 400).
    clock = _fake_clock([1.0, 1.0, 0.03, 0.02, 0.03, 0.05, 0.04])
    m = measure_throughput(model, x, y, nn.functional.cross_entropy, warmup=2, repeats=5, clock=clock)
    assert m.samples_per_s == pytest.approx(600.0)
    assert len(m.repeats_samples_per_s) == 5 and m.batch_size == 12


def test_warmup_runs_until_the_pass_time_settles_then_blocks_of_equal_work_are_timed():
    model, x, y = _model_and_batch()
    # warm-up 0.5, 0.3, 0.2, 0.2 s: settled at the 4th pass (within 10% of the 3rd); blocks of 0.5 s hold
    # ceil(0.5 / 0.2) = 3 passes = 36 samples; block times 0.6, 0.9, 0.6 s -> 60, 40, 60 samples/s.
    clock = _fake_clock([0.5, 0.3, 0.2, 0.2, 0.6, 0.9, 0.6])
    m = measure_throughput(
        model, x, y, nn.functional.cross_entropy, warmup=2, repeats=3, block_s=0.5, max_warmup_s=5.0, clock=clock
    )
    assert m.warmup_passes == 4 and m.passes_per_block == 3
    assert m.repeats_samples_per_s == pytest.approx((60.0, 40.0, 60.0)) and m.samples_per_s == pytest.approx(60.0)


def test_warmup_that_never_settles_is_bounded_by_its_time_budget():
    model, x, y = _model_and_batch()
    clock = _fake_clock([0.1, 0.3] * 10)  # never within 10% of the previous pass
    m = measure_throughput(
        model, x, y, nn.functional.cross_entropy, warmup=1, repeats=1, block_s=0.0, max_warmup_s=1.0, clock=clock
    )
    assert m.warmup_passes == 6  # 0.1+0.3+0.1+0.3+0.1+0.3 = 1.2 s >= 1.0 s budget
    assert m.passes_per_block == 1 and m.samples_per_s == pytest.approx(12 / 0.1)  # 7th pass


def test_measurement_leaves_the_model_untouched():
    model, x, y = _model_and_batch()
    model.eval()
    before = [p.detach().clone() for p in model.parameters()]
    measure_throughput(model, x, y, nn.functional.cross_entropy, warmup=1, repeats=2)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters()) and not model.training


def test_empty_batch_or_zero_repeats_are_refused():
    model, x, y = _model_and_batch()
    with pytest.raises(PolicyError):
        measure_throughput(model, x[:0], y[:0], nn.functional.cross_entropy)
    with pytest.raises(PolicyError):
        measure_throughput(model, x, y, nn.functional.cross_entropy, repeats=0)
    with pytest.raises(PolicyError, match="block_s"):
        measure_throughput(model, x, y, nn.functional.cross_entropy, block_s=-1.0)


def test_a_stopped_clock_is_refused_not_divided_by():
    model, x, y = _model_and_batch()
    with pytest.raises(PolicyError, match="clock"):
        measure_throughput(model, x, y, nn.functional.cross_entropy, warmup=0, repeats=1, clock=lambda: 5.0)


def test_memory_and_battery_readers(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  1000 kB\nMemAvailable:    2048 kB\n")
    assert available_memory_bytes(meminfo) == 2048 * 1024
    meminfo.write_text("MemTotal:  1000 kB\n")
    with pytest.raises(PolicyError, match="MemAvailable"):
        available_memory_bytes(meminfo)
    supplies = tmp_path / "power_supply"
    (supplies / "AC").mkdir(parents=True)
    (supplies / "AC" / "type").write_text("Mains\n")
    assert battery_energy_j(supplies) is None
    (supplies / "BAT0").mkdir()
    (supplies / "BAT0" / "type").write_text("Battery\n")
    (supplies / "BAT0" / "energy_now").write_text("1000000\n")  # 1 Wh
    assert battery_energy_j(supplies) == pytest.approx(3600.0)


@pytest.fixture
def meminfo(tmp_path):
    path = tmp_path / "meminfo"
    path.write_text("MemAvailable: 8388608 kB\n")  # 8 GiB
    return path


def test_simulated_report_scales_by_profile_and_frequency(meminfo, tmp_path):
    profiles = default_profiles()
    pi4 = profiles.get("pi_4")
    cpu = SimulatedCpuFreq(pi4.frequency_table, 750e6)  # snapped up to 800 MHz
    host = ThroughputMeasurement(6000.0, (6000.0,), 32)
    report = build_report(
        "ue1", pi4, host, cpu, speed_scale=profiles.speed_scale("pi_4"), meminfo_path=meminfo,
        power_supply_root=tmp_path,
    )  # fmt: skip
    assert report.samples_per_s == pytest.approx(6000.0 / 6 * 800 / 1500)
    assert report.samples_per_s_at(1500e6) == pytest.approx(1000.0)
    assert report.cycles_per_sample == pytest.approx(1.5e6)
    assert report.available_memory_bytes == pi4.memory_bytes  # capped by the board's RAM
    assert report.energy_budget_j == pi4.energy_budget_j


def test_board_report_reads_cpufreq_and_battery_caps_the_budget(meminfo, pi4_tree, tmp_path):
    supplies = tmp_path / "ps"
    (supplies / "BAT0").mkdir(parents=True)
    (supplies / "BAT0" / "type").write_text("Battery\n")
    (supplies / "BAT0" / "energy_now").write_text("2000\n")  # 7.2 J left
    pi4 = default_profiles().get("pi_4")
    report = build_report(
        "ue1", pi4, ThroughputMeasurement(900.0, (900.0,), 32), SysfsCpuFreq(pi4_tree), meminfo_path=meminfo,
        power_supply_root=supplies,
    )  # fmt: skip
    assert report.samples_per_s == 900.0 and report.cpu_freq_hz == 1500e6
    assert report.energy_budget_j == pytest.approx(7.2)
    assert report.available_memory_bytes == 8 * 2**30


def _report(**overrides):
    pi4 = default_profiles().get("pi_4")
    fields = dict(
        ue_id="u", samples_per_s=1000.0, cpu_freq_hz=1.5e9, frequency_table=pi4.frequency_table,
        available_memory_bytes=2**30, energy_budget_j=50.0, kappa_j_per_cycle_hz2=1e-27, min_tx_power_dbm=-80.0,
        max_tx_power_dbm=7.0,
    )  # fmt: skip
    fields.update(overrides)
    return CapabilityReport(**fields)


@pytest.mark.parametrize(
    "field,value",
    [
        ("samples_per_s", -5.0),
        ("samples_per_s", 0.0),
        ("samples_per_s", math.nan),
        ("samples_per_s", 1e12),  # absurd
        ("cpu_freq_hz", 0.0),
        ("cpu_freq_hz", 2e9),  # outside its own table
        ("available_memory_bytes", -1),
        ("energy_budget_j", math.inf),
        ("energy_budget_j", 0.0),
        ("kappa_j_per_cycle_hz2", 1.0),
        ("max_tx_power_dbm", 90.0),
        ("min_tx_power_dbm", 10.0),  # above the maximum
        ("samples_per_s", True),
    ],
)
def test_bad_reports_are_refused_with_the_field_named(field, value):
    with pytest.raises(PolicyError, match=field.split("_")[0]):
        _report(**{field: value}).validate()
    with pytest.raises(PolicyError):
        _report(**{field: value}).resources(ChannelReport.assumed(10.0, 0.0))


def test_a_valid_report_becomes_allocator_resources():
    ue = _report().resources(ChannelReport.assumed(10.0, 0.0))
    assert ue.cycles_per_sample == pytest.approx(1.5e6) and ue.energy_budget_j == 50.0


TINY_CODEC = CodecConfig(image_size_px=8, num_symbols=4, encoder_channels=(4, 8), decoder_hidden=16)


def test_codec_throughput_is_the_codec_pass_timed_by_measure_throughput():
    codec = SemanticCodec(TINY_CODEC, torch.Generator().manual_seed(3))
    codec.eval()
    before = [p.detach().clone() for p in codec.parameters()]
    # every timed pass takes 0.125 s: warm-up until 0.3 s (3 passes), blocks of ceil(0.07 / 0.125) = 1 pass
    m = measure_codec_throughput(codec, batch_size=16, repeats=5, clock=_fake_clock([0.125] * 8))
    assert m.samples_per_s == pytest.approx(16 / 0.125) and m.repeats_samples_per_s == pytest.approx((128.0,) * 5)
    assert m.warmup_passes == 3 and m.passes_per_block == 1 and m.batch_size == 16 and m.clock == "<lambda>"
    assert all(torch.equal(a, b) for a, b in zip(before, codec.parameters(), strict=True))
    assert all(p.grad is None for p in codec.parameters()) and not codec.training


def test_codec_pass_trains_encoder_and_decoder_on_a_seeded_batch():
    codec = SemanticCodec(TINY_CODEC, torch.Generator().manual_seed(3))
    seen = []
    codec.encoder.register_forward_hook(lambda module, args, out: seen.append(("encoder", args[0].clone())))
    codec.decoder.register_forward_hook(lambda module, args, out: seen.append(("decoder", args[1])))
    measure_codec_throughput(codec, batch_size=4, repeats=1, clock=_fake_clock([0.2] * 3), seed=5)
    encoder_inputs = [x for name, x in seen if name == "encoder"]
    assert len(encoder_inputs) == 3 and all(torch.equal(encoder_inputs[0], x) for x in encoder_inputs)
    assert encoder_inputs[0].shape == (4, 1, 8, 8) and 0.0 <= float(encoder_inputs[0].min()) <= 1.0
    assert [x for name, x in seen if name == "decoder"] == [CODEC_PASS_NOISE_VAR] * 3
    other = []
    codec.encoder.register_forward_hook(lambda module, args, out: other.append(args[0].clone()))
    measure_codec_throughput(codec, batch_size=4, repeats=1, clock=_fake_clock([0.2] * 3), seed=6)
    assert not torch.equal(other[0], encoder_inputs[0])  # the batch comes from the seed


def test_codec_throughput_refuses_an_empty_batch():
    with pytest.raises(PolicyError, match="batch_size"):
        measure_codec_throughput(SemanticCodec(TINY_CODEC, torch.Generator().manual_seed(0)), batch_size=0)


@pytest.mark.parametrize(("threads", "clock"), [(1, time.thread_time), (2, time.perf_counter)])
def test_measurement_clock_is_thread_cpu_time_only_when_torch_computes_in_the_calling_thread(threads, clock):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert measurement_clock() is clock
    finally:
        torch.set_num_threads(before)
