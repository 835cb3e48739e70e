"""Prometheus metrics. Labels never carry a secret or an unbounded value such as a request id."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
