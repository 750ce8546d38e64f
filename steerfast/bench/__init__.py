"""The benchmark suite: matrix, runner, peers, profiler breakdown, report, threshold check.

Entry points: `steerfast bench` (steerfast/cli/bench.py) and `pytest benchmarks/ --benchmark-only`.
"""

from .check import check, load_thresholds
from .matrix import Group, full_matrix, quick_matrix
from .runner import run_matrix

__all__ = ["run_matrix", "check", "load_thresholds", "Group", "full_matrix", "quick_matrix"]
