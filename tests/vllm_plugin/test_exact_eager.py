"""vLLM (eager) + the plugin vs steerfast's hook oracle on the HF model, one batch mixing
every kind, site, policy, combination and a conditional plan; prefix caching on."""

import pytest
from cases import LONG, PROMPTS, gate_opens, mixed_jobs, run_and_compare, start_engine


@pytest.fixture(scope="module")
def llm(hf_dir, plan_files, monitor_paths):
    engine = start_engine(
        hf_dir,
        plan_files,
        steerfast={"monitors": monitor_paths},
        enforce_eager=True,
        enable_prefix_caching=True,
        block_size=32,  # (the CPU default, 128, is longer than the test prompts)
    )
    yield engine
    engine.llm_engine.engine_core.shutdown()


def test_mixed_batch_equals_the_hook_oracle(llm, hf, plan_files):
    jobs = mixed_jobs()
    assert len(jobs) >= 8
    _, results, noise, failures = run_and_compare(llm, hf, plan_files, jobs)
    assert not failures, "\n".join(failures)
    assert noise < 1e-3, noise
    # the steering is real: most steered requests differ from their prompt's unsteered text,
    # and a gate changes exactly the prompts it opens for
    plain = {p: got for (p, e), (_, got, *_) in zip(jobs, results) if e is None}
    steered = [(p, e, got) for (p, e), (_, got, *_) in zip(jobs, results) if e is not None]
    changed = [got != plain[p] for p, _, got in steered]
    assert sum(changed) >= len(steered) // 2, (sum(changed), len(steered))
    for name in ("gate_mean", "gate_last"):
        opens = dict(zip(PROMPTS, gate_opens(hf, plan_files, name)))
        for p, e, got in steered:
            if e == [{"plan": name}]:
                assert (got != plain[p]) == opens[p], (name, p, opens[p])


def test_gates_open_for_some_prompts_and_not_others(hf, plan_files):
    for name in ("gate_mean", "gate_last"):
        opens = gate_opens(hf, plan_files, name)
        assert any(opens) and not all(opens), (name, opens)


def test_unknown_plan_is_refused_naming_it(llm):
    from vllm import SamplingParams

    sp = SamplingParams(max_tokens=4, extra_args={"steering": [{"plan": "no-such-plan"}]})
    with pytest.raises(Exception, match="no-such-plan"):
        llm.generate(["Hello"], sp, use_tqdm=False)


def test_bad_steering_field_is_refused(llm):
    from vllm import SamplingParams

    for bad, msg in (
        ("{not json", "JSON"),
        ([{"plan": "caa", "strength": "x"}], "strength"),
        ([{"plan": "caa", "positions": "middle"}], "positions"),
    ):
        with pytest.raises(Exception, match=msg):
            llm.generate(
                ["Hello"], SamplingParams(max_tokens=4, extra_args={"steering": bad}), use_tqdm=False
            )


def test_prefix_cache_shares_only_within_a_configuration(llm, hf, plan_files):
    """A long shared prefix under different configurations: each equals its solo oracle; an
    unsteered request after a steered one on the same prompt equals unsteered (without the
    salt it would read the steered KV: 'embed' steers every prompt position)."""
    steer = [{"plan": "embed", "strength": 6.0}]
    first = [(LONG, steer), (LONG, [{"plan": "caa", "strength": 4.0}])]
    _, _, _, failures = run_and_compare(llm, hf, plan_files, first)
    assert not failures, "\n".join(failures)
    then = [(LONG, None), (LONG + " who", steer), (LONG, steer)]
    outs, results, _, failures = run_and_compare(llm, hf, plan_files, then)
    assert not failures, "\n".join(failures)
    assert results[0][1] != results[2][1]  # steered and unsteered texts differ on this prompt
    hits = [o.num_cached_tokens for o in outs]
    assert hits[2] > 0, hits  # the same configuration on the same prompt did share KV


def test_many_requests_same_configuration(llm, hf, plan_files):
    jobs = [(p, [{"plan": "caa", "strength": 4.0}]) for p in PROMPTS] * 2
    _, _, _, failures = run_and_compare(llm, hf, plan_files, jobs, n=12)
    assert not failures, "\n".join(failures)


def test_monitor_readings_equal_the_hook_oracle(llm, hf, plan_files, monitor_paths):
    """Per request, per generated token, in the same forward as its steering: steered and
    not, different monitors per row, layer 0 after an embed.out edit, one row asking none."""
    from monitors_case import check_monitor_readings

    check_monitor_readings(llm, hf, plan_files, monitor_paths)


@pytest.mark.parametrize(
    "asked, msg",
    [
        (["no-such-monitor"], "unknown monitor.*no-such-monitor"),
        (["probe0", "probe0"], "twice"),
        ("[oops", "JSON"),
    ],
)
def test_bad_monitors_are_refused(llm, asked, msg):
    from vllm import SamplingParams
    from vllm.exceptions import VLLMValidationError

    with pytest.raises(VLLMValidationError, match=msg):
        llm.generate("Hi", SamplingParams(max_tokens=2, extra_args={"monitors": asked}))
    with pytest.raises(VLLMValidationError, match="n = 1"):
        llm.generate("Hi", SamplingParams(max_tokens=2, n=2, extra_args={"monitors": ["probe0"]}))
