"""The two media the in-process engine can run on, built from a scenario, and the [air] the cores use there.

``model``: ``ModelFrameLink`` with the PER table this project's receiver measured (testbed/link/per_table.json)
at each UE's SNR, or at the EESM effective SNR of its drawn per-subcarrier channel; exact burst lengths.
``phy``: ``PhyFrameLink``: every frame modulated by the real modem, through the channel models of
testbed/channel (the same multipath draw the scenario gives the model medium, then AWGN at the UE's SNR) and
demodulated by the real receiver; what arrives is what the CRC says.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from testbed.channel import Awgn, Chain, Multipath
from testbed.experiment.scenario import CHANNEL_SEED_STREAM, Scenario
from testbed.learning.assignment import UeProfile
from testbed.link.abstraction import subcarrier_snr
from testbed.link.airtime import default_errors
from testbed.link.framelink import FrameLink, ModelFrameLink
from testbed.link.medium import ChannelModel, SimulatedMedium
from testbed.link.phylink import PhyFrameLink
from testbed.node.config import BS_NODE_ID, AirConfig
from testbed.phy import OfdmModem

MEDIA = ("model", "phy")


def engine_air(scenario: Scenario) -> AirConfig:
    """The [air] of the scenario's shared medium, as the daemons would have it: its [link] figures, MCS
    adaptive on measured SNR."""
    k = scenario.link
    return AirConfig(sample_rate_hz=k.sample_rate_hz, frame_payload_bytes=k.frame_payload_bytes, mcs="adaptive",
                     guard_samples=k.guard_samples, tdma_cycle_samples=k.tdma_cycle_samples,
                     analog_frame_symbols=k.analog_frame_symbols)  # fmt: skip


def build_link(medium: str, scenario: Scenario, profiles: Sequence[UeProfile], rng: np.random.Generator) -> FrameLink:
    """The medium's FrameLink between the BS (node 0) and UE i (node i + 1), both directions reciprocal."""
    phy = scenario.phy_config()
    nodes = [(i + 1, p) for i, p in enumerate(profiles)]
    if medium == "model":
        snr = {pair: p.snr_db for node, p in nodes for pair in ((node, BS_NODE_ID), (BS_NODE_ID, node))}
        sub = {
            pair: 10 ** (p.snr_db / 10) * np.asarray(p.channel_gain)
            for node, p in nodes
            if p.channel_gain is not None
            for pair in ((node, BS_NODE_ID), (BS_NODE_ID, node))
        }
        return ModelFrameLink(phy, rng, snr_db=snr, per_table=default_errors(phy), subcarrier_snr=sub,  # type: ignore[arg-type]
                              analog_seed=scenario.seed)  # fmt: skip
    links: dict[tuple[int, int], ChannelModel] = {}
    for (node, p), ue in zip(nodes, scenario.ues, strict=True):
        models: list[ChannelModel] = []
        if ue.channel != "flat":  # the scenario's own draw, scaled as the model medium's (mean |H_k|^2 = 1 on the
            # data subcarriers: snr_db stays the mean SNR, the channel adds only its frequency selectivity)
            draw = np.random.default_rng([scenario.seed, CHANNEL_SEED_STREAM, node - 1])
            fading = Multipath(float(ue.rms_delay_spread_samples), draw, ue.k_factor_db, block_fading=False)
            scale = np.float32(1.0 / np.sqrt(np.mean(subcarrier_snr(phy, fading.taps, 0.0))))
            models += [fading, lambda iq, s=scale: iq * s]
        for pair in ((node, BS_NODE_ID), (BS_NODE_ID, node)):
            noise = Awgn(p.snr_db, rng, occupied_fraction=phy.occupied_fraction)
            links[pair] = Chain([*models, noise])
    return PhyFrameLink(OfdmModem(phy), SimulatedMedium(phy.sample_rate_hz, links, rng))
