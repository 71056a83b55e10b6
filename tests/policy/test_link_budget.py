import math

import msgspec
import pytest

from testbed.errors import LinkError, PolicyError
from testbed.link.airtime import McsPolicy
from testbed.link.messages import ChannelReport
from testbed.policy.link_budget import validate_channel


def test_snr_moves_db_for_db_with_tx_power():
    ch = ChannelReport.assumed(10.0, 0.0)
    assert ch.snr_db_at(7.0) == 17.0
    assert ch.power_for_snr_dbm(12.6) == pytest.approx(2.6)


@pytest.mark.parametrize("snr,power,gain", [(math.nan, 0.0, None), (10.0, math.inf, None), (99.0, 0.0, None),
                                            (10.0, 0.0, math.nan)])  # fmt: skip
def test_implausible_channel_reports_are_refused(snr, power, gain):
    with pytest.raises(PolicyError):
        validate_channel("u", ChannelReport.assumed(snr, power, mean_gain_db=gain))


def test_the_policy_reads_the_link_layers_measured_report_plus_its_tx_power():
    measured = ChannelReport(3, 0, 20, 13.6, -71.0, 850.0, 0.95, [1.0], [0.0])  # what the BS's receiver heard
    with pytest.raises(PolicyError, match="tx_power_dbm=None"):
        validate_channel("ue-3", measured)  # the power it was sent at is needed to move it with power
    with pytest.raises(LinkError, match="no tx_power_dbm"):
        measured.snr_db_at(0.0)
    at_power = msgspec.structs.replace(measured, tx_power_dbm=0.0)  # the BS knows the power it ordered
    validate_channel("ue-3", at_power)
    policy = McsPolicy()
    assert policy.choose(at_power.snr_db_at(0.0)) == policy.choose(13.6)
    assert at_power.snr_db_at(3.0) == pytest.approx(16.6)
