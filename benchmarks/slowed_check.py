"""Self-test of the `steerfast bench --check` gate: the same quick matrix, with every fused and
bank variant slowed by a busy-wait in its forward, must fail the check.

    python benchmarks/slowed_check.py [--spin-ms 3] [bench flags, e.g. --only decode/b1]

A busy-wait (not a sleep) burns the thread's CPU time, so it shows on the default `--clock cpu`
as it would on the wall clock. Exit 1 (the check failed, as it must) is printed as "gate OK";
exit 0 means a slowdown of that size went unnoticed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from steerfast.bench import runner
from steerfast.cli import main


def _slowed(spin_s: float):
    build = runner.build_variant

    def spin(module, args):
        t0 = time.thread_time()
        while time.thread_time() - t0 < spin_s:
            pass

    def build_slowed(base, name, plans, batch):
        v = build(base, name, plans, batch)
        if v.ok and v.kind in ("fused", "bank"):
            hook = v.model.register_forward_pre_hook(spin)
            undo = v.undo

            def undo_all(hook=hook, undo=undo):
                hook.remove()
                if undo is not None:
                    undo()

            v.undo = undo_all
        return v

    return build_slowed


def run(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spin-ms", type=float, default=3.0, help="busy-wait per steered forward (ms)")
    args, bench_args = p.parse_known_args(argv)
    runner.build_variant = _slowed(args.spin_ms / 1000)
    with tempfile.TemporaryDirectory() as out:
        rc = main(["bench", "--quick", "--check", "--no-profile", "--out", out, *bench_args])
    print(
        f"slowed by {args.spin_ms} ms per forward: --check exit {rc} -> "
        + ("gate OK (the slowdown was caught)" if rc == 1 else "GATE MISSED the slowdown")
    )
    return 0 if rc == 1 else 1


if __name__ == "__main__":
    sys.exit(run())
