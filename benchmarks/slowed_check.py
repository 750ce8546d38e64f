"""Self-test of the `steerfast bench --check` gate: the same quick matrix, with every fused and
bank variant slowed by a busy-wait in its forward, must fail the check.

    python benchmarks/slowed_check.py [--slowdown 0.15] [bench flags, e.g. --only decode/b1]

Each steered forward busy-waits for `slowdown` x its own duration after it ran, so the
variant is that fraction slower whatever the machine's load. A busy-wait (not a sleep) burns
the thread's CPU time, so it shows on the default `--clock cpu` as on the wall clock. The
check's resolution is the limit plus the run's noise (a few percent on a shared machine), so
the default slowdown is well beyond it. Exit 1 of the check (it failed, as it must) is printed
as "gate OK"; exit 0 means a slowdown of that size went unnoticed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from steerfast.bench import runner
from steerfast.cli import main


def _slowed(fraction: float):
    build = runner.build_variant
    started: list[float] = []

    def start(module, args):
        started.append(time.thread_time())

    def spin(module, args, out):
        t0 = time.thread_time()
        until = t0 + fraction * (t0 - started.pop())
        while time.thread_time() < until:
            pass

    def build_slowed(base, name, plans, batch):
        v = build(base, name, plans, batch)
        if v.ok and v.kind in ("fused", "bank"):
            hooks = [v.model.register_forward_pre_hook(start), v.model.register_forward_hook(spin)]
            undo = v.undo

            def undo_all(hooks=hooks, undo=undo):
                for h in hooks:
                    h.remove()
                if undo is not None:
                    undo()

            v.undo = undo_all
        return v

    return build_slowed


def run(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--slowdown", type=float, default=0.15, help="extra time per steered forward, as a fraction of it"
    )
    args, bench_args = p.parse_known_args(argv)
    runner.build_variant = _slowed(args.slowdown)
    with tempfile.TemporaryDirectory() as out:
        rc = main(["bench", "--quick", "--check", "--no-profile", "--out", out, *bench_args])
    print(
        f"slowed by {100 * args.slowdown:.0f}% per forward: --check exit {rc} -> "
        + ("gate OK (the slowdown was caught)" if rc == 1 else "GATE MISSED the slowdown")
    )
    return 0 if rc == 1 else 1


if __name__ == "__main__":
    sys.exit(run())
