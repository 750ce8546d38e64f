"""`GET /metrics` in the Prometheus text format (prometheus_client), one registry per app.

Counted per request by `ObserveMiddleware` (steerfast/serve/observe.py): requests by endpoint
and status, request duration, tokens in / out (a non-streamed response's `usage`; a stream's
`token_ids` as each chunk goes out), requests per resident steering plan (a plan's series
is removed when the plan is deleted; names that are not plans get none), and, for streamed
responses, time to first token and inter-token latency as the client sees them (first
content chunk after the request arrived; gap between content chunks). The engine's own
figures (requests active, queue depth, slots busy, KV cache use, its counters and its TTFT /
inter-token histograms over every request) are read when Prometheus scrapes.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

ENDPOINTS = (
    "/health",
    "/metrics",
    "/v1/models",
    "/v1/completions",
    "/v1/chat/completions",
    "/v1/steering/plans",
)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TOKEN_GAP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def endpoint_label(path: str) -> str:
    """The route a path belongs to (a bounded label set: unknown paths are 'other')."""
    if path in ENDPOINTS:
        return path
    if path.startswith("/v1/steering/plans/"):
        return "/v1/steering/plans/{name}"
    return "other"


class ServeMetrics:
    def __init__(self, engine=None, in_flight=None):
        self.engine = engine
        self.in_flight = in_flight or (lambda: 0)
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "steerfast_requests",
            "HTTP requests by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "steerfast_request_duration_seconds",
            "Time from request to the end of its response",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "steerfast_stream_time_to_first_token_seconds",
            "Streamed responses: request arrival to the first chunk with content",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "steerfast_stream_inter_token_latency_seconds",
            "Streamed responses: gap between successive content chunks",
            buckets=TOKEN_GAP_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "steerfast_prompt_tokens", "Prompt tokens of finished requests", registry=r
        )
        self.generation_tokens = Counter(
            "steerfast_generation_tokens",
            "Completion tokens sent (streamed: as each chunk goes out; else from the response's usage)",
            registry=r,
        )
        self.by_plan = Counter(
            "steerfast_plan_requests", "Generation requests naming each steering plan", ["plan"], registry=r
        )
        r.register(_EngineCollector(self))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def observe(self, rec) -> None:
        """Count one finished request (an access-log record, steerfast/serve/observe.py)."""
        ep = endpoint_label(rec.path)
        self.requests.labels(ep, rec.method, str(rec.status)).inc()
        self.duration.labels(ep).observe(rec.seconds)
        if rec.prompt_tokens:
            self.prompt_tokens.inc(rec.prompt_tokens)
        if rec.completion_tokens and not rec.stream:  # a stream's tokens: counted as they went out
            self.generation_tokens.inc(rec.completion_tokens)
        for name in dict.fromkeys(rec.steering):  # once per plan per request
            if self._resident(name):  # no series for names that are not (or no longer) plans
                self.by_plan.labels(name).inc()
        if rec.first_token_s is not None:
            self.ttft.observe(rec.first_token_s)
        for gap in rec.token_gaps:
            self.itl.observe(gap)

    def streamed_tokens(self, n: int) -> None:
        """Tokens of a streamed response, counted as each chunk goes out (a stream the client
        leaves keeps what it was sent)."""
        self.generation_tokens.inc(n)

    def forget_plan(self, name: str) -> None:
        """A deleted plan's series goes with it (one series per resident plan, not per name
        ever uploaded)."""
        with contextlib.suppress(KeyError):  # never counted
            self.by_plan.remove(name)

    def _resident(self, name: str) -> bool:
        plans = getattr(self.engine, "plans", None)
        return plans is None or name in plans


class _EngineCollector:
    """Gauges read from the engine at scrape time (whatever the engine reports)."""

    GAUGES = {
        "requests_active": ("steerfast_requests_active", "Requests the engine is running or queueing"),
        "queue_depth": ("steerfast_queue_depth", "Requests waiting for the engine"),
        "slots": ("steerfast_slots", "Steering bank slots"),
        "slots_busy": ("steerfast_slots_busy", "Bank slots holding a configuration in use"),
        "kv_blocks_used": ("steerfast_kv_blocks_used", "Paged KV cache blocks in use"),
        "kv_blocks_total": ("steerfast_kv_blocks_total", "Paged KV cache blocks"),
    }

    COUNTERS = {  # the engine's own counts since start
        "requests_total": ("steerfast_engine_requests", "Requests the engine took"),
        "requests_failed": ("steerfast_engine_requests_failed", "Requests whose generation failed"),
        "tokens_generated": (
            "steerfast_engine_tokens_generated",
            "Tokens the engine generated, counted as sampled (cancelled requests' too)",
        ),
        "prompt_tokens": ("steerfast_engine_prompt_tokens", "Prompt tokens the engine took"),
        "requests_cancelled": (
            "steerfast_engine_requests_cancelled",
            "Requests cancelled (client gone, drain)",
        ),
        "manager_restarts": (
            "steerfast_engine_manager_restarts",
            "Times the engine restarted its manager loop",
        ),
        "failed_steps": ("steerfast_engine_failed_steps", "Engine steps that raised"),
        "steps": ("steerfast_engine_steps", "Engine steps run"),
    }

    def __init__(self, metrics: ServeMetrics):
        self.metrics = metrics

    def describe(self):
        return []  # dynamic: what the engine reports decides the families

    def collect(self):
        g = GaugeMetricFamily(
            "steerfast_requests_in_flight", "Generation requests admitted by the HTTP layer"
        )
        g.add_metric([], self.metrics.in_flight())
        yield g
        engine = self.metrics.engine
        if engine is None:
            return
        try:
            figures = dict(engine.metrics())
        except Exception:  # a scrape must not fail because the engine is stopping
            figures = {}
        if "kv_blocks_used" not in figures:
            figures.update(_kv_blocks(engine))
        for key, (name, doc) in self.GAUGES.items():
            value = figures.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                fam = GaugeMetricFamily(name, doc)
                fam.add_metric([], value)
                yield fam
        for key, (name, doc) in self.COUNTERS.items():
            value = figures.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                fam = CounterMetricFamily(name, doc)
                fam.add_metric([], value)
                yield fam
        plans = figures.get("resident_plans")
        if isinstance(plans, (list, tuple)):
            fam = GaugeMetricFamily("steerfast_resident_plans", "Named plans the server holds")
            fam.add_metric([], len(plans))
            yield fam
        running = getattr(getattr(engine, "manager", None), "is_running", None)
        if callable(running):
            fam = GaugeMetricFamily("steerfast_engine_running", "1 while the engine's manager loop runs")
            fam.add_metric([], 1 if running() else 0)
            yield fam
        yield from _engine_histograms(figures)


def _kv_blocks(engine) -> dict:
    """Paged-cache use from transformers' cache (its public num_blocks / compute_free_capacity),
    where the engine does not report it itself; nothing while no batch processor runs."""
    try:
        cache = engine.manager.batch_processor.cache
        total = int(cache.num_blocks)
        used = round(total * (1.0 - float(cache.compute_free_capacity(relative=True))))
    except Exception:
        return {}
    return {"kv_blocks_used": used, "kv_blocks_total": total}


ENGINE_HISTOGRAMS = {
    "ttft_seconds": "Engine: request added to its first token (a non-streamed request: to its output)",
    "inter_token_seconds": "Engine: gap between successive outputs of a request",
}


def _engine_histograms(figures: dict):
    """Histograms the engine keeps itself (Engine.metrics()["histograms"][name] =
    {"buckets": [(upper bound, cumulative count), ..., (inf, count)], "sum": s, "count": n})."""
    for name, h in (figures.get("histograms") or {}).items():
        try:
            buckets = [(str(float(le)), int(c)) for le, c in h["buckets"]]
            if not buckets or buckets[-1][0] != "inf":
                buckets.append(("+Inf", int(h["count"])))
            else:
                buckets[-1] = ("+Inf", buckets[-1][1])
            doc = ENGINE_HISTOGRAMS.get(name, f"Engine histogram {name}")
            fam = HistogramMetricFamily(f"steerfast_engine_{name}", doc)
            fam.add_metric([], buckets, float(h["sum"]))
            yield fam
        except (KeyError, TypeError, ValueError):
            continue


__all__ = ["ServeMetrics", "endpoint_label"]
