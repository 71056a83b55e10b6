"""Symbol UEs' analog frames through the engine's two media, lossy: the BS decoder trains on exactly the rows
whose frames arrived, with their labels, and their error matches the receiver's noise estimate within 1 dB;
lost frames are counted in the round record and the rounds go on."""

import numpy as np
import pytest
import torch

from testbed.experiment.engine import Engine
from testbed.experiment.scenario import load_scenario
from testbed.learning import wire
from testbed.learning.modes import LocalUe
from testbed.link.framelink import ModelFrameLink
from tests.experiment.conftest import TINY_OVERRIDES

FRAME_SYMBOLS = 96  # 12 rows of 8 symbols per analog frame: 3 frames (12, 12, 8 rows) per upload of 2 x 16 images
FRAMES = 3
SYMBOL_UES = ("ue0", "ue1", "ue2", "ue3")  # the hybrid scheme's weak UEs


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("medium", ["model", "phy"])
def test_lossy_analog_frames_carry_exact_labels_and_rows(medium, monkeypatch) -> None:
    scenario = load_scenario(overrides={**TINY_OVERRIDES, "link": {"analog_frame_symbols": FRAME_SYMBOLS}})
    sent: dict[str, list] = {ue: [] for ue in SYMBOL_UES}
    decoded: dict[str, list] = {ue: [] for ue in SYMBOL_UES}
    symbols, decode = LocalUe.symbols, wire.decode_symbols

    def spy_symbols(self, model, work, idx=None):
        out = symbols(self, model, work, idx)
        sent[self.name].append(out)
        return out

    def spy_decode(data, frames, source, *args):
        try:
            up = decode(data, frames, source, *args)
        except Exception:
            decoded[source].append((sorted(frames), None))
            raise
        decoded[source].append((sorted(frames), up))
        return up

    monkeypatch.setattr(LocalUe, "symbols", spy_symbols)
    monkeypatch.setattr(wire, "decode_symbols", spy_decode)
    engine = Engine(scenario, "hybrid", medium=medium)
    engine.start()
    link = engine.network.link
    if isinstance(link, ModelFrameLink):  # the symbol UEs' uplinks: a broadcast repaired for ten lossy UEs in
        link.loss = {(i + 1, 0): 0.2 for i in range(len(SYMBOL_UES))}  # 8 passes may run out by chance
    else:
        link.medium.frame_loss = 0.2  # type: ignore[attr-defined]
    for _ in range(3):
        metrics = engine.step()
        assert metrics["outcome"] == "complete" and not metrics["late"]
    lost = 0
    for record in engine.records:
        assert set(record["analog"]) == set(SYMBOL_UES)
        for ue, a in record["analog"].items():
            assert a["frames_sent"] == FRAMES and a["frames_received"] <= FRAMES
            lost += FRAMES - a["frames_received"]
            if a["frames_received"]:
                assert a["snr_db"] == pytest.approx(record["uplink_snr_db"][ue], abs=1.5)
    assert lost > 0  # some frames were lost, none resent, and the rounds went on
    rows = FRAME_SYMBOLS // 8
    errors, estimates = [], []
    for ue in SYMBOL_UES:
        assert len(sent[ue]) == len(decoded[ue]) == 3
        for record, s, (frames, up) in zip(engine.records, sent[ue], decoded[ue], strict=True):
            if up is None:  # every frame of this upload lost: refused with that reason, not fatal
                assert frames == [] and "analog frames arrived" in record["training"]["refused"][ue]
                continue
            keep = [i for f in frames for i in range(f * rows, min((f + 1) * rows, len(s.labels)))]
            assert torch.equal(up.labels, s.labels[keep])  # exact labels, in frame order
            err = (up.received - s.symbols[keep]).abs().pow(2).mean() / s.symbols[keep].abs().pow(2).mean()
            # one upload of a few hundred values: within 2 dB; pooled over the run: within 1 dB (below)
            assert 10 * np.log10(float(err)) == pytest.approx(10 * np.log10(up.noise_var), abs=2.0)
            errors.append(float(err) * len(keep))
            estimates.append(up.noise_var * len(keep))
    assert 10 * np.log10(sum(errors) / sum(estimates)) == pytest.approx(0.0, abs=1.0)
