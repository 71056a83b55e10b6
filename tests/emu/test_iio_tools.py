"""Debian's libiio tools (libiio-utils) against a virtual Pluto: the C library's own client, unmodified."""

from __future__ import annotations

import shutil
import subprocess
import time

import numpy as np
import pytest

TOOLS = ("iio_info", "iio_attr", "iio_readdev", "iio_writedev")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in TOOLS), reason="libiio-utils not installed (apt-get install libiio-utils)"
)


def run(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, input=data, capture_output=True, timeout=60, check=False)


def test_iio_info_lists_the_pluto(plutos):
    out = run("iio_info", "-u", plutos.uris["bs"])
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    for expected in ("hw_model: Analog Devices PlutoSDR", "ad9361-phy", "cf-ad9361-lpc", "cf-ad9361-dds-core-lpc",
                     "xo_correction", "le:S12/16>>0", "hw_serial: emu-bs"):  # fmt: skip
        assert expected in text, expected


def test_iio_attr_reads_writes_and_refuses_out_of_range(plutos):
    uri = plutos.uris["bs"]
    ok = run("iio_attr", "-u", uri, "-c", "ad9361-phy", "altvoltage0", "frequency", "915000000")
    assert ok.returncode == 0, ok.stderr
    got = run("iio_attr", "-u", uri, "-c", "ad9361-phy", "altvoltage0", "frequency")
    assert got.stdout.decode().strip() == "915000000"
    bad = run("iio_attr", "-u", uri, "-c", "ad9361-phy", "altvoltage0", "frequency", "100000000")
    assert b"Invalid argument" in bad.stderr + bad.stdout  # EINVAL, as the ad9361 driver answers
    assert run("iio_attr", "-u", uri, "-c", "ad9361-phy", "altvoltage0", "frequency").stdout.strip() == b"915000000"
    gain = run("iio_attr", "-u", uri, "-c", "-o", "ad9361-phy", "voltage0", "hardwaregain", "-10.3")
    assert gain.returncode == 0, gain.stderr
    assert run("iio_attr", "-u", uri, "-c", "-o", "ad9361-phy", "voltage0", "hardwaregain").stdout.strip() == (
        b"-10.250000 dB"  # the 0.25 dB attenuation step
    )
    ctx = run("iio_attr", "-u", uri, "-C", "fw_version")
    assert ctx.stdout.decode().strip().endswith("v0.38")


def test_iio_readdev_streams_noise_at_the_gain(plutos):
    uri = plutos.uris["bs"]
    for attr, value in (("gain_control_mode", "manual"), ("hardwaregain", "40")):
        assert run("iio_attr", "-u", uri, "-c", "-i", "ad9361-phy", "voltage0", attr, value).returncode == 0
    run("iio_attr", "-u", uri, "-c", "-i", "ad9361-phy", "voltage0", "sampling_frequency", "3000000")
    run("iio_attr", "-u", uri, "-c", "-o", "ad9361-phy", "altvoltage0", "frequency", "2400000000")
    out = run("iio_readdev", "-u", uri, "-b", "4096", "-s", "16384", "cf-ad9361-lpc", "voltage0", "voltage1")
    assert out.returncode == 0, out.stderr
    words = np.frombuffer(out.stdout, "<i2").astype(np.float64)
    assert words.size == 2 * 16384
    assert np.all(np.abs(words) <= 2048)  # 12-bit codes
    # 3 MS/s is not the scenario's 2.5 MS/s: off the modelled channel, the receiver hears nothing
    assert not np.any(words)


def test_iio_readdev_on_channel_hears_the_noise_floor(plutos):
    uri = plutos.uris["bs"]
    run("iio_attr", "-u", uri, "-c", "-i", "ad9361-phy", "voltage0", "gain_control_mode", "manual")
    run("iio_attr", "-u", uri, "-c", "-i", "ad9361-phy", "voltage0", "hardwaregain", "40")
    run("iio_attr", "-u", uri, "-c", "-o", "ad9361-phy", "altvoltage0", "frequency", "2400000000")
    run("iio_attr", "-u", uri, "-c", "-i", "ad9361-phy", "voltage0", "sampling_frequency", "2500000")
    out = run("iio_readdev", "-u", uri, "-b", "4096", "-s", "8192", "cf-ad9361-lpc", "voltage0", "voltage1")
    assert out.returncode == 0, out.stderr
    words = np.frombuffer(out.stdout, "<i2").astype(np.float64) / 2048
    power_dbfs = 10 * np.log10(np.mean(words[0::2] ** 2 + words[1::2] ** 2))
    assert power_dbfs == pytest.approx(-90 + 40, abs=0.5)  # noise floor -90 dBm at 0 dBFS = 0 dBm, 40 dB gain


def test_iio_writedev_reaches_another_board(plutos):
    tx, rx = plutos.uris["bs"], plutos.uris["ue-1"]
    for uri in (tx, rx):
        run("iio_attr", "-u", uri, "-c", "-o", "ad9361-phy", "altvoltage0", "frequency", "2400000000")
        run("iio_attr", "-u", uri, "-c", "-o", "ad9361-phy", "altvoltage1", "frequency", "2400000000")
    run("iio_attr", "-u", tx, "-c", "-o", "ad9361-phy", "voltage0", "hardwaregain", "0")
    run("iio_attr", "-u", rx, "-c", "-i", "ad9361-phy", "voltage0", "gain_control_mode", "manual")
    run("iio_attr", "-u", rx, "-c", "-i", "ad9361-phy", "voltage0", "hardwaregain", "40")
    for uri in (tx, rx):
        run("iio_attr", "-u", uri, "-c", "-i", "ad9361-phy", "voltage0", "sampling_frequency", "2500000")
    tone = np.zeros(2 * 8192, "<i2")
    tone[0::2] = 8192  # a DC tone at a quarter of full scale, cyclic
    sender = subprocess.Popen(
        ["iio_writedev", "-u", tx, "-c", "-b", "8192", "cf-ad9361-dds-core-lpc", "voltage0", "voltage1"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        sender.stdin.write(tone.tobytes())
        sender.stdin.flush()
        deadline = time.monotonic() + 60
        while not plutos.medium.transmitting("bs") and time.monotonic() < deadline:
            time.sleep(0.05)  # the cyclic buffer is on the air before the receiver starts
        out = run("iio_readdev", "-u", rx, "-b", "8192", "-s", "65536", "cf-ad9361-lpc", "voltage0", "voltage1")
    finally:
        sender.kill()
        sender.wait(timeout=10)
    words = np.frombuffer(out.stdout, "<i2").astype(np.float64) / 2048
    iq = (words[0::2] + 1j * words[1::2])[-8192:]
    power_dbfs = 10 * np.log10(np.mean(np.abs(iq) ** 2))
    # 5 dBm at 0 dB attenuation for a unit wave at 2^14, the tone at 2^13 (-6 dB), 20 m of free space (66 dB),
    # 40 dB gain: about -27 dBFS, 23 dB above the noise
    assert power_dbfs == pytest.approx(5 - 6 - 66 + 40, abs=1.5)
