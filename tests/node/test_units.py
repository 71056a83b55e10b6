"""Small parts of the daemons: config validation, sd_notify datagrams, the round outcome rule, and the
frame stream that decodes bursts cut by block boundaries exactly once."""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from testbed.errors import ConfigError, RadioError
from testbed.node.actions import Failed
from testbed.node.bs_core import round_outcome
from testbed.node.config import AirConfig, BsConfig, UeConfig, load_config, parse_config
from testbed.node.pump import FrameStream, RadioPump
from testbed.node.runtime import radio_factory
from testbed.node.sdnotify import Notifier
from testbed.phy import OfdmModem
from testbed.radio.base import RxBlock

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (b'[bs]\nues = { "ue-1" = 1 }\n[air]\nmcs = "qpsk-9/10"\n', "air.mcs"),
        (b'[bs]\nues = { "ue-1" = 1 }\n[air]\nsample_rate_hz = 1000.0\n', "sample_rate_hz"),
        (b'[bs]\nues = { "UE 1" = 1 }\n', "ues"),
        (b'[bs]\nues = { "ue-1" = 1, "ue-2" = 1 }\n', "same node id"),
        (b'[bs]\nues = { "ue-1" = 1, "ue-2" = 257 }\n', "modulo 256"),
        (b'[bs]\nues = { "ue-1" = 0 }\n', "ues"),
        (b"[bs]\nues = {}\ndeadline_s = -1\n", "deadline_s"),
        (b'[bs]\nues = {}\n[radio]\nkind = "pluto"\n', "radio.uri"),
        (b'[bs]\nues = {}\n[radio]\nkind = "usrp"\n', "radio.kind"),
        (b"[bs]\nues = {}\nunknown_s = 1\n", "unknown_s"),
        (b"[bs\n", "not valid TOML"),
        (b'[bs]\nues = {}\n[assign]\npolicy = "joint"\n', "needs a .training. section"),
        (b'[bs]\nues = {}\n[assign]\npolicy = "fastest"\n', "policy"),
        (b'[bs]\nues = { "ue-1" = 1, "ue-2" = 2 }\n[training]\nnum_shards = 1\n', "num_shards=1"),
        (b"[bs]\nues = {}\n[training]\nencoder_channels = [0, 8]\n", "encoder_channels"),
        (b'[bs]\nues = {}\n[assign]\nmodes = { "ue-1" = "split" }\n', "modes"),
        (b'[bs]\nues = {}\n[assign]\nmode = "centralized-symbols"\n', "assign.mode"),  # protocol 1's name
    ],
)
def test_bad_bs_configs_are_refused_naming_the_field(text: bytes, field: str) -> None:
    with pytest.raises(ConfigError, match=field if "section" in field else field.replace(".", r"\.")):
        parse_config(text, BsConfig, source="bs.toml")


def test_pluto_radio_is_wired_and_a_failed_radio_stops_the_pump(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "adi", None)  # pyadi-iio unusable: import adi raises ImportError
    cfg = parse_config(b'[ue]\nue_id = "ue-1"\nnode_id = 1\n[radio]\nkind = "pluto"\nuri = "ip:192.0.2.1"\n', UeConfig)
    open_radio = radio_factory(cfg.radio, cfg.air)
    with pytest.raises(RadioError, match="pyadi"):
        open_radio(threading.Event())
    pump = RadioPump(open_radio, cfg.air, stream_id=1)
    pump.start()
    assert not pump.wait_ready(30.0)
    assert pump.stop(5.0)
    events = pump.events()
    assert len(events) == 1 and isinstance(events[0], Failed) and "pyadi" in events[0].reason


def test_pluto_uris_are_checked_at_load_and_xml_is_accepted(tmp_path: Path) -> None:
    desc = tmp_path / "pluto.xml"
    desc.write_text("<context name='xml'/>")
    head = '[ue]\nue_id = "ue-1"\nnode_id = 1\n[radio]\nkind = "pluto"\n'
    assert parse_config(f'{head}uri = "xml:{desc}"\n', UeConfig).radio.uri == f"xml:{desc}"
    for uri, why in (("tcp:192.0.2.1", "not of the form"), (f"xml:{tmp_path / 'no.xml'}", "no XML context")):
        with pytest.raises(ConfigError, match=f"ue.toml: .*radio.uri: .*{why}"):
            parse_config(f'{head}uri = "{uri}"\n', UeConfig, source="ue.toml")


def test_adaptive_mcs_falls_back_until_measured_and_slots_fit_the_slowest_frame() -> None:
    adaptive, fixed = AirConfig(mcs="adaptive"), AirConfig(mcs="16qam-1/2")
    assert adaptive.mcs_policy.choose(None) == "bpsk-1/2" and adaptive.mcs_policy.choose(30.0) == "64qam-3/4"
    assert adaptive.mcs_policy.choose(7.0) == "qpsk-1/2"  # qpsk-1/2 needs 3.6 dB + 3 dB margin, qpsk-3/4 6.1 + 3
    assert fixed.mcs_policy.choose(None) == fixed.mcs_policy.choose(30.0) == "16qam-1/2"
    assert adaptive.max_burst_samples == AirConfig(mcs="bpsk-1/2").max_burst_samples > fixed.max_burst_samples


def test_missing_keys_are_refused_unless_plaintext() -> None:
    cfg = parse_config(b'[ue]\nue_id = "ue-1"\nnode_id = 1\n', UeConfig)
    with pytest.raises(ConfigError, match="secret_key_file"):
        cfg.control.security.client()


@pytest.mark.parametrize("name", ["bs.toml", "ue-1.toml", "ue-2.toml"])
def test_example_configs_load(name: str) -> None:
    kind = BsConfig if name == "bs.toml" else UeConfig
    cfg = load_config(REPO / "firmware_cfg" / "nodes" / name, kind)
    bs = load_config(REPO / "firmware_cfg" / "nodes" / "bs.toml", BsConfig)
    assert cfg.air == bs.air and cfg.training == bs.training and bs.training is not None


@pytest.mark.parametrize(
    ("participants", "uploads", "fraction", "want"),
    [(3, 3, 0.5, "complete"), (3, 2, 0.5, "partial"), (4, 2, 0.5, "partial"), (3, 1, 0.5, "skipped"),
     (3, 0, 0.1, "skipped"), (2, 1, 1.0, "skipped"), (0, 0, 0.5, "skipped")],
)  # fmt: skip
def test_round_counts_only_with_enough_uploads(participants: int, uploads: int, fraction: float, want: str) -> None:
    outcome, status = round_outcome(participants, uploads, fraction)
    assert outcome == want
    assert status == {"complete": "complete", "partial": "deadline", "skipped": "aborted"}[want]


def test_sd_notify_ready_watchdog_stopping(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "4000000"})
        assert notifier.watchdog_interval_s == 2.0  # half the watchdog timeout
        notifier.ready("serving")
        assert sock.recv(256) == b"READY=1\nSTATUS=serving"
        notifier.watchdog(now_s=100.0)
        notifier.watchdog(now_s=101.0)  # within the interval: nothing sent
        notifier.watchdog(now_s=102.0)
        notifier.stopping()
        assert [sock.recv(256) for _ in range(3)] == [b"WATCHDOG=1", b"WATCHDOG=1", b"STOPPING=1"]


def test_sd_notify_never_blocks_on_a_full_queue(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:  # bound, never read: its queue fills up
        sock.bind(str(tmp_path / "notify"))
        notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})
        sent = [notifier.notify("WATCHDOG=1") for _ in range(2000)]
    assert sent[0] and not all(sent)  # the rest were dropped instead of stalling the caller


def test_sd_notify_is_silent_outside_systemd_and_for_another_pid() -> None:
    assert not Notifier({}).notify("READY=1")
    assert (
        Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_interval_s
        is None
    )
    assert Notifier({"NOTIFY_SOCKET": "@abstract-name"}).enabled


def test_frame_stream_decodes_a_burst_cut_by_blocks_exactly_once(rng: np.random.Generator) -> None:
    air = AirConfig(frame_payload_bytes=300)
    modem = OfdmModem(air.phy)
    payloads = [rng.bytes(300) for _ in range(3)]
    bursts = [modem.modulate(p, air.mcs, stream_id=9, seq=i) for i, p in enumerate(payloads)]
    gap = np.zeros(700, np.complex64)
    iq = np.concatenate([gap, bursts[0], gap, bursts[1], gap, bursts[2], gap])
    iq = (iq + 0.01 * (rng.standard_normal(iq.size) + 1j * rng.standard_normal(iq.size))).astype(np.complex64)
    stream = FrameStream(OfdmModem(air.phy), air.max_burst_samples + 320, 64)
    heard, block = [], 2500  # shorter than one burst: every burst is cut at least once
    for start in range(1000, 1000 + iq.size, block):
        heard += stream.feed(RxBlock(iq[start - 1000 : start - 1000 + block], start))
    assert [h.frame.payload for h in heard] == payloads
    assert all(h.frame.stream_id == 9 and h.frame.snr_db > 20 for h in heard)
    starts = [h.start_sample - 1000 for h in heard]
    assert starts == [700, 700 + bursts[0].size + 700, 700 + bursts[0].size + 700 + bursts[1].size + 700]


def test_ue_shard_must_exist_in_the_partition() -> None:
    text = b'[ue]\nue_id = "ue-3"\nnode_id = 3\nshard = 2\n[training]\nnum_shards = 2\n'
    with pytest.raises(ConfigError, match="shard=2 must be below"):
        parse_config(text, UeConfig, source="ue.toml")
