"""Worker side: the bank is built right after the model loads (before vLLM's first compile),
requests take and give back slots as the scheduler adds and finishes them, and every step's
row maps are written after vLLM prepares its inputs (V1 model runner; the CPU runner is one)."""

from __future__ import annotations

import functools

import torch

from ..errors import SteeringError
from .bank import VllmBank
from .config import plugin_config
from .internals import UnsupportedVllm, check_runner
from .monitor_taps import KEY as TAPS_KEY
from .monitor_taps import MonitorTaps
from .patching import patch_once
from .rows import fill_rows
from .spec import CANONICAL, KEY
from .state import EngineState


class WorkerSteering:
    def __init__(self, runner, cfg):
        check_runner(runner)
        tp = runner.vllm_config.parallel_config.tensor_parallel_size
        self.state = EngineState(cfg, runner.model_config.hf_config, tp)
        sched = runner.scheduler_config
        max_tokens = max(sched.max_num_batched_tokens, getattr(runner, "max_num_tokens", 0)) + 16
        on_cpu = torch.device(runner.device).type == "cpu"
        host_branch = cfg.compiled_edit == "op"  # compiled steps call site_op
        if (host_branch or cfg.monitors) and not (on_cpu or runner.model_config.enforce_eager):
            raise SteeringError(
                "compiled_edit 'op' and monitors run ops that branch on the host each step, which "
                "a CUDA graph would freeze: use them on CPU or with enforce_eager"
            )
        self.bank = VllmBank(
            runner.get_model(), self.state.layout, sched.max_num_seqs, max_tokens, host_branch
        )
        self.taps = None  # after the bank: layer 0's reading follows embed.out's edit
        if self.state.monitors:
            monitors = list(self.state.monitors.values())
            self.taps = MonitorTaps(runner.get_model(), monitors, sched.max_num_seqs)

    def admit(self, request_id: str, spec, prompt_len: int) -> None:
        if request_id in self.bank.slot_of:  # resumed after preemption: keeps its slot
            return
        if not (isinstance(spec, dict) and spec.get("v") == CANONICAL):
            raise SteeringError("a steered request reached the worker without the plugin's frontend")
        self.bank.acquire(request_id, spec["key"], lambda: self.state.plan_of(spec), prompt_len)


def _extra_of(new_req) -> dict:
    sp = getattr(new_req, "sampling_params", None)
    return (getattr(sp, "extra_args", None) or {}) if sp is not None else {}


def _steering_of(new_req):
    return _extra_of(new_req).get(KEY)


def _wrap_load_model(orig):
    @functools.wraps(orig)
    def load_model(self, *args, **kwargs):
        out = orig(self, *args, **kwargs)
        cfg = plugin_config(self.vllm_config.additional_config)
        if cfg is not None and getattr(self, "_steerfast", None) is None:
            self._steerfast = WorkerSteering(self, cfg)
        return out

    return load_model


def _wrap_update_states(orig):
    @functools.wraps(orig)
    def _update_states(self, scheduler_output):
        st = getattr(self, "_steerfast", None)
        if st is not None:
            for rid in scheduler_output.finished_req_ids:
                st.bank.release(rid)
                if st.taps is not None:
                    st.taps.release(rid)
        out = orig(self, scheduler_output)
        if st is not None:
            for new in scheduler_output.scheduled_new_reqs:
                spec, ask = _steering_of(new), _extra_of(new).get(TAPS_KEY)
                if spec is not None:
                    st.admit(new.req_id, spec, len(new.prompt_token_ids or ()))
                if ask is not None and st.taps is not None:
                    st.taps.admit(new.req_id, ask)
        return out

    return _update_states


def _wrap_prepare_inputs(orig):
    @functools.wraps(orig)
    def _prepare_inputs(self, *args, **kwargs):
        out = orig(self, *args, **kwargs)
        st = getattr(self, "_steerfast", None)
        if st is not None:
            fill_rows(st.bank, self)
            if st.taps is not None:
                st.taps.begin_step(self)
        return out

    return _prepare_inputs


# --- collective_rpc methods (the server's plan uploads reach every worker through them) ----
def steerfast_add_plan(self, name: str, data: bytes) -> bool:
    self.model_runner._steerfast.state.add_plan(name, data)
    return True


def steerfast_remove_plan(self, name: str) -> bool:
    self.model_runner._steerfast.state.registry.remove(name)
    return True


def steerfast_readings(self, keys: list, final: bool = True, starts: list | None = None) -> dict:
    """Monitor readings so far of these request keys, each from its token in `starts` (all
    when None); final: handed over and forgotten."""
    taps = getattr(getattr(self.model_runner, "_steerfast", None), "taps", None)
    return {} if taps is None else taps.take(list(keys), bool(final), starts)


def steerfast_stats(self) -> dict:
    st = getattr(self.model_runner, "_steerfast", None)
    if st is None:
        return {"active": False}
    bank = st.bank
    return {
        "active": True,
        "sites": [f"{layer}:{site}" for layer, site in st.state.layout.sites],
        "slots": bank.slots,
        "slots_held": sum(r > 0 for r in bank.refs),
        "requests": len(bank.slot_of),
        "recomputed": bank.recomputed,
        "compiled_edit": "op" if bank.host_branch else "data",
        "monitors": [] if st.taps is None else st.taps.names,
        "monitored_requests": 0 if st.taps is None else len(st.taps.asked),
        "readings_kept": 0 if st.taps is None else len(st.taps.readings),
    }


def _refuse_v2(orig):
    @functools.wraps(orig)
    def load_model(self, *args, **kwargs):
        if plugin_config(self.vllm_config.additional_config) is not None:
            raise UnsupportedVllm(
                "steerfast's vLLM plugin steers through the V1 model runner (the one vLLM 0.32 "
                "picks on CPU); this engine uses the V2 runner: set VLLM_USE_V2_MODEL_RUNNER=0"
            )
        return orig(self, *args, **kwargs)

    return load_model


def install() -> None:
    from vllm.v1.worker.cpu_model_runner import CPUModelRunner
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner
    from vllm.v1.worker.gpu_worker import Worker

    patch_once(CPUModelRunner, "load_model", _wrap_load_model)
    patch_once(GPUModelRunner, "load_model", _wrap_load_model)
    patch_once(GPUModelRunner, "_update_states", _wrap_update_states)
    patch_once(GPUModelRunner, "_prepare_inputs", _wrap_prepare_inputs)
    try:
        from vllm.v1.worker.gpu.model_runner import GPUModelRunner as V2Runner
    except ImportError:
        V2Runner = None
    if V2Runner is not None:
        patch_once(V2Runner, "load_model", _refuse_v2)
    for fn in (steerfast_add_plan, steerfast_remove_plan, steerfast_stats, steerfast_readings):
        setattr(Worker, fn.__name__, fn)
