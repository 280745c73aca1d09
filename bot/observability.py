"""What operators see: Prometheus metrics from the web process and the workers, and logs as
one JSON object per line (LOG_FORMAT=json) carrying the tenant, execution and evolution ids
where they are known.

Metrics are observed at the edges the composition root owns, so the engine stays unaware:
HTTP requests (an ASGI middleware), executions queued and ratings (`ObservedService`), job
outcomes and durations — executions by status, evolutions by trigger and decision (the RQ
worker class), rollbacks (`ObservedNotifier`), model calls, tokens and cost by purpose (a
litellm callback), sandbox runs (`ObservedSandbox`), and queue depth (read at scrape time).

Several processes: set PROMETHEUS_MULTIPROC_DIR (an empty directory shared by the web
process and the workers on one machine, emptied at deploy) and the web's /metrics shows
them all; or give each worker EVOBOT_WORKER_METRICS_PORT and scrape it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from rq import SimpleWorker
from rq.executions import Execution as RQExecution
from rq.job import Job
from rq.queue import Queue
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.ports import Notifier, Sandbox
from engine.runtime import Runtime
from engine.service import EvobotService
from engine.types import (
    Accepted,
    Delivery,
    EvolutionAnnounced,
    FeedbackResult,
    InboundFeedback,
    InboundMessage,
    OutboundEvent,
    RolledBack,
    SandboxResult,
)

log = logging.getLogger(__name__)

# our metrics live in their own registry (several web apps in one test process share it)
REGISTRY = CollectorRegistry(auto_describe=True)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

HTTP_REQUESTS = Counter("evobot_http_requests", "HTTP requests by route, method and status.",
                        ["route", "method", "status"], registry=REGISTRY)
HTTP_SECONDS = Histogram("evobot_http_request_seconds", "Time to the HTTP response.",
                         ["route"], buckets=HTTP_BUCKETS, registry=REGISTRY)
EXECUTIONS = Counter("evobot_executions", "Executions by status: queued (web), then "
                     "succeeded, failed, skipped, or error (an attempt that raised and is "
                     "retried) (workers).", ["status"], registry=REGISTRY)
RATINGS = Counter("evobot_ratings", "Ratings recorded, by rating.", ["rating"],
                  registry=REGISTRY)
EVOLUTIONS = Counter("evobot_evolutions", "Evolutions by trigger and decision.",
                     ["trigger", "decision"], registry=REGISTRY)
ROLLBACKS = Counter("evobot_rollbacks", "Rollbacks by kind (manual or automatic).", ["kind"],
                    registry=REGISTRY)
LLM_CALLS = Counter("evobot_llm_calls", "Model calls by purpose, model and outcome.",
                    ["purpose", "model", "outcome"], registry=REGISTRY)
LLM_TOKENS = Counter("evobot_llm_tokens", "Model tokens by purpose and direction.",
                     ["purpose", "direction"], registry=REGISTRY)
LLM_COST = Counter("evobot_llm_cost_usd", "Model cost in US dollars by purpose.", ["purpose"],
                   registry=REGISTRY)
JOB_SECONDS = Histogram("evobot_job_seconds", "Job durations by job and outcome.",
                        ["job", "outcome"], buckets=JOB_BUCKETS, registry=REGISTRY)
RECONCILED = Counter("evobot_reconciled", "Work the reconciler queued again (its job was lost, "
                     "or failed while the database was down), by kind.", ["kind"],
                     registry=REGISTRY)
SANDBOX_RUNS = Counter("evobot_sandbox_runs", "Sandbox runs by outcome.", ["outcome"],
                       registry=REGISTRY)


# --- logs ---------------------------------------------------------------------------------

LOG_CONTEXT: ContextVar[dict[str, object] | None] = ContextVar("evobot_log_context",
                                                               default=None)
CONTEXT_KEYS = ("tenant_id", "execution_id", "evolution_id")


def bind_log_context(ids: dict[str, object]) -> None:
    """Add ids to every log record of the current task / job from now on."""
    LOG_CONTEXT.set({**(LOG_CONTEXT.get() or {}),
                     **{k: v for k, v in ids.items() if v is not None}})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound ids, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        data.update(LOG_CONTEXT.get() or {})
        data.update({k: getattr(record, k) for k in CONTEXT_KEYS if hasattr(record, k)})
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Logs on `stream` (stderr): JSON lines with LOG_FORMAT=json; otherwise rich text when
    it is a terminal, and one plain line per record when it is not (a file, a pipe, a log
    collector). Rich's rendering costs ~0.6 ms a record against ~7 µs for a plain line: a
    busy `evobot worker` spent a fifth of its main thread's time on it (RQ logs three
    records a job)."""
    out = stream or sys.stderr
    handler: logging.Handler
    if fmt == "json":
        handler = logging.StreamHandler(out)
        handler.setFormatter(JsonFormatter())
    elif out.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(file=out), rich_tracebacks=True, show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(out)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)


# --- HTTP ---------------------------------------------------------------------------------


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/v1/agents/{agent_id}/state`), never the raw
    path, so ids don't become label values; `other` when nothing matched."""
    path = getattr(scope.get("route"), "path", "")
    return path or "other"


class HttpMetrics:
    """Pure ASGI middleware (no buffering): times every HTTP request to its response start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = route_template(scope)
                HTTP_REQUESTS.labels(route, scope.get("method", ""), message["status"]).inc()
                HTTP_SECONDS.labels(route).observe(time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, timed)


# --- exposition ---------------------------------------------------------------------------


class ScrapeTimeGauges(Collector):
    """Values read when /metrics is scraped: queue depth and uptime."""

    def __init__(self, queue_lengths: Callable[[], dict[str, int]], started: float) -> None:
        self.queue_lengths = queue_lengths
        self.started = started

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("evobot_uptime_seconds", "Seconds since this process started.",
                                value=round(time.time() - self.started, 3))
        try:
            lengths = self.queue_lengths()
        except Exception:
            log.debug("queue lengths unavailable", exc_info=True)
            return
        for name, length in sorted(lengths.items()):
            yield GaugeMetricFamily(f"evobot_queue_{name}_jobs", f"Jobs waiting in {name}.",
                                    value=length)


def metrics_registry(multiproc_dir: str | None) -> CollectorRegistry:
    """Every process's metrics (multiprocess mode), or this process's."""
    if not multiproc_dir:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    return registry


def render_metrics(multiproc_dir: str | None, gauges: Collector | None = None) -> bytes:
    """The Prometheus text exposition (blocking: reads files and Redis; run in a thread)."""
    text = generate_latest(metrics_registry(multiproc_dir))
    if gauges is not None:
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(gauges)
        text += generate_latest(scrape)
    return text


def serve_worker_metrics(port: int, host: str, multiproc_dir: str | None) -> None:
    """A worker's own /metrics on `port` (a daemon thread)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=metrics_registry(multiproc_dir))
    log.info("worker metrics on %s:%d", host, port)


# --- the edges that are observed ----------------------------------------------------------


class ServiceListener(Protocol):
    async def queued(self, message: InboundMessage, accepted: Accepted) -> None: ...

    async def rated(self, feedback: InboundFeedback, result: FeedbackResult) -> None: ...

    async def aclose(self) -> None: ...


class ObservedService(EvobotService):
    """The engine's service, counting what it accepts and telling listeners (the event feed)."""

    def __init__(self, rt: Runtime, listeners: Sequence[ServiceListener] = ()) -> None:
        super().__init__(rt)
        self.listeners = list(listeners)

    async def handle_message(self, message: InboundMessage) -> Accepted | None:
        accepted = await super().handle_message(message)
        if accepted is not None:
            EXECUTIONS.labels("queued").inc()
            for listener in self.listeners:
                await _quietly(listener.queued(message, accepted))
        return accepted

    async def aclose(self) -> None:
        for listener in self.listeners:
            await listener.aclose()

    async def handle_feedback(self, feedback: InboundFeedback) -> FeedbackResult:
        result = await super().handle_feedback(feedback)
        if result.recorded and result.rating is not None:
            RATINGS.labels(str(result.rating)).inc()
        for listener in self.listeners:
            await _quietly(listener.rated(feedback, result))
        return result


async def _quietly(step: Any) -> None:
    try:
        await step
    except Exception:  # observing must never fail the request
        log.exception("a service listener failed")


class ObservedNotifier:
    """Counts rollbacks and logs evolutions as they are delivered."""

    def __init__(self, inner: Notifier) -> None:
        self.inner = inner

    async def deliver(self, event: OutboundEvent) -> Delivery:
        if isinstance(event, RolledBack):
            ROLLBACKS.labels("automatic" if event.automatic else "manual").inc()
        if isinstance(event, EvolutionAnnounced):
            log.info("evolution %s: %s v%s → v%s", event.evolution_id, event.decision.value,
                     event.from_version, event.to_version,
                     extra={"tenant_id": event.tenant_id, "evolution_id": event.evolution_id})
        return await self.inner.deliver(event)


class ObservedSandbox:
    """Counts sandbox runs by outcome: ok, error, timeout, crash."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.name = inner.name

    async def run(self, code: str, **options: Any) -> SandboxResult:
        try:
            result = await self.inner.run(code, **options)
        except BaseException:
            SANDBOX_RUNS.labels("crash").inc()
            raise
        SANDBOX_RUNS.labels(_sandbox_outcome(result)).inc()
        return result


def _sandbox_outcome(result: SandboxResult) -> str:
    if result.ok:
        return "ok"
    return "timeout" if "time" in (result.error or "").lower() else "error"


# --- jobs ---------------------------------------------------------------------------------


def job_name(job: Job) -> str:
    return (job.func_name or "").rsplit(".", 1)[-1]


def job_context(job: Job) -> dict[str, object]:
    """The ids a job names (its arguments are ids only)."""
    name = job_name(job)
    first = job.args[0] if job.args else None
    ids: dict[str, object] = {"job": name, "job_id": job.id}
    if name == "execute_job":
        ids["execution_id"] = first
    elif name in ("evolve_job", "review_job"):
        ids["tenant_id"] = first
    return ids


def record_job(job: Job, ok: bool, seconds: float) -> None:
    name = job_name(job)
    result = getattr(job, "_result", None) if ok else None
    JOB_SECONDS.labels(name, "ok" if ok else "error").observe(seconds)
    if name == "execute_job":
        EXECUTIONS.labels(str(result) if ok else "error").inc()
    elif name == "evolve_job":
        trigger = job.args[1] if len(job.args) > 1 else job.kwargs.get("trigger", "feedback")
        decision = str(result).split(":", 1)[0] if ok else "error"
        EVOLUTIONS.labels(str(trigger), decision).inc()
    elif name == "reconcile_job" and isinstance(result, dict):
        for kind, count in result.items():
            RECONCILED.labels(str(kind)).inc(count)


class ObservedWorker(SimpleWorker):
    """An RQ SimpleWorker that times each job, counts its outcome and binds its ids to the
    log records written while it runs."""

    def perform_job(self, job: Job, queue: Queue, execution: RQExecution) -> bool:
        token = LOG_CONTEXT.set({**(LOG_CONTEXT.get() or {}), **job_context(job)})
        start = time.perf_counter()
        ok = False
        try:
            ok = super().perform_job(job, queue, execution)
            return ok
        finally:
            LOG_CONTEXT.reset(token)
            record_job(job, ok, time.perf_counter() - start)


# --- model calls --------------------------------------------------------------------------

_llm_metrics_installed = False


def _purpose(kwargs: dict[str, Any]) -> str:
    metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
    return str(metadata.get("evobot_purpose") or "other")


def _record_llm(kwargs: dict[str, Any], response: Any, outcome: str) -> None:
    purpose = _purpose(kwargs)
    LLM_CALLS.labels(purpose, str(kwargs.get("model", "")), outcome).inc()
    usage = getattr(response, "usage", None)
    if usage is not None:
        LLM_TOKENS.labels(purpose, "in").inc(getattr(usage, "prompt_tokens", 0) or 0)
        LLM_TOKENS.labels(purpose, "out").inc(getattr(usage, "completion_tokens", 0) or 0)
    LLM_COST.labels(purpose).inc(float(kwargs.get("response_cost") or 0.0))


def install_llm_metrics() -> None:
    """Count every litellm call (a callback: the engine's gateway stays as it is)."""
    global _llm_metrics_installed
    if _llm_metrics_installed:
        return
    import litellm
    from litellm.integrations.custom_logger import CustomLogger

    class LLMMetrics(CustomLogger):
        async def async_log_success_event(self, kwargs: Any, response_obj: Any,
                                          start_time: Any, end_time: Any) -> None:
            _record_llm(kwargs, response_obj, "ok")

        async def async_log_failure_event(self, kwargs: Any, response_obj: Any,
                                          start_time: Any, end_time: Any) -> None:
            _record_llm(kwargs, None, "error")

    litellm.callbacks.append(LLMMetrics())
    _llm_metrics_installed = True
