"""The server's routes, one module per concern, each an `APIRouter` factory:

- generation.py: `generation_router(engine, model_name, served_names)` (completions, chat)
- plans.py: `plans_router(registry, store=None, authorize=None)` (list / upload / delete named
  plans; importable without the engine, so another server (the vLLM plugin) can mount it)
- status.py: `status_router(engine, model_name, served_names, metrics)` (health, models,
  /metrics, /v1/steering/stats)

`steerfast/serve/app.py::create_app` assembles them. Nothing is imported here, so importing
one router does not import the others.
"""
