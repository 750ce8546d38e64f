"""`steerfast bench --check`: every fixed threshold is the limit plus the group's measured noise
(issue: a quiet re-run passed a cell that `--check` had failed at 1.0303 > 1.03 while the
group's own A/A noise was several percent). Synthetic timings: a cell inside the noise passes,
one clearly above fails, and with no noise measured the bare limit applies."""

import pytest

from steerfast.bench.check import allowed, check, load_thresholds


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
