import json

from testbed.cli import main


def test_phy_ber_json_writes_files_and_one_object(tmp_path, capsys):
    out = tmp_path / "ber"
    code = main(
        ["phy", "ber", "--json", "--quick", "--frames", "2", "--mcs", "bpsk-1/2", "--noise-samples", "20000"]
        + ["--out", str(out)]
    )
    assert code == 0
    stdout = capsys.readouterr().out
    assert stdout.count("\n") == 1
    result = json.loads(stdout)
    for key in ("awgn", "multipath", "uncoded", "sync", "targets"):
        assert key in result
    assert set(result["awgn"]) == set(result["multipath"]) == {"bpsk-1/2"}
    assert "snr_db_at_per_10pct" in result["awgn"]["bpsk-1/2"]
    assert json.loads((out / "phy_ber.json").read_text())["sync"]["noise_samples"] == 20_000
    assert (out / "phy_ber.png").read_bytes()[:4] == b"\x89PNG"


def test_phy_bench_json(capsys):
    assert main(["phy", "bench", "--json", "--mcs", "bpsk-3/4", "--repeats", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"tx_msps", "rx_msps"} <= set(result["bpsk-3/4"])
    assert "tx_msps_min_over_mcs" in result["targets"]


def test_unknown_mcs_is_a_clear_error(capsys):
    assert main(["phy", "bench", "--mcs", "qpsk-7/8"]) == 2
    assert "qpsk-7/8" in capsys.readouterr().err
