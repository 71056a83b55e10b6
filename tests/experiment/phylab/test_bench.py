from testbed.experiment.phylab.bench import BenchConfig, median_seconds, run_bench
from testbed.phy import OfdmModem


def test_bench_reports_throughput_and_decodes_its_frames():
    result = run_bench(OfdmModem(), BenchConfig(mcs=("qpsk-1/2",), frames_per_buffer=2, repeats=1), lambda s: None)
    row = result["qpsk-1/2"]
    assert row["tx_msps"] > 0 and row["rx_msps"] > 0
    assert row["frames_decoded"] == row["frames"] == 2
    assert set(result["targets"]) == {"tx_msps_min_over_mcs", "rx_msps[16qam-1/2]"}
    assert result["targets"]["rx_msps[16qam-1/2]"] == {"value": None, "limit": 8.0, "rule": ">=", "met": False}


def test_median_runs_warm_up_plus_repeats():
    calls = []
    cpu, wall = median_seconds(lambda: calls.append(1), 3)
    assert cpu >= 0.0 and wall >= 0.0
    assert len(calls) == 4
