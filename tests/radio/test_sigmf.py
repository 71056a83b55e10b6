"""SigMF recording of any backend and replay: official library opens it, bit-exact replay, damaged files refused."""

import json

import numpy as np
import pytest
import sigmf
from conftest import RADIO, make_scenario
from sigmf_helpers import write_foreign

import testbed
from testbed.errors import ConfigError, RadioError
from testbed.radio.air import Air
from testbed.radio.loopback import LoopbackRadio
from testbed.radio.sigmf_io import RecordingRadio, SigmfReplayRadio


def _record(tmp_path, rng, datatype="cf32_le", gap=False):
    air = Air(make_scenario())
    bs = LoopbackRadio(air, "bs")
    bs.configure(RADIO)
    ue = RecordingRadio(
        LoopbackRadio(air, "ue1"), tmp_path / "cap", datatype=datatype, hw="loopback ue1", hardware={"node": "ue1"}
    )
    ue.configure(RADIO)
    burst = ((rng.standard_normal(500) + 1j * rng.standard_normal(500)) * 0.5).astype(np.complex64)
    bs.transmit(burst, 300)
    ue.transmit(burst[:100], 0)
    blocks = [ue.receive(1000), ue.receive(600)]
    if gap:
        ue.inner.receive(400)  # not recorded: the recorded clock jumps
    ue.configure(RADIO.with_(rx_gain_db=6.0))
    blocks.append(ue.receive(400))
    ue.annotate(300, 500, "frame 0", freq_edges_hz=(2.399e9, 2.401e9), snr_db=np.float32(21.5), crc_ok=True)
    ue.close()
    return blocks


def test_recording_opens_with_sigmf_and_carries_metadata(tmp_path, rng):
    _record(tmp_path, rng)
    rec = sigmf.fromfile(str(tmp_path / "cap-rx"))
    assert rec.get_global_field("core:datatype") == "cf32_le"
    assert rec.get_global_field("core:sample_rate") == 2.5e6
    assert rec.get_global_field("core:hw") == "loopback ue1"
    caps = rec.get_captures()
    assert [c["core:sample_start"] for c in caps] == [0, 1600]  # the gain change opened a new capture
    assert caps[0]["core:frequency"] == 2.4e9 and caps[1]["testbed:rx_gain_db"] == 6.0
    (ann,) = rec.get_annotations()
    assert ann["core:label"] == "frame 0" and ann["core:sample_start"] == 300 and ann["testbed:crc_ok"] is True
    assert ann["testbed:snr_db"] == pytest.approx(21.5)
    assert (ann["core:freq_lower_edge"], ann["core:freq_upper_edge"]) == (2.399e9, 2.401e9)  # viewers draw the band
    assert rec.get_global_field("testbed:version") == testbed.__version__
    assert rec.get_global_field("testbed:hw_node") == "ue1"
    tx = sigmf.fromfile(str(tmp_path / "cap-tx"))
    assert tx.sample_count == 100 and tx.get_captures()[0]["core:global_index"] == 0


def test_cf32_replay_is_bit_exact(tmp_path, rng):
    blocks = _record(tmp_path, rng)
    replay = SigmfReplayRadio(tmp_path / "cap-rx")
    replay.configure(RADIO)
    for blk in blocks:
        got = replay.receive(blk.iq.size)
        assert got.start_sample == blk.start_sample and not got.overflow
        np.testing.assert_array_equal(got.iq, blk.iq)
    with pytest.raises(RadioError, match="remain"):
        replay.receive(1)
    with pytest.raises(RadioError, match="cannot transmit"):
        replay.transmit(np.ones(3, np.complex64))


def test_ci16_replay_within_quantisation(tmp_path, rng):
    blocks = _record(tmp_path, rng, datatype="ci16_le")
    replay = SigmfReplayRadio(tmp_path / "cap-rx")
    replay.configure(RADIO)
    got = replay.receive(2000)
    np.testing.assert_allclose(got.iq, np.concatenate([b.iq for b in blocks]), atol=1 / 32767)
    auto = sigmf.fromfile(str(tmp_path / "cap-rx")).read_samples()  # the library's autoscale agrees
    np.testing.assert_allclose(auto, got.iq, atol=1e-4)


def test_a_clock_jump_is_flagged_on_replay(tmp_path, rng):
    _record(tmp_path, rng, gap=True)
    replay = SigmfReplayRadio(tmp_path / "cap-rx")
    replay.configure(RADIO)
    assert not replay.receive(1500).overflow
    blk = replay.receive(500)
    assert blk.overflow and blk.start_sample == 1500


def test_replay_refuses_other_settings(tmp_path, rng):
    _record(tmp_path, rng)
    replay = SigmfReplayRadio(tmp_path / "cap-rx")
    with pytest.raises(ConfigError, match="recorded at"):
        replay.configure(RADIO.with_(sample_rate_hz=1e6))


def _edit_meta(path, fn):
    meta = json.loads(path.read_text())
    fn(meta)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        ("truncate", "damaged|hash"),
        ("datatype", "datatype"),
        ("rate", "sample_rate"),
        ("no_meta", "SigMF"),
        ("garbage_meta", "SigMF"),
    ],
)
def test_damaged_recordings_are_refused(tmp_path, rng, damage, fragment):
    _record(tmp_path, rng)
    data, meta = tmp_path / "cap-rx.sigmf-data", tmp_path / "cap-rx.sigmf-meta"
    if damage == "truncate":
        with open(data, "r+b") as f:
            f.truncate(data.stat().st_size - 3)
    elif damage == "datatype":
        _edit_meta(meta, lambda m: m["global"].update({"core:datatype": "ri8"}))
    elif damage == "rate":
        _edit_meta(meta, lambda m: m["global"].pop("core:sample_rate"))
    elif damage == "no_meta":
        meta.unlink()
    else:
        meta.write_text("{not json")
    with pytest.raises(ConfigError, match=fragment):
        SigmfReplayRadio(tmp_path / "cap-rx")


def test_unsupported_datatype_and_unrecorded_annotation(tmp_path):
    air = Air(make_scenario())
    with pytest.raises(ConfigError, match="datatype"):
        RecordingRadio(LoopbackRadio(air, "bs"), tmp_path / "x", datatype="ri8")
    rec = RecordingRadio(LoopbackRadio(air, "ue1"), tmp_path / "y")
    rec.configure(RADIO)
    with pytest.raises(RadioError, match="not recorded"):
        rec.annotate(0, 10, "frame")
    rec.close()


@pytest.mark.parametrize("datatype", ["ci16_le", "ci16_be", "ci8", "cf32_be"])
def test_foreign_recordings_replay_at_their_full_scale(tmp_path, rng, datatype):
    """A recording without testbed:scale is read at its datatype's full scale (the old code served a ci16_le
    file as raw integers, 2^15 times too large, and refused the others)."""
    iq = ((rng.standard_normal(700) + 1j * rng.standard_normal(700)) * 0.1).astype(np.complex64)
    held = write_foreign(tmp_path / "x", iq, datatype)
    replay = SigmfReplayRadio(tmp_path / "x")
    replay.configure(RADIO)
    np.testing.assert_allclose(replay.receive(700).iq, held, atol=1e-6)
    kind = datatype.split("_")[0]
    assert replay.scale == {"ci16": 32768.0, "ci8": 128.0, "cf32": 1.0}[kind]
    assert "full scale" in replay.scale_source and "testbed:scale" in replay.scale_source


@pytest.mark.parametrize(
    ("datatype", "reason"),
    [("rf32_le", "real-valued"), ("ri16_le", "real-valued"), ("cu8", "unsigned"), ("cf64_le", "not read")],
)
def test_unsupported_datatypes_are_refused_with_the_reason(tmp_path, datatype, reason):
    (tmp_path / "x.sigmf-data").write_bytes(bytes(64))
    meta = sigmf.SigMFFile(
        data_file=tmp_path / "x.sigmf-data", global_info={"core:datatype": datatype, "core:sample_rate": 1e6}
    )
    meta.add_capture(0)
    meta.tofile(tmp_path / "x.sigmf-meta")
    with pytest.raises(ConfigError, match=f"{datatype}.*cannot be replayed: .*{reason}.*supported") as err:
        SigmfReplayRadio(tmp_path / "x")
    assert "\n" not in str(err.value)


def test_a_bad_testbed_scale_is_refused(tmp_path, rng):
    _record(tmp_path, rng, datatype="ci16_le")
    _edit_meta(tmp_path / "cap-rx.sigmf-meta", lambda m: m["global"].update({"testbed:scale": -3}))
    with pytest.raises(ConfigError, match="testbed:scale"):
        SigmfReplayRadio(tmp_path / "cap-rx")


def test_an_inverted_band_is_refused(tmp_path):
    rec = RecordingRadio(LoopbackRadio(Air(make_scenario()), "ue1"), tmp_path / "y")
    rec.configure(RADIO)
    rec.receive(10)
    with pytest.raises(RadioError, match="lower < upper"):
        rec.annotate(0, 5, "frame", freq_edges_hz=(2.5e9, 2.4e9))
    rec.close()
