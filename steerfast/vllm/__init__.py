"""steerfast inside vLLM: a plugin (no fork) that steers each request in vLLM's own batches.

Entry points (pyproject.toml): `vllm.general_plugins` -> `steerfast.vllm.plugin:register`
(every process: patches vLLM's frontend and CPU model runner, a no-op unless the engine's
`additional_config` has a "steerfast" section), `vllm.endpoint_plugins` ->
`steerfast.vllm.endpoint:SteerfastEndpoints` (the plan routes of `steerfast serve`).

Rooms: spec (a request's steering, canonical form, cache salt) and registry (plans by name)
are shared by the frontend and the workers; tables + hooks + rows are the worker's bank;
frontend and worker patch vLLM; internals pins the vLLM names they touch. docs/vllm.md.
"""
