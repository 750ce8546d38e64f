"""Every per-request table of the Engine is empty once a request ends, however it ends
(finished, failed step, timed out, cancelled by drain, closed by a client that left), and
the tokens-generated count moves while a request runs (Engine on the tiny random llama)."""

import asyncio
import threading
import time

import pytest
import torch

from steerfast.conditions import Condition
from steerfast.plan import Intervention, SteeringPlan
from steerfast.serve.engine import Engine, EngineUnavailable, GenerationFailed, SteerEntry
from steerfast.serve.params import SamplingParams
from steerfast.testing import random_plan, tiny_model, tiny_tokenizer

TABLES = {"inflight", "rows", "tracked", "prefix", "handlers", "slots_referenced", "gates", "active"}
PENDING = "gates_pending"  # cancelled requests the scheduler has not dropped yet


def make(**kw):
    model = tiny_model("llama", seed=3)
    model.generation_config.eos_token_id = None
    args = dict(slots=3, kv_tokens=4096, max_batch_tokens=256, max_new_tokens=64)
    e = Engine(model, tiny_tokenizer(), **{**args, **kw})
    e.add_plan("p", random_plan(e.model, seed=5, policies=("all",) * 5))
    D, g = model.config.hidden_size, torch.Generator().manual_seed(1)
    ivs = [Intervention(2, "mlp.out", "add", torch.randn(D, generator=g), "from_prompt_end", 1.0)]
    gated = SteeringPlan(ivs, "t").when(Condition(1, torch.randn(D, generator=g), 0.0, ">", "last"))
    e.add_plan("gated", gated)
    return e


@pytest.fixture(scope="module")
def eng():
    e = make()
    yield e
    e.close()


def ids(eng, text):
    return eng.tokenizer(text)["input_ids"]


def settled(eng, timeout=10.0) -> dict:
    """The registrations once nothing is in flight (the manager frees a cancelled request at
    its next step: wait for that, not longer)."""
    deadline = time.monotonic() + timeout
    while True:
        regs = eng.registrations()
        if not any(regs.values()) or time.monotonic() > deadline:
            return regs
        time.sleep(0.02)


async def run(eng, text, params, entries=(), stream=False):
    out = None
    async for out in eng.generate(ids(eng, text), list(entries), params, stream):
        pass
    return out


def test_registrations_see_a_request_in_flight(eng):
    """The check cannot pass vacuously: mid-request, every table holds the request."""

    async def main():
        gen = eng.generate(ids(eng, "hello"), [SteerEntry("gated")], SamplingParams(40), True)
        await gen.__anext__()
        await gen.__anext__()  # a decode step ran: the gate of the conditional plan is decided
        during = eng.registrations()
        await gen.aclose()
        return during

    during = asyncio.run(main())
    assert set(during) == TABLES | {PENDING}
    assert all(during[t] == 1 for t in TABLES) and during[PENDING] == 0, during
    assert not any(settled(eng).values())


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("plan", [None, "p", "gated"])
def test_tables_empty_after_a_finished_request(eng, stream, plan):
    out = asyncio.run(run(eng, "finish me", SamplingParams(5), [SteerEntry(plan)] if plan else [], stream))
    assert out.finished and len(out.token_ids) == 5
    assert not any(settled(eng).values())


def test_tables_empty_after_a_failed_step(eng):
    eng.inject_fault(1)
    with pytest.raises(GenerationFailed, match="injected step fault"):
        asyncio.run(run(eng, "fail me", SamplingParams(5), [SteerEntry("p")]))
    assert not any(settled(eng).values())


def test_tables_empty_after_clients_leave_streamed_and_waiting(eng):
    async def stream_then_leave(i):
        gen = eng.generate(
            ids(eng, f"c{i}"), [SteerEntry("gated" if i % 2 else "p")], SamplingParams(40), True
        )
        async for _ in gen:
            break
        await gen.aclose()

    async def wait_then_leave(i):
        task = asyncio.ensure_future(run(eng, f"w{i}", SamplingParams(40), [SteerEntry("p")]))
        await asyncio.sleep(0.01 * i)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def main():
        await asyncio.gather(
            *(stream_then_leave(i) for i in range(6)), *(wait_then_leave(i) for i in range(6))
        )

    before = eng.stats["requests_cancelled"]
    asyncio.run(main())
    assert eng.stats["requests_cancelled"] > before
    assert not any(settled(eng).values())


def test_tables_empty_after_a_timeout_and_a_drain():
    e = make(step_timeout_s=0.6, max_new_tokens=512, kv_tokens=8192)
    try:
        release = threading.Event()

        def hold():
            with e.manager.pause():
                release.wait(5)

        t = threading.Thread(target=hold)
        t.start()
        time.sleep(0.3)
        with pytest.raises(GenerationFailed, match="no progress for 0.6 s"):
            asyncio.run(run(e, "stalled", SamplingParams(4), [SteerEntry("gated")]))
        release.set()
        t.join()
        assert not any(settled(e).values())

        async def drained():
            long = [
                asyncio.ensure_future(run(e, f"x{i}", SamplingParams(500), [SteerEntry("p")]))
                for i in range(2)
            ]
            await asyncio.sleep(0.3)
            cancelled = await asyncio.to_thread(e.drain, 0.0)
            return cancelled, await asyncio.gather(*long, return_exceptions=True)

        cancelled, results = asyncio.run(drained())
        assert cancelled == 2 and all(isinstance(r, EngineUnavailable) for r in results), results
        assert not any(settled(e).values())
    finally:
        e.close()


def test_tokens_generated_counts_as_tokens_come_also_when_cancelled(eng):
    async def main():
        before = eng.metrics()["tokens_generated"]
        gen = eng.generate(ids(eng, "count me"), [], SamplingParams(60), True)
        n = 0
        async for snap in gen:
            n = len(snap.token_ids)
            if n >= 10:
                break
        during = eng.metrics()["tokens_generated"] - before
        await gen.aclose()
        return before, n, during

    before, n, during = asyncio.run(main())
    assert during >= n >= 10  # counted while the request runs, not only when it finishes
    settled(eng)
    after = eng.metrics()["tokens_generated"] - before
    assert n <= after < 60  # the cancelled request's tokens stay counted
    asyncio.run(run(eng, "and these", SamplingParams(7)))
    assert eng.metrics()["tokens_generated"] - before == after + 7
