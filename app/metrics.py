"""Prometheus metrics. Labels never carry a secret or an unbounded value such as a request id.

With several workers (app/workers.py) every process writes its values to files in
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, chosen when the variable is set at
import), and whichever worker answers /metrics sums them all: one scrape of the one port is the
whole server. Gauges count live processes only."""

from __future__ import annotations

import functools
import os
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

M = TypeVar("M", bound=MetricWrapperBase)

HTTP_REQUESTS = Counter(
    "modelgate_http_requests_total", "HTTP requests by route and status", ["route", "status"]
)
HTTP_LATENCY = Histogram(
    "modelgate_http_request_duration_seconds",
    "HTTP request duration",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
GRAPHQL_OPERATIONS = Counter(
    "modelgate_graphql_operations_total",
    "GraphQL operations by type and outcome",
    ["operation_type", "outcome"],
)

# The gateway. `model` labels carry model names (a bounded set per deployment), never request data.
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CALLS = Counter(
    "modelgate_calls_total",
    "Gateway calls by operation, model, provider and outcome",
    ["operation", "model", "provider", "outcome"],
)
CALL_LATENCY = Histogram(
    "modelgate_call_duration_seconds",
    "Gateway call duration",
    ["operation", "provider"],
    buckets=_CALL_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "modelgate_time_to_first_token_seconds",
    "Time to the first streamed token",
    ["provider"],
    buckets=_CALL_BUCKETS,
)
TOKENS = Counter("modelgate_tokens_total", "Tokens by direction and provider", ["direction", "provider"])
CREDITS = Counter("modelgate_credits_total", "Credits metered", ["provider"])
PROVIDER_CALLS = Counter(
    "modelgate_provider_calls_total", "Provider calls by outcome", ["provider", "outcome"]
)
FALLBACKS = Counter("modelgate_fallbacks_total", "Calls sent on to a fallback model", ["provider"])
OPEN_STREAMS = Gauge(
    "modelgate_open_streams", "chatStream subscriptions now open", multiprocess_mode="livesum"
)
# Client connections (app/serving.py).
OPEN_CLIENT_CONNECTIONS = Gauge(
    "modelgate_open_client_connections", "Client connections now open", multiprocess_mode="livesum"
)
CLIENT_CONNECTIONS_CLOSED = Counter(
    "modelgate_client_connections_closed_total",
    "Client connections closed or refused by the server's limits",
    ["reason"],  # header_timeout, body_timeout, over_capacity
)


@functools.cache
def labelled(metric: M, *values: str) -> M:
    """The metric's child for these label values (in the metric's label order), looked up once:
    `labels()` builds a tuple and takes a lock on every call."""
    return metric.labels(*values)


def exposition() -> bytes:
    """The /metrics body: this process's metrics, or every worker's summed in multiprocess mode."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return generate_latest()
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
