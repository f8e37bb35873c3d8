"""Prometheus metrics of a service (prometheus-client), one registry per application."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from servicekit.http import Handler


class ServiceMetrics:
    """Requests, events published, outbox backlog; workers add their own on `registry`."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"service": service}
        self._requests = Counter(
            "http_requests_handled",
            "HTTP requests answered",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "http_request_seconds", "time to answer", ["service", "route"], registry=self.registry
        )
        self.events_published = Counter(
            "events_published",
            "events published to Kafka by the outbox relay",
            ["service"],
            registry=self.registry,
        ).labels(**labels)
        self.events_dead_lettered = Counter(
            "events_dead_lettered",
            "events the outbox relay moved to kafka_outbox_dead because Kafka can never take them",
            ["service"],
            registry=self.registry,
        ).labels(**labels)
        self.outbox_refused = Counter(
            "outbox_refused",
            "outbox batches Kafka refused to this service's principal (a missing ACL)",
            ["service"],
            registry=self.registry,
        ).labels(**labels)
        self.outbox_backlog = Gauge(
            "outbox_backlog", "events committed but not yet in Kafka", ["service"], registry=self.registry
        ).labels(**labels)
        self._service = service
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # the labelled series, looked up once (labels() takes a lock each time)
            children = self._children[key] = (
                self._requests.labels(self._service, method, route, str(status)),
                self._latency.labels(self._service, route),
            )
        requests, latency = children
        requests.inc()
        latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = web.AppKey("servicekit.metrics", ServiceMetrics)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        request.app[METRICS].observe(request.method, route, status, time.perf_counter() - started)


def metrics_text(metrics: ServiceMetrics) -> web.Response:
    return metrics_text_of(metrics.registry)


def metrics_text_of(registry: CollectorRegistry) -> web.Response:
    """The Prometheus text exposition of a registry, as an answer."""
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
