"""serve/internals.py: the serving seam refuses, naming the transformers version and what is
missing, a transformers outside the range it was checked against or lacking any private name
it touches; and its tables cover every private name the seam, the prefix cache, the engine and
the row maps read."""

import inspect
import re
import types
from pathlib import Path

import pytest
import transformers

from steerfast.errors import SteeringError
from steerfast.serve import internals, prefix, seam
from steerfast.testing import tiny_model, tiny_tokenizer

TABLE = internals.SEAM + internals.PREFIX
SRC = Path(internals.__file__).resolve().parents[1]


def test_the_installed_transformers_is_in_range_and_has_every_name():
    v = transformers.__version__
    assert internals.version_problem(v) is None, f"transformers {v} is outside {internals.CHECKED_RANGE}"
    assert internals.problems(TABLE, internals.load_modules()) == []
    seam.check_internals()
    prefix.check_internals()


@pytest.mark.parametrize("version", ["5.18.0", "5.17.0", "4.57.1", "5.26.0", "6.0.0"])
def test_a_version_outside_the_range_is_refused_naming_it(version, monkeypatch):
    monkeypatch.delenv(internals.UNCHECKED_ENV, raising=False)
    monkeypatch.setattr(internals, "installed_version", lambda: version)
    for check in (seam.check_internals, prefix.check_internals):
        with pytest.raises(SteeringError) as err:
            check()
        msg = str(err.value)
        assert f"transformers {version} is outside" in msg and internals.CHECKED_RANGE in msg
        assert internals.UNCHECKED_ENV in msg


def test_the_range_ends_are_accepted_and_the_override_lets_names_decide(monkeypatch):
    monkeypatch.delenv(internals.UNCHECKED_ENV, raising=False)
    for v in (internals.CHECKED_MIN, internals.CHECKED_MAX):
        assert internals.version_problem(v) is None
    monkeypatch.setenv(internals.UNCHECKED_ENV, "1")
    monkeypatch.setattr(internals, "installed_version", lambda: "5.99.0")
    seam.check_internals()  # the names are all there, so the override serves
    monkeypatch.delattr(internals.load_modules()["api"].ContinuousBatchingManager, "_create_batch_processor")
    with pytest.raises(SteeringError, match=r"transformers 5\.99\.0 lacks .*_create_batch_processor"):
        seam.check_internals()


def _owned_callables():
    """Every method / function entry whose object is defined on the named holder itself."""
    modules = internals.load_modules()
    for entry in TABLE:
        kind, key, cls, name, _, _ = entry
        if kind not in ("method", "function", "accepts", "calls"):
            continue
        holder = modules[key] if cls is None or kind == "function" else getattr(modules[key], cls)
        if name in vars(holder):
            yield pytest.param(holder, name, id=f"{cls or key}.{name}")


@pytest.mark.parametrize("holder,name", list(_owned_callables()))
def test_removing_any_callable_is_refused_naming_it(holder, name, monkeypatch):
    monkeypatch.delattr(holder, name)
    for check in (seam.check_internals, prefix.check_internals):
        try:
            check()
        except SteeringError as exc:
            msg = str(exc)
            assert f"transformers {transformers.__version__}" in msg and name in msg
            break
    else:
        pytest.fail(f"neither check noticed {name} missing")


class OutputRouterWithoutLock:
    def __init__(self):
        self.result_handlers = {}


def test_a_missing_instance_attribute_is_named_with_its_user():
    modules = dict(internals.load_modules())
    api = types.ModuleType(modules["api"].__name__)
    api.__dict__.update(vars(modules["api"]))
    api.OutputRouter = OutputRouterWithoutLock
    modules["api"] = api
    assert internals.problems(internals.SEAM, modules) == [
        "OutputRouter._lock is gone (used by serve/engine.py)"
    ]
    with pytest.raises(SteeringError, match=r"transformers 5\.21\.0 lacks .*OutputRouter\._lock is gone"):
        internals.check(internals.SEAM, "the seam", version="5.21.0", modules=modules)


def test_a_renamed_parameter_and_a_dropped_call_are_named(monkeypatch):
    modules = internals.load_modules()
    runner = modules["runner"].ModelRunner
    orig = runner._forward_process_and_sample

    def renamed(self, model, batch, carry_over_ids, prev_output_ids, output_ids):
        return orig(self, model, batch, carry_over_ids, prev_output_ids, output_ids)

    monkeypatch.setattr(runner, "_forward_process_and_sample", renamed)
    assert any(
        "_forward_process_and_sample" in p and "batch'" in p
        for p in internals.problems(internals.SEAM, modules)
    )
    monkeypatch.undo()

    sched = modules["scheduler"].Scheduler

    def no_prefix_lookup(self, *args, **kwargs):
        return 0

    monkeypatch.setattr(sched, "_infer_request_tokens", no_prefix_lookup)
    assert internals.problems(internals.PREFIX, modules) == [
        "Scheduler._infer_request_tokens no longer calls search_prefix_match (used by serve/prefix.py)"
    ]


def test_the_engine_refuses_to_start_on_an_unchecked_version(monkeypatch):
    monkeypatch.delenv(internals.UNCHECKED_ENV, raising=False)
    monkeypatch.setattr(seam, "_CLASSES", None)  # built once per process: check again
    monkeypatch.setattr(internals, "installed_version", lambda: "5.17.0")
    from steerfast.serve.engine import Engine

    with pytest.raises(SteeringError, match=r"transformers 5\.17\.0 is outside"):
        Engine(tiny_model("llama", seed=3), tiny_tokenizer(), slots=1, kv_tokens=1024, max_batch_tokens=64)


# private names the seam's files read from transformers objects, by the variable they come from
READS = {
    "serve/seam.py": r"(?:io|bp|self\.logit_processor|fs|fs\.state|bp\.model_runner|self\.scheduler)\.(\w+)",
    "serve/engine.py": r"self\.manager\.(\w+)|router\.(\w+)|out\.(\w+)|manager\.batch_processor\.(\w+)",
    "serve/prefix.py": r"alloc\.ledger\.(\w+)|alloc\.(\w+)|state\.(\w+)",
    "runtime/packed.py": r"fs\.(\w+)|state\.(\w+)|io\.(\w+)",
}
STEERFAST_OWN = {
    "hooks",
    "rows",
    "prefix_keys",
    "_mark",
    "steps",
    "failed_steps",
    "maybe_fail",
    "sample",
    "step",
    "put_nowait",
    "get",
    "empty",
    "qsize",
    "is_set",
    "_step_error",
    "__class__",
    "copy_",
    "shape",
    "view",
}


@pytest.mark.parametrize("path", sorted(READS))
def test_every_name_the_files_read_is_in_a_table(path):
    """A guard against a new private read slipping past the tables: every attribute the
    seam's files read off transformers objects (by the variables that hold them) is listed."""
    listed = {e[3] for e in TABLE} | {"inputs_and_outputs", "cache", "ledger", "state"}
    src = (SRC / path).read_text()
    read = {n for m in re.finditer(READS[path], src) for n in m.groups() if n}
    unlisted = sorted(read - listed - STEERFAST_OWN)
    assert not unlisted, f"{path} reads {unlisted} from transformers objects: add them to serve/internals.py"
    assert inspect.getsource(internals)
