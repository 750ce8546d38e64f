"""A FastAPI app that is NOT steerfast's server, mounting only the plan routes (as the vLLM
plugin does): `python plans_router_app.py PORT MODEL_DIR PLAN_DIR ADMIN_KEY`.

Its /loaded answers which heavy modules importing the plan routes brought in (none: not the
engine, the seam, prefix.py or transformers' continuous batching) and which steerfast serving
modules the process holds after serving plan requests (none of the engine's).
"""

import sys

import uvicorn
from fastapi import FastAPI

from steerfast.serve.plan_store import PlanStore
from steerfast.serve.routes.plans import DictRegistry, plans_router, restore
from steerfast.serve.security import admin_check

HEAVY = ("steerfast.serve.engine", "steerfast.serve.seam", "steerfast.serve.prefix")
# what importing the plan routes brought in (loading a model later imports transformers'
# generation code, continuous batching included, whoever asks for it)
AT_IMPORT = sorted(m for m in sys.modules if m in HEAVY or "continuous_batching" in m)


def main(port: int, model_dir: str, plan_dir: str, admin_key: str) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    registry = DictRegistry(validate=lambda plan: plan.validate(model), slots=2)
    store = PlanStore(plan_dir)
    restore(registry, store)
    app = FastAPI()
    app.include_router(plans_router(registry, store, admin_check(admin_key)))

    @app.get("/loaded")
    async def loaded():
        now = [m for m in sys.modules if m in HEAVY]
        return {"heavy_at_import": AT_IMPORT, "engine_modules": sorted(now)}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
