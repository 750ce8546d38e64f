"""The engine cannot hang: step faults, restarts, timeouts, disconnects, drain, limits.

Drives Engine directly on the tiny random llama; faults go through the engine's own seam
(`Engine.inject_fault`: the step raises inside the model runner, as a failing forward would).
Cleanup is checked against the real manager's internal tables.
"""

import asyncio
import threading
import time

import pytest
import transformers

from steerfast.errors import SteeringError
from steerfast.serve import seam
from steerfast.serve.engine import (
    Engine,
    EngineOverloaded,
    EngineUnavailable,
    GenerationFailed,
    SteerEntry,
)
from steerfast.serve.params import SamplingParams
from steerfast.testing import random_plan, tiny_model, tiny_tokenizer


def make(**kw):
    model, tok = tiny_model("llama", seed=3), tiny_tokenizer()
    model.generation_config.eos_token_id = None
    args = dict(slots=2, kv_tokens=4096, max_batch_tokens=256, max_new_tokens=64)
    return Engine(model, tok, **{**args, **kw})


@pytest.fixture(scope="module")
def eng():
    e = make()
    e.add_plan("p", random_plan(e.model, seed=5, policies=("all",) * 5))
    yield e
    e.close()


async def one(eng, prompt, params, entries=(), stream=False):
    out = None
    async for out in eng.generate(eng.tokenizer(prompt)["input_ids"], list(entries), params, stream):
        pass
    return out


def leftovers(eng) -> dict:
    """Everything a finished or cancelled request could leave behind, from the real tables."""
    bp = eng.manager.batch_processor
    sch = bp.scheduler
    return {
        "scheduled": len(sch.active_requests),
        "waiting": len(sch.waiting_requests) + len(sch.waiting_requests_order),
        "to_cancel": len(sch._requests_to_cancel),
        **eng.registrations(),  # every table a request is entered in (serve/request_context.py)
        "blocks_used": round(bp.cache.num_blocks * (1 - bp.cache.compute_free_capacity(relative=True))),
    }


def settle(eng, timeout=10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = leftovers(eng)
        if not any(left.values()):
            return left
        time.sleep(0.05)
    return leftovers(eng)


def test_seam_internals_match_the_installed_transformers():
    seam.check_internals()  # raises, naming the version, if transformers moved what the seam uses
    assert seam.internals.version_problem(transformers.__version__) is None, (
        f"the serving seam is checked against transformers {seam.TESTED_TRANSFORMERS}; "
        f"{transformers.__version__} is installed: re-check serve/seam.py and widen serve/internals.py's range"
    )


def test_internals_check_names_the_version(monkeypatch):
    from transformers.generation.continuous_batching import model_runner

    monkeypatch.delattr(model_runner.ModelRunner, "_forward_process_and_sample")
    with pytest.raises(
        SteeringError, match=f"transformers {transformers.__version__}.*_forward_process_and_sample"
    ):
        seam.check_internals()


def test_engine_rows_need_the_seam(eng):
    assert eng.rows.require_seam
    assert type(eng.manager.batch_processor).__name__ == "SteeringBatchProcessor"


def test_a_failing_step_fails_only_its_requests_and_serving_goes_on(eng):
    solo = asyncio.run(one(eng, "hello", SamplingParams(6))).token_ids
    failed_before = eng.hooks.failed_steps
    eng.inject_fault(1)

    async def batch():
        return await asyncio.gather(
            *(
                one(eng, p, SamplingParams(6), [SteerEntry("p")] if i % 2 else [])
                for i, p in enumerate(["ab", "cd", "ef"])
            ),
            return_exceptions=True,
        )

    results = asyncio.run(batch())
    failed = [r for r in results if isinstance(r, GenerationFailed)]
    assert failed and all("injected step fault" in str(r) for r in failed)
    assert all(isinstance(r, GenerationFailed) or len(r.token_ids) == 6 for r in results)
    assert eng.hooks.failed_steps == failed_before + 1
    assert eng.health() == (True, "ok") and eng.running
    assert asyncio.run(one(eng, "hello", SamplingParams(6))).token_ids == solo
    assert not any(settle(eng).values())


def test_a_stopped_manager_reports_unhealthy_and_restarts_on_the_next_request(eng):
    solo = asyncio.run(one(eng, "hello", SamplingParams(6), [SteerEntry("p")])).token_ids
    eng.manager.stop(block=True, timeout=10)
    ok, why = eng.health()
    assert not ok and "not running" in why and not eng.running
    restarts = eng.stats["manager_restarts"]
    assert asyncio.run(one(eng, "hello", SamplingParams(6), [SteerEntry("p")])).token_ids == solo
    assert eng.stats["manager_restarts"] == restarts + 1 and eng.health() == (True, "ok")


def test_a_stalled_engine_times_out_instead_of_hanging():
    e = make(step_timeout_s=0.6)
    try:
        release = threading.Event()

        def hold():
            with e.manager.pause():
                release.wait(5)

        t = threading.Thread(target=hold)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        with pytest.raises(GenerationFailed, match="no progress for"):
            asyncio.run(one(e, "hello", SamplingParams(4)))
        assert time.monotonic() - t0 < 3
        release.set()
        t.join()
        assert len(asyncio.run(one(e, "hello", SamplingParams(4))).token_ids) == 4
        assert not any(settle(e).values())
    finally:
        e.close()


def test_1000_disconnects_leave_nothing_behind(eng):
    """Streaming clients close after their first token; non-streaming ones are cancelled
    (the HTTP layer's task for a client that went away) while waiting."""

    async def stream_then_leave(i):
        gen = eng.generate(
            eng.tokenizer(f"client {i}")["input_ids"],
            [SteerEntry("p")] if i % 3 == 0 else [],
            SamplingParams(40),
            True,
        )
        async for _ in gen:
            break
        await gen.aclose()

    async def wait_then_leave(i):
        entries = [SteerEntry("p")] if i % 4 == 0 else []
        task = asyncio.ensure_future(one(eng, f"client {i}", SamplingParams(40), entries))
        await asyncio.sleep(0.002 * (i % 5))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def wave(lo, hi):
        await asyncio.gather(*((stream_then_leave if i % 2 else wait_then_leave)(i) for i in range(lo, hi)))

    counts = []
    for lo in range(0, 1000, 50):
        asyncio.run(wave(lo, lo + 50))
        if lo in (0, 950):
            counts.append(settle(eng))
    assert counts[0] == counts[1] and not any(counts[1].values()), counts
    # every streaming client reached the manager; some waiting ones left before they did
    assert eng.stats["requests_cancelled"] >= 500
    assert len(asyncio.run(one(eng, "after", SamplingParams(5))).token_ids) == 5


def test_drain_finishes_in_flight_then_cancels_the_rest():
    # long enough that no fast CPU finishes them within the drain
    e = make(max_new_tokens=4096, kv_tokens=16384, prefix_cache=False)  # no cached blocks kept: all must free
    try:

        async def main():
            long = [asyncio.ensure_future(one(e, f"x{i}", SamplingParams(4000))) for i in range(3)]
            short = asyncio.ensure_future(one(e, "short", SamplingParams(2)))
            await asyncio.sleep(0.3)
            cancelled = await asyncio.to_thread(e.drain, 0.5)
            with pytest.raises(EngineUnavailable):
                await one(e, "late", SamplingParams(2))
            return cancelled, await asyncio.gather(*long, short, return_exceptions=True)

        cancelled, results = asyncio.run(main())
        assert len(results[-1].token_ids) == 2  # finished within the drain
        assert cancelled == 3 and all(isinstance(r, EngineUnavailable) for r in results[:3])
        assert e.health() == (False, "the engine is draining")
        assert not any(settle(e).values())
    finally:
        e.close()


def test_queue_limit_raises_engine_overloaded():
    e = make(max_waiting=2)
    try:

        async def main():
            gens = [e.generate(e.tokenizer("a")["input_ids"], [], SamplingParams(30), True) for _ in range(2)]
            for g in gens:
                await g.__anext__()
            with pytest.raises(EngineOverloaded) as info:
                await one(e, "third", SamplingParams(2))
            for g in gens:
                await g.aclose()
            return info.value

        err = asyncio.run(main())
        assert "limit is 2" in str(err) and err.retry_after_s > 0
        assert len(asyncio.run(one(e, "now", SamplingParams(2))).token_ids) == 2
    finally:
        e.close()


def test_a_request_that_can_never_fit_is_refused(eng):
    n = len(eng.tokenizer("hello")["input_ids"])
    with pytest.raises(SteeringError, match=f"can never fit.*{eng.kv_capacity}"):
        asyncio.run(one(eng, "hello", SamplingParams(eng.kv_capacity - n + 1)))
    assert eng.kv_capacity == 4096  # kv_tokens=4096 on a llama: all of it for one request


def test_every_eos_id_and_stop_token_ids_end_with_stop():
    model, tok = tiny_model("llama", seed=3), tiny_tokenizer()
    plain = make()
    try:
        base = asyncio.run(one(plain, "hello there", SamplingParams(12))).token_ids
    finally:
        plain.close()  # a manager left running keeps a non-daemon thread: pytest could not exit
    model.generation_config.eos_token_id = [base[4], 127]
    e = Engine(model, tok, slots=1, kv_tokens=2048, max_batch_tokens=256)
    try:
        assert set(e.eos_ids) == {base[4], 127, tok.eos_token_id}
        out = asyncio.run(one(e, "hello there", SamplingParams(12)))
        cut = base.index(base[4]) + 1
        assert out.token_ids == base[:cut] and out.finish_reason == "stop"
        stop = asyncio.run(one(e, "hello there", SamplingParams(12, stop_token_ids=(base[1],))))
        assert stop.token_ids == base[: base.index(base[1]) + 1] and stop.finish_reason == "stop"
        full = asyncio.run(one(e, "hello there", SamplingParams(3)))
        assert full.finish_reason == ("stop" if full.token_ids[-1] in e.eos_ids else "length")
    finally:
        e.close()


def test_latency_histograms_count_first_tokens_and_gaps(eng):
    before = eng.metrics()["histograms"]
    asyncio.run(one(eng, "hello", SamplingParams(5), stream=True))
    after = eng.metrics()["histograms"]
    assert after["ttft_seconds"]["count"] == before["ttft_seconds"]["count"] + 1
    assert after["inter_token_seconds"]["count"] == before["inter_token_seconds"]["count"] + 4
    assert after["ttft_seconds"]["buckets"][-1][1] == after["ttft_seconds"]["count"]
