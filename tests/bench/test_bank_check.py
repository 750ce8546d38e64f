"""`steerfast bench --check`'s bank_decode rule: bank / unsteered in eager decode groups at
most max_ratio plus the group's measured noise; failed bank cells are violations."""

from steerfast.bench.check import check, load_thresholds

RULE = {"bank_decode": {"max_ratio": 1.01, "noise_factor": 1.0, "sites": ["all-sadi"]}}


def _results(ratio, noise, status="ok", engine="eager", phase="decode"):
    row = {"kind": "bank", "sites": "all-sadi", "status": status, "reason": "boom" if status != "ok" else ""}
    if status == "ok":
        row["ratio"] = ratio
    return {
        "groups": [
            {
                "id": "g",
                "phase": phase,
                "engine": engine,
                "batch": 8,
                "noise": noise,
                "variants": {"bank[all-sadi]": row},
            }
        ]
    }


def test_bank_within_limit_plus_noise_passes():
    assert check(_results(1.009, 0.0), RULE) == []
    assert check(_results(1.018, 0.01), RULE) == []


def test_bank_over_limit_plus_noise_fails():
    bad = check(_results(1.025, 0.01), RULE)
    assert len(bad) == 1 and "bank/unsteered = 1.0250" in bad[0]
    assert check(_results(1.011, float("nan")), RULE)  # no noise measured: the bare limit


def test_failed_bank_cell_is_a_violation_and_other_groups_are_not_checked():
    assert "failed (boom)" in check(_results(None, 0.0, status="failed"), RULE)[0]
    assert check(_results(1.5, 0.0, engine="compile"), RULE) == []
    assert check(_results(1.5, 0.0, phase="prefill"), RULE) == []


def test_committed_bank_threshold_is_the_issue_s():
    assert load_thresholds()["bank_decode"]["max_ratio"] == 1.01
