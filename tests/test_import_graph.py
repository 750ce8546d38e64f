"""The package's shape, read from its source (nothing is imported or run):

- no import circle among the modules of steerfast/;
- no arrow running up the layer order of docs/architecture.md (FLOORS below);
- the size rule: no file over 400 lines and no function over 80 lines without a reason at its
  top (a line starting "Size:" in the module's or function's docstring), or an entry in
  PENDING_SIZE.

Every static import counts, wherever it is written (module level, inside a function, under
`if TYPE_CHECKING`): a lazy import is still an arrow. A module's room is its top-level name
under steerfast/ (`steerfast.runtime.bank` -> runtime, `steerfast.plan` -> plan), except where
ROOM_OF says otherwise. A room not in FLOORS (a module someone has just added) sits half a floor
above the highest room it imports, so it never fails for its own arrows, but a room below it
that imports it does: then give it a floor here and in docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "steerfast"

# lowest first: a module may import its own room and rooms on lower floors, never a room on its
# own floor or above (docs/architecture.md, "Rooms and arrows")
FLOORS: tuple[tuple[str, ...], ...] = (
    ("errors", "kernels"),
    ("ops", "timing", "data", "kv_cache_arg"),
    ("adapters", "positions", "tokens", "conditions", "models"),
    ("plan",),
    ("monitor",),  # the Monitor artifact (runtime reads it, its file is plan's artifact.py)
    ("runtime", "monitored"),
    ("hooks", "steered_generation", "testing"),
    ("api",),  # steerfast/__init__.py: the public names
    ("evaluate",),
    ("recipes",),
    ("serve", "tune", "interop", "experiments"),  # engines and applications
    ("vllm",),  # the vLLM plugin mounts serve's plan routes and middleware
    ("bench",),
    ("cli",),
    ("main",),
)
ROOM_OF = {
    "steerfast": "api",
    "steerfast.__main__": "main",
    "steerfast.intervention": "plan",  # the plan's unit, split out of plan.py
    "steerfast.artifact": "plan",  # the safetensors + JSON header file of plans and monitors
}

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
# (path under steerfast/, function name or None for the file): why it is over and who shrinks it
PENDING_SIZE: dict[tuple[str, str | None], str] = {}


# --- reading the package --------------------------------------------------------------------
def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _target(name: str) -> str | None:
    """The steerfast module an imported dotted name lands in (its longest module prefix)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str) -> set[str]:
    """The steerfast modules `name` imports, anywhere in its source."""
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))
    here = name if _is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "steerfast":
                    found.add(_target(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "steerfast":
                continue
            for alias in node.names:  # `from pkg import mod` imports the module pkg.mod
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in MODULES else _target(source))
    found.discard(None)
    found.discard(name)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def room_of(module: str) -> str:
    if module in ROOM_OF:
        return ROOM_OF[module]
    return module.split(".")[1]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = counter
                    counter += 1
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.get(step, ())))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def floors(graph: dict[str, set[str]]) -> dict[str, float]:
    """Each room's floor: FLOORS, and for a room not listed there, half a floor above the
    highest room it imports (rooms it reaches first)."""
    declared = {room: float(i) for i, rooms in enumerate(FLOORS) for room in rooms}
    arrows: dict[str, set[str]] = {}
    for src, targets in graph.items():
        for dst in targets:
            if room_of(src) != room_of(dst):
                arrows.setdefault(room_of(src), set()).add(room_of(dst))
    placed = dict(declared)

    def place(room: str, seen: frozenset) -> float:
        if room not in placed:
            below = [place(r, seen | {room}) for r in arrows.get(room, ()) if r not in seen]
            placed[room] = max(below, default=-1.0) + 0.5
        return placed[room]

    for module in graph:
        place(room_of(module), frozenset())
    return placed


# --- the tests ------------------------------------------------------------------------------
def test_the_reader_sees_the_known_arrows():
    """The reader finds module-level, function-level and `from pkg import module` arrows."""
    assert "steerfast.plan" in GRAPH["steerfast.runtime.bank"]
    assert "steerfast.evaluate.fast" in GRAPH["steerfast.recipes.laai_select"]  # inside dev_scorer()
    assert "steerfast.models" in GRAPH["steerfast.bench.runner"]  # inside get_model()
    assert "steerfast.ops" in GRAPH["steerfast.runtime.steered"]  # `from .. import ops`
    assert "steerfast.runtime" in GRAPH["steerfast"]
    assert room_of("steerfast.runtime.bank") == "runtime" and room_of("steerfast") == "api"


def test_circles_and_floors_are_found_on_a_made_up_graph():
    """The checks themselves can fail: a circle and an upward arrow on a small graph."""
    graph = {
        "steerfast.plan": {"steerfast.runtime.a"},
        "steerfast.runtime.a": {"steerfast.runtime.b"},
        "steerfast.runtime.b": {"steerfast.runtime.a", "steerfast.plan"},
        "steerfast.newroom": {"steerfast.runtime.a"},
    }
    assert circles(graph) == [["steerfast.plan", "steerfast.runtime.a", "steerfast.runtime.b"]]
    placed = floors(graph)
    assert placed["newroom"] == placed["runtime"] + 0.5
    want = f"(plan, floor {placed['plan']:g} -> runtime, floor {placed['runtime']:g})"
    assert _upward(graph) == [f"steerfast.plan -> steerfast.runtime.a {want}"]


def test_no_import_circle():
    found = circles(GRAPH)
    assert not found, "import circles in steerfast/ (break each with a leaf module):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def _upward(graph: dict[str, set[str]]) -> list[str]:
    placed = floors(graph)
    bad = []
    for src in sorted(graph):
        for dst in sorted(graph[src]):
            a, b = room_of(src), room_of(dst)
            if a != b and placed[a] <= placed[b]:
                bad.append(f"{src} -> {dst} ({a}, floor {placed[a]:g} -> {b}, floor {placed[b]:g})")
    return bad


def test_no_arrow_runs_up_the_floors():
    bad = _upward(GRAPH)
    assert not bad, "imports that run up (or sideways on) the layer order of docs/architecture.md:\n" + (
        "\n".join(bad)
    )


# --- the size rule --------------------------------------------------------------------------
def _has_reason(node) -> bool:
    doc = ast.get_docstring(node) or ""
    return any(line.strip().startswith("Size:") for line in doc.splitlines())


def oversized() -> list[tuple[str, str | None, int]]:
    """(path under steerfast/, function or None, lines) of every unit over the rule without a reason."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        source = path.read_text()
        tree = ast.parse(source)
        n = len(source.splitlines())
        if n > MAX_FILE_LINES and not _has_reason(tree):
            out.append((rel, None, n))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and not _has_reason(node):
                    out.append((rel, node.name, length))
    return out


def test_size_rule():
    over = [(p, f, n) for p, f, n in oversized() if (p, f) not in PENDING_SIZE]
    assert not over, (
        f"over {MAX_FILE_LINES} lines (file) / {MAX_FUNCTION_LINES} (function) with no 'Size:' "
        "reason at its top: split by job, or write why:\n"
        + "\n".join(f"{p}{'::' + f if f else ''}: {n} lines" for p, f, n in over)
    )


def test_pending_size_exceptions_are_still_needed():
    """An exception that is no longer over the rule is removed from PENDING_SIZE."""
    over = {(p, f) for p, f, _ in oversized()}
    for path, func in PENDING_SIZE:
        assert (PACKAGE / path).exists(), f"{path} no longer exists: remove it from PENDING_SIZE"
        assert (path, func) in over, f"{(path, func)} is within the rule now: remove it"
