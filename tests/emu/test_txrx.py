"""`testbed radio txrx --backend pluto` between two virtual Plutos: frames through pyadi-iio, libiio and TCP
into the hub's air and out at another board; the same figures as the hub's air at the same scenario."""

from __future__ import annotations

import json

import pytest
from emu_helpers import make_scenario

from testbed import emu
from testbed.cli import main

pytest.importorskip("adi")


def _txrx(capsys, *args: str) -> dict:
    assert main(["radio", "txrx", "--frames", "10", "--rx-gain-db", "30", "--json", *args]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


def test_frames_cross_from_one_virtual_pluto_to_another_as_on_the_hub_air(capsys, tmp_path):
    """At 11 dB: the Pluto backend's TX head-room (2^14 in +-2^15) clips OFDM peaks into a distortion floor near
    22 dB SNR (see docs/virtual-pluto.md) that the hub's float path does not have; far below it they agree."""
    sc = make_scenario(nodes=[{"id": "bs", "position_m": [0.0, 0.0]},
                              {"id": "ue-1", "position_m": [100.0, 0.0], "crystal_ppm": 2.0}])  # fmt: skip
    path = tmp_path / "s.toml"
    path.write_text(
        'seed = 5\nsample_rate_hz = 2.5e6\nnoise_floor_dbm = -90.0\n[[nodes]]\nid = "bs"\nposition_m = [0.0, 0.0]\n'
        '[[nodes]]\nid = "ue-1"\nposition_m = [100.0, 0.0]\ncrystal_ppm = 2.0\n'
    )
    with emu.start(sc) as running:
        pluto = _txrx(capsys, "--backend", "pluto", "--tx-uri", running.uris["bs"], "--rx-uri", running.uris["ue-1"],
                      "--tx-power-dbm", "0", "--sample-rate-hz", "2.5e6")  # fmt: skip
    hub_air = _txrx(capsys, "--backend", "loopback", "--scenario", str(path), "--tx-node", "bs", "--rx-node", "ue-1")
    assert pluto["per"] == 0.0 and hub_air["per"] == 0.0
    assert pluto["snr_db_mean"] == pytest.approx(hub_air["snr_db_mean"], abs=1.0)
    assert pluto["cfo_hz_mean"] == pytest.approx(sc.cfo_hz("bs", "ue-1"), abs=300)


def test_a_run_repeats_sample_for_sample(capsys):
    runs = []
    for _ in range(2):
        with emu.start(make_scenario()) as running:
            runs.append(_txrx(capsys, "--backend", "pluto", "--tx-uri", running.uris["bs"],
                              "--rx-uri", running.uris["ue-1"], "--sample-rate-hz", "2.5e6"))  # fmt: skip
    assert runs[0]["frames_ok"] == 10
    assert runs[0] == runs[1]  # SNR and CFO to the last digit: time advances by samples, not by the wall clock
