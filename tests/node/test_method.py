"""The method as claimed, as processes: hub + BS + 4 UEs of two boards at two distances. The BS sounds the
links, sends FIRST_INFO (the joint_snr rule, its threshold from the UEs' capability reports); each UE chooses
its own mode from its measured capability and the effective SNR of its link, and every training mode appears:
the fast boards train locally, the slow board near the BS uploads raw samples, the slow board far away sends
symbols. Every process is killed in ``finally``."""

from __future__ import annotations

from pathlib import Path

from tests.node.node_helpers import NodeRig
from tests.node.test_training import ONE_THREAD, TRAINING

BOARDS = {1: "pi_5", 2: "pi_5", 3: "pi_zero_2", 4: "pi_zero_2"}  # 2.5 and 0.25 of a Pi 4: far from the threshold
DISTANCES_M = [20.0, 20.0, 20.0, 110.0]  # about 25 dB, and about 10 dB for ue-4 (below the 15 dB good channel)
EXPECTED = {"ue-1": "distributed", "ue-2": "distributed", "ue-3": "centralized_full", "ue-4": "centralized_decoder"}
SECTIONS = TRAINING.replace("num_shards = 2", "num_shards = 4")


def test_each_ue_chooses_its_mode_from_the_first_information_and_every_mode_appears(tmp_path: Path) -> None:
    rig = NodeRig(tmp_path, num_ues=4, distances_m=DISTANCES_M)
    try:
        rig.start_hub()
        bs = rig.start_bs(env=ONE_THREAD, sections=SECTIONS + '[assign]\npolicy = "joint_snr"\n', num_rounds=3,
                          min_ues=4, deadline_s=90.0, round_gap_s=0.1)  # fmt: skip
        ues = {i: rig.start_ue(i, sections=SECTIONS, env=ONE_THREAD, shard=i - 1, board=BOARDS[i]) for i in BOARDS}
        assert bs.wait_exit(400) == 0, bs.tail()
        rounds = rig.rounds()
        assert [r["round"] for r in rounds] == [1, 2, 3]
        for r in rounds:
            assert r["outcome"] == "complete", r
            assert r["modes"] == EXPECTED, r["choices"]
            assert r["choices_refused"] == {}
            assert {ue: c["mode"] for ue, c in r["choices"].items()} == EXPECTED
        # round 1 is chosen on the sounded downlink, later rounds on the uplink the BS measured
        assert {c["channel_source"] for c in rounds[0]["choices"].values()} == {"downlink"}
        assert {c["channel_source"] for r in rounds[1:] for c in r["choices"].values()} == {"uplink"}
        assert sum(e.get("event") == "sounding" for e in bs.events()) == 1
        for i, ue in ues.items():
            chosen = [e for e in ue.events() if e.get("event") == "mode_chosen"]
            assert len(chosen) == 3 and all(e["rule"] == "joint_snr" for e in chosen), chosen
            for e in chosen:  # the mode follows the sent threshold
                assert (e["capability"] >= e["threshold"]) == (e["mode"] == "distributed"), e
            assigned = ue.wait_event(lambda e: e.get("event") == "assigned", 10, "assigned")
            assert assigned["mode"] == EXPECTED[f"ue-{i}"]
            assert ue.stop() == 0
    finally:
        rig.close()
