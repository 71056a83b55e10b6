import json

from testbed.cli import main


def test_link_send_json_is_one_object(capsys, tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(bytes(range(256)) * 20)
    rc = main(["link", "send", "--file", str(path), "--ues", "2", "--snr-db", "28", "20", "--loss", "0.1",
               "--frame-bytes", "1500", "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["complete"] and out["object_bytes"] == 5120
    assert [d["ok"] for d in out["deliveries"]] == [True, True]
    assert out["airtime_s"] == out["window_samples"] / out["sample_rate_hz"]
    assert {c["rx_node"] for c in out["channel"]} == {1, 2}


def test_link_send_up_on_model_backend_human_output(capsys):
    rc = main(["link", "send", "--megabytes", "0.01", "--ues", "4", "--direction", "up", "--backend", "model",
               "--loss", "0.2", "--frame-bytes", "2000"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and "uplink of 10000 bytes, 4 UE(s), backend model" in out and "goodput" in out


def test_link_send_that_cannot_complete_exits_1_naming_the_receiver(capsys):
    rc = main(["link", "send", "--megabytes", "0.003", "--ues", "2", "--snr-db", "30", "-10", "--max-repairs", "0",
               "--mcs", "qpsk-1/2", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 1 and not json.loads(captured.out)["complete"]
    assert "node 2: no frame of object 1 from node 0 arrived" in captured.err


def test_bad_arguments_exit_2(capsys):
    assert main(["link", "send", "--ues", "3", "--snr-db", "1", "2"]) == 2
    assert "--snr-db give 1 or 3 values" in capsys.readouterr().err
