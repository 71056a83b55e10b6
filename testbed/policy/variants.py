"""Names of the policy's schemes and what each ablates (a light module: the CLI lists them without importing
the policy's numerics; assign.py builds them)."""

POLICY_VARIANTS: dict[str, str] = {
    "policy": "UE decisions + cost-aware joint grouping + resource allocation (the full method)",
    "policy_no_alloc": "same groups, every UE at its nominal clock and TX power",
    "policy_by_capability": "grouping by capability only, with allocation",
    "policy_by_channel": "grouping by channel only, with allocation",
    "policy_snr_threshold": "joint grouping with a fixed good-channel SNR instead of the cost model, with allocation",
}
