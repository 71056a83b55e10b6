import math

import pytest

from testbed.errors import PolicyError
from testbed.policy.link_budget import ChannelReport


def test_snr_moves_db_for_db_with_tx_power():
    ch = ChannelReport("u", 10.0, 0.0)
    assert ch.snr_db_at(7.0) == 17.0
    assert ch.power_for_snr_dbm(12.6) == pytest.approx(2.6)


@pytest.mark.parametrize("snr,power,gain", [(math.nan, 0.0, None), (10.0, math.inf, None), (99.0, 0.0, None),
                                            (10.0, 0.0, 3.0)])  # fmt: skip
def test_implausible_channel_reports_are_refused(snr, power, gain):
    with pytest.raises(PolicyError):
        ChannelReport("u", snr, power, gain).validate()
