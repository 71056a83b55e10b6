import pytest

from testbed.errors import LinkError
from testbed.link.mcs import McsPolicy


def test_adaptive_choice_respects_thresholds_and_margin():
    p = McsPolicy(margin_db=3.0)
    assert p.choose(None) == "bpsk-1/2"
    assert p.choose(-5.0) == "bpsk-1/2"
    assert p.choose(6.7) == "qpsk-1/2"  # 3.6 + 3 <= 6.7 < 6.1 + 3
    assert p.choose(9.1) == "qpsk-3/4"
    assert p.choose(21.2) == "64qam-3/4"
    assert p.choose(21.1) == "64qam-2/3"
    assert [McsPolicy(margin_db=0).choose(s) for s in (12.6, 12.5)] == ["16qam-3/4", "16qam-1/2"]


def test_fixed_and_measured_curves():
    assert McsPolicy(fixed_mcs="qpsk-3/4").choose(40.0) == "qpsk-3/4"
    measured = McsPolicy(margin_db=1.0, thresholds_db={"bpsk-1/2": 2.0, "16qam-1/2": 11.0})
    assert measured.choose(12.0) == "16qam-1/2"
    assert measured.choose(11.5) == "bpsk-1/2"
    with pytest.raises(LinkError, match="unknown MCS"):
        McsPolicy(fixed_mcs="256qam")


def test_thresholds_from_a_phy_ber_sweep():
    from testbed.link.mcs import thresholds_from_per_sweep

    sweep = {"awgn": {"qpsk-1/2": {"snr_db_at_per_10pct": 4.1}, "64qam-3/4": {"snr_db_at_per_10pct": None},
                      "bpsk-uncoded": {"snr_db_at_per_10pct": 9.0}}}  # fmt: skip
    assert thresholds_from_per_sweep(sweep) == {"qpsk-1/2": 4.1}
    with pytest.raises(LinkError, match="no 'multipath' PER sweep"):
        thresholds_from_per_sweep(sweep, "multipath")
    with pytest.raises(LinkError, match="no coded MCS"):
        thresholds_from_per_sweep({"awgn": {"64qam-3/4": {"snr_db_at_per_10pct": None}}})
