"""`steerfast bench --check`: every fixed threshold is the limit plus the group's measured noise
(issue: a quiet re-run passed a cell that `--check` had failed at 1.0303 > 1.03 while the
group's own A/A noise was several percent). Synthetic timings: a cell inside the noise passes,
one clearly above fails, and with no noise measured the bare limit applies."""

import pytest

from steerfast.bench.check import allowed, check, load_thresholds
from steerfast.bench.recheck import decide


def _group(ratio, noise, batch=1, kind="fused", sites="all-sadi", engine="eager"):
    return {
        "id": f"default/decode/b{batch}/16tok/{engine}",
        "phase": "decode",
        "batch": batch,
        "engine": engine,
        "noise": noise,
        "variants": {f"{kind}[{sites}]": {"kind": kind, "sites": sites, "status": "ok", "ratio": ratio}},
    }


RULES = load_thresholds()


def test_allowed_is_limit_plus_factor_times_noise():
    assert allowed(1.03, 1.0, 0.04) == pytest.approx(1.07)
    assert allowed(1.01, 2.0, 0.005) == pytest.approx(1.02)
    assert allowed(1.03, 1.0, 0.0) == 1.03


def test_the_issue_s_cell_inside_its_noise_passes():
    # default/decode/b1/16tok/eager fused[all-sadi] = 1.0303 in a run whose A/A noise was ~4%
    rule = {"decode_b1_all_layers": RULES["decode_b1_all_layers"]}
    assert check({"groups": [_group(1.0303, 0.04)]}, rule) == []


def test_a_cell_clearly_above_limit_plus_noise_fails():
    rule = {"decode_b1_all_layers": RULES["decode_b1_all_layers"]}
    bad = check({"groups": [_group(1.12, 0.04)]}, rule)
    assert len(bad) == 1 and "1.1200 > 1.03 + noise 0.040" in bad[0]


@pytest.mark.parametrize("noise", [None, float("nan")])
def test_without_measured_noise_the_bare_limit_applies(noise):
    rule = {"decode_b1_all_layers": RULES["decode_b1_all_layers"]}
    assert check({"groups": [_group(1.0299, noise)]}, rule) == []
    assert check({"groups": [_group(1.0301, noise)]}, rule)


def test_every_fixed_threshold_in_the_shipped_file_is_noise_aware():
    # a limit of 1.0 with a noise of 0.05: a ratio of 1.04 passes every ratio rule, 1.2 fails each
    for name, rule in RULES.items():
        if name.startswith("_") or "max_ratio" not in rule:
            continue
        assert float(rule.get("noise_factor", 0)) >= 1.0, f"{name} ignores the group's noise"
        strict = {name: {**rule, "max_ratio": 1.0}}
        kind = "bank" if name == "bank_decode" else "fused"
        site = rule["sites"][0]
        assert check({"groups": [_group(1.04, 0.05, kind=kind, sites=site)]}, strict) == [], name
        assert check({"groups": [_group(1.2, 0.05, kind=kind, sites=site)]}, strict), name


# --- the decision over runs (steerfast/bench/recheck.py) -----------------------------------------
RULE_B1 = {"decode_b1_all_layers": {"max_ratio": 1.03, "noise_factor": 1.0, "sites": ["all-sadi"]}}
GID = "default/decode/b1/16tok/eager"


def _reruns(ratios):
    it = iter(ratios)
    calls = []

    def rerun(gid):
        calls.append(gid)
        return _group(next(it), 0.01)

    return rerun, calls


def test_a_one_run_excursion_is_re_measured_and_does_not_stand():
    rerun, calls = _reruns([1.01, 1.02])
    standing, history = decide({"groups": [_group(1.06, 0.01)]}, RULE_B1, rerun)
    assert standing == [] and calls == [GID, GID]
    assert history == {f"{GID} fused[all-sadi]": [True, False, False]}


def test_a_real_slowdown_fails_every_run_and_stands():
    rerun, _ = _reruns([1.09, 1.11])
    standing, history = decide({"groups": [_group(1.10, 0.01)]}, RULE_B1, rerun)
    assert len(standing) == 1 and "[failed 3 of 3 runs]" in standing[0]
    assert "steered/unsteered = 1.1100" in standing[0]  # the last run's figures


def test_two_of_three_is_a_majority():
    rerun, _ = _reruns([1.02, 1.08])
    standing, _ = decide({"groups": [_group(1.07, 0.01)]}, RULE_B1, rerun)
    assert len(standing) == 1 and "[failed 2 of 3 runs]" in standing[0]


def test_without_reruns_the_single_run_decides():
    standing, history = decide({"groups": [_group(1.06, 0.01)]}, RULE_B1, None)
    assert len(standing) == 1 and history == {f"{GID} fused[all-sadi]": [True]}
    assert decide({"groups": [_group(1.01, 0.01)]}, RULE_B1, None) == ([], {})


def test_a_missing_cell_is_not_re_measured():
    rerun, calls = _reruns([])
    standing, _ = decide({"groups": []}, RULE_B1, rerun)
    assert len(standing) == 1 and "cannot be checked" in standing[0] and calls == []
