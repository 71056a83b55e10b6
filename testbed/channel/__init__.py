"""Channel models standing in for the air: composable, seeded, usable block by block (docs/channel.md)."""

from testbed.channel.awgn import Awgn
from testbed.channel.base import Chain, ChannelModel
from testbed.channel.impairments import DcOffset, IqImbalance, PhaseNoise
from testbed.channel.multipath import Multipath
from testbed.channel.offsets import FrequencyOffset, SamplingClockOffset, TimingOffset
from testbed.channel.pathloss import PathLoss, path_loss_db

__all__ = [
    "Awgn",
    "Chain",
    "ChannelModel",
    "DcOffset",
    "FrequencyOffset",
    "IqImbalance",
    "Multipath",
    "PathLoss",
    "PhaseNoise",
    "SamplingClockOffset",
    "TimingOffset",
    "path_loss_db",
]
