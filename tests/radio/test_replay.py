"""`testbed radio replay`: a txrx recording, and its ci16 and ci8 conversions, decode to the same payloads."""

import json

import numpy as np
import pytest
import sigmf
from sigmf_helpers import write_foreign

from testbed.cli import main
from testbed.cli._replay import decode_recording
from testbed.radio.base import RadioConfig
from testbed.radio.sigmf_io import SigmfReplayRadio

FRAMES, PAYLOAD_BYTES, SEED = 4, 120, 3


def _json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


@pytest.fixture
def recording(tmp_path, capsys):
    """A txrx loopback run recorded through RecordingRadio (cf32_le), and its rate and samples."""
    nodes = '[[nodes]]\nid = "bs"\nposition_m = [0.0, 0.0]\n[[nodes]]\nid = "ue1"\nposition_m = [20.0, 0.0]\n'
    (tmp_path / "s.toml").write_text(f"seed = 5\n{nodes}crystal_ppm = 3.0\n")
    stem = tmp_path / "rec"
    args = ["radio", "txrx", "--scenario", str(tmp_path / "s.toml"), "--tx-node", "bs", "--rx-node", "ue1"]
    args += ["--record", str(stem)]
    args += ["--frames", str(FRAMES), "--payload-bytes", str(PAYLOAD_BYTES), "--seed", str(SEED), "--json"]
    assert main(args) == 0
    assert _json(capsys)["frames_ok"] == FRAMES
    src = SigmfReplayRadio(tmp_path / "rec-rx")
    src.configure(RadioConfig(center_freq_hz=src.recorded_center_freq_hz, sample_rate_hz=src.recorded_sample_rate_hz))
    return tmp_path / "rec-rx", src.recorded_sample_rate_hz, src.receive(src.remaining).iq


def _payloads():
    rng = np.random.default_rng(SEED)  # txrx's payloads
    return [rng.integers(0, 256, PAYLOAD_BYTES, dtype=np.uint8).tobytes() for _ in range(FRAMES)]


def test_cf32_ci16_ci8_and_archive_replays_decode_the_same_payloads(recording, tmp_path):
    stem, rate, iq = recording
    write_foreign(tmp_path / "c16", iq, "ci16_le", rate=rate)
    write_foreign(tmp_path / "c8", iq, "ci8", rate=rate)
    sigmf.fromfile(str(stem)).archive(str(tmp_path / "arch"))  # the same recording as one .sigmf archive
    paths = (stem, tmp_path / "c16", tmp_path / "c8", tmp_path / "arch.sigmf")
    reps = [decode_recording(path) for path in paths]
    for rep in reps:
        assert [f.payload for f in rep.frames] == _payloads(), rep.datatype
        assert [f.seq for f in rep.frames] == list(range(FRAMES))
    assert [r.scale for r in reps] == [1.0, 32768.0, 128.0, 1.0]
    snr = [np.mean([f.snr_db for f in r.frames]) for r in reps]
    assert abs(snr[1] - snr[0]) < 0.5 and abs(snr[2] - snr[0]) < 3.0  # ci8 adds its quantisation noise


def test_windowed_decoding_finds_each_frame_once(recording):
    stem, _rate, _iq = recording
    whole = decode_recording(stem)
    slot = 4000  # longer than one frame of this recording
    windowed = decode_recording(stem, window_samples=2500, max_frame_samples=slot)
    assert [(f.start_sample, f.payload) for f in windowed.frames] == [(f.start_sample, f.payload) for f in whole.frames]


def test_replay_cli_reports_frames_per_snr_cfo_and_the_scale(recording, tmp_path, capsys):
    stem, rate, iq = recording
    write_foreign(tmp_path / "c8", iq, "ci8", rate=rate)
    assert main(["radio", "replay", str(tmp_path / "c8.sigmf-meta"), "--frames-sent", "6", "--json"]) == 0
    r = _json(capsys)
    assert (r["datatype"], r["scale"], r["frames_found"], r["frames_decoded"]) == ("ci8", 128.0, FRAMES, FRAMES)
    assert "full scale of ci8" in r["scale_source"]
    assert r["per"] == pytest.approx(1 - FRAMES / 6)
    assert r["snr_db_mean"] > 15 and abs(r["cfo_hz_mean"]) > 1000  # ue1's 3 ppm crystal
    assert [f["seq"] for f in r["frames"]] == list(range(FRAMES))
    assert main(["radio", "replay", str(stem)]) == 0
    assert "scaled by 1/1 (testbed:scale in the metadata)" in capsys.readouterr().out


def test_replay_cli_refuses_an_unsupported_datatype_in_one_line(tmp_path, capsys):
    (tmp_path / "u.sigmf-data").write_bytes(bytes(256))
    meta = sigmf.SigMFFile(
        data_file=tmp_path / "u.sigmf-data", global_info={"core:datatype": "cu8", "core:sample_rate": 1e6}
    )
    meta.add_capture(0)
    meta.tofile(tmp_path / "u.sigmf-meta")
    assert main(["radio", "replay", str(tmp_path / "u"), "--json"]) == 2
    captured = capsys.readouterr()
    (line,) = captured.out.strip().splitlines()
    assert "cu8" in json.loads(line)["error"] and "unsigned" in json.loads(line)["error"]
    assert "Traceback" not in captured.err
