"""The PHY targets of issue 2 ("Must reach") checked against measured figures."""

from __future__ import annotations

from testbed.phy import MCS_TABLE

# issue 2 limits
AWGN_GAP_DB = 1.5  # coded PER 10% within 1.5 dB of the ideal reference, every MCS
MULTIPATH_EXTRA_DB = 1.0  # multipath + CFO at most 1 dB worse than AWGN
# the restatement proposed in docs/results.md (Rayleigh fading itself costs the genie 4-7 dB): the real
# receiver within 1 dB of the perfect-CSI genie on the same channel draws
RECEIVER_LOSS_DB = 1.0
UNCODED_GAP_DB = 0.5  # uncoded BER within 0.5 dB of theory
DETECTION_RATE = 0.99  # at 4 dB
FALSE_DETECTIONS_PER_1E7 = 1.0  # fewer than one
CFO_RESIDUAL_PCT = 1.0  # of a subcarrier spacing, at 10 dB
SCO_DECODED = 0.99  # our limit for "4000-byte frames must decode with 40 ppm"
QPSK_SUCCESS = 0.99  # QPSK 1/2 delivers >= 99% of 1000-byte frames at 5 dB
TX_MSPS = 50.0
RX_MSPS_16QAM_1_2 = 8.0


def check(value: float | None, limit: float, rule: str) -> dict:
    """One target entry: value, limit, rule ("<=", "<", ">=") and whether it is met (None never is)."""
    ops = {"<=": lambda v: v <= limit, "<": lambda v: v < limit, ">=": lambda v: v >= limit}
    return {"value": value, "limit": limit, "rule": rule, "met": value is not None and bool(ops[rule](value))}


def targets(result: dict) -> dict[str, dict]:
    """Target entries for every figure of a ``testbed phy ber`` result that has one."""
    out: dict[str, dict] = {}
    awgn, multipath = result.get("awgn", {}), result.get("multipath", {})
    for mcs, row in awgn.items():
        if MCS_TABLE[mcs].coded:
            out[f"awgn_gap_db[{mcs}]"] = check(row["gap_db"], AWGN_GAP_DB, "<=")
    for mcs, row in multipath.items():
        if MCS_TABLE[mcs].coded and mcs in awgn:
            a, m = awgn[mcs]["snr_db_at_per_10pct"], row["snr_db_at_per_10pct"]
            out[f"multipath_minus_awgn_db[{mcs}]"] = check(
                None if a is None or m is None else m - a, MULTIPATH_EXTRA_DB, "<="
            )
        if MCS_TABLE[mcs].coded:
            out[f"multipath_receiver_loss_db[{mcs}]"] = check(row["receiver_loss_db"], RECEIVER_LOSS_DB, "<=")
    for mcs, row in result.get("uncoded", {}).items():
        gap = row["gap_db"]
        out[f"uncoded_abs_gap_db[{mcs}]"] = check(None if gap is None else abs(gap), UNCODED_GAP_DB, "<=")
    sync = result.get("sync")
    if sync:
        out["detection_rate_at_4db"] = check(sync["detection_rate_at_4db"], DETECTION_RATE, ">=")
        out["false_detections_per_1e7_samples"] = check(
            sync["false_detections_per_1e7_samples"], FALSE_DETECTIONS_PER_1E7, "<"
        )
        out["cfo_residual_rms_pct_spacing"] = check(sync["cfo_residual_rms_pct_spacing"], CFO_RESIDUAL_PCT, "<=")
        out["sco_40ppm_4000b_decoded"] = check(sync["sco_40ppm_4000b_decoded"], SCO_DECODED, ">=")
        out["qpsk_1_2_success_at_5db"] = check(sync["qpsk_1_2_success_at_5db"], QPSK_SUCCESS, ">=")
    return out
