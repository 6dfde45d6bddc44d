"""Queue metrics for OpenTelemetry and Prometheus.

Both read the engine's ``pgque.otel_metrics()`` (revision 0004): gauges per
queue (depth, age of the oldest pending event, ticker lag, dead letters, ...),
per subscription (lag, pending events, open batch age) and per health check
(0 ok, 1 warn, 2 fail). The SQL is all in the engine; this module only names,
caches and publishes the numbers. Monitoring needs the ``pgque_reader`` role.

* :func:`register_otel` creates OpenTelemetry observable gauges on a
  ``Meter``; the SDK's reader collects them. Needs the ``otel`` extra
  (``pip install 'sa-pgque[otel]'``), imported only when called.
* :func:`prometheus_text` renders the Prometheus text exposition format and
  :func:`serve` publishes it at ``/metrics`` over HTTP from a thread, with the
  standard library only (what ``sa-pgque metrics --serve :9187`` runs).

One database query serves every gauge of a collection: points are cached for
``min_interval`` seconds (default 1), and concurrent scrapes share one query.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from sa_pgque import api
from sa_pgque.results import MetricPoint

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter, ObservableGauge

log = logging.getLogger("sa_pgque.metrics")

DEFAULT_MIN_INTERVAL = 1.0
"""Seconds during which collected points are reused instead of queried again."""

DEFAULT_PORT = 9187
"""Port of :func:`serve` when the address names none."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Content type of the Prometheus text exposition format."""


@dataclass(frozen=True)
class Metric:
    """What a metric of ``pgque.otel_metrics()`` is: its unit and meaning."""

    name: str
    unit: str
    description: str


METRICS: tuple[Metric, ...] = (
    Metric("pgque.queue.depth", "{event}", "Committed events the slowest consumer has not finished yet"),
    Metric("pgque.queue.oldest_pending_age", "s", "Age of the oldest event counted in pgque.queue.depth"),
    Metric("pgque.queue.unticked_events", "{event}", "Committed events that no tick covers yet"),
    Metric("pgque.queue.events_per_second", "{event}/s", "Recent publishing rate (from the last ticks)"),
    Metric("pgque.queue.ticker_lag", "s", "Age of the queue's latest tick"),
    Metric("pgque.queue.consumers", "{consumer}", "Subscriptions (cooperative members not counted)"),
    Metric("pgque.queue.retry_pending", "{event}", "Events parked for a retry"),
    Metric("pgque.queue.dead_letters", "{event}", "Events in the dead-letter queue"),
    Metric("pgque.queue.delayed_pending", "{event}", "Events parked by send_at for later delivery"),
    Metric("pgque.queue.delayed_due", "{event}", "Parked delayed events whose delivery time has passed"),
    Metric("pgque.queue.rotation_age", "s", "Time since the queue's last event-table rotation"),
    Metric("pgque.queue.paused", "1", "1 while the queue's ticker is paused"),
    Metric("pgque.queue.health", "1", "Health check status: 0 ok, 1 warn, 2 fail"),
    Metric("pgque.consumer.lag", "s", "Age of the consumer's cursor tick"),
    Metric("pgque.consumer.last_seen", "s", "Time since the consumer's last activity"),
    Metric("pgque.consumer.pending_events", "{event}", "Committed events after the consumer's cursor"),
    Metric("pgque.consumer.batch_age", "s", "How long the consumer's open batch has been open"),
)
"""Every metric ``pgque.otel_metrics()`` reports, by OpenTelemetry name."""

_BY_NAME = {metric.name: metric for metric in METRICS}

Source = Engine | Connection
"""Where metrics are read: an engine (a connection per collection) or a connection."""


def collect(source: Source) -> list[MetricPoint]:
    """Every data point of ``pgque.otel_metrics()``, read in a transaction of its own (engine) or the current one."""
    if isinstance(source, Connection):
        return api.metric_points(source)
    with source.connect() as connection:
        points = api.metric_points(connection)
        connection.rollback()
    return points


class _Collector:
    """Points of one source, queried at most once per ``min_interval`` and by one thread at a time."""

    def __init__(self, source: Source, min_interval: float) -> None:
        self.source = source
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._points: list[MetricPoint] = []
        self._taken = -math.inf

    def points(self) -> list[MetricPoint]:
        with self._lock:
            if time.monotonic() - self._taken >= self.min_interval:
                self._points = collect(self.source)
                self._taken = time.monotonic()
            return self._points


# -- Prometheus -----------------------------------------------------------------


def prometheus_name(name: str, unit: str) -> str:
    """``pgque.queue.ticker_lag`` + ``s`` -> ``pgque_queue_ticker_lag_seconds``."""
    base = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return base + "_seconds" if unit == "s" else base


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _sample_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def prometheus_text(source: Source | Iterable[MetricPoint]) -> str:
    """The metrics in the Prometheus text exposition format (version 0.0.4).

    ``source`` is an engine or connection to read them from, or points already
    collected. Every metric is a gauge; durations get a ``_seconds`` suffix.
    """
    points = collect(source) if isinstance(source, (Engine, Connection)) else list(source)
    families: dict[str, list[MetricPoint]] = {}
    for point in points:
        families.setdefault(point.metric_name, []).append(point)
    lines: list[str] = []
    for name in sorted(families):
        family = families[name]
        known = _BY_NAME.get(name)
        exposed = prometheus_name(name, known.unit if known else family[0].metric_unit)
        lines.append(f"# HELP {exposed} {_help_text(known.description if known else name)}")
        lines.append(f"# TYPE {exposed} gauge")
        for point in sorted(family, key=lambda p: sorted(p.attributes.items())):
            labels = ",".join(f'{key}="{_label_value(value)}"' for key, value in sorted(point.attributes.items()))
            lines.append(f"{exposed}{{{labels}}} {_sample_value(point.metric_value)}")
    return "\n".join(lines) + "\n" if lines else ""


def parse_address(address: str | int | tuple[str, int]) -> tuple[str, int]:
    """``":9187"``, ``"127.0.0.1:9187"``, ``"[::1]:9187"``, ``"localhost"``, ``9187`` or ``(host, port)``.

    An empty host listens on every interface.
    """
    if isinstance(address, tuple):
        return address
    if isinstance(address, int):
        return "", address
    host, port = address, ""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, port = address.split(":")
    elif address.isdigit():
        host, port = "", address
    if port and not port.isdigit():
        raise ValueError(f"sa_pgque: bad metrics address {address!r}; expected host:port")
    return host, int(port) if port else DEFAULT_PORT


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def _handler(render: Callable[[], str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._reply(200, "text/html; charset=utf-8", '<a href="/metrics">sa_pgque metrics</a>\n')
            elif path != "/metrics":
                self._reply(404, "text/plain; charset=utf-8", "not found\n")
            else:
                try:
                    body = render()
                except Exception as error:
                    log.warning("metrics collection failed: %s", error)
                    self._reply(503, "text/plain; charset=utf-8", f"collection failed: {error}\n")
                else:
                    self._reply(200, CONTENT_TYPE, body)

        def _reply(self, code: int, content_type: str, body: str) -> None:
            data = body.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s - " + format, self.address_string(), *args)

    return Handler


class MetricsServer:
    """The Prometheus endpoint started by :func:`serve`: ``GET /metrics``."""

    def __init__(self, source: Source, address: str | int | tuple[str, int], min_interval: float) -> None:
        host, port = parse_address(address)
        collector = _Collector(source, min_interval)
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, port), _handler(lambda: prometheus_text(collector.points())))
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) listened on; the port is the real one when 0 was asked for."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """The metrics URL, e.g. ``http://127.0.0.1:9187/metrics``."""
        host, port = self.address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://[{host}]:{port}/metrics" if ":" in host else f"http://{host}:{port}/metrics"

    def start(self) -> MetricsServer:
        """Serve from a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="sa_pgque-metrics", daemon=True)
            self._thread.start()
            log.info("serving metrics at %s", self.url)
        return self

    def wait(self, timeout: float | None = None) -> None:
        """Block until the server stops (e.g. from a signal handler calling :meth:`stop`)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        """Stop serving and close the socket (safe to call twice)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    source: Source,
    address: str | int | tuple[str, int] = f":{DEFAULT_PORT}",
    *,
    min_interval: float = DEFAULT_MIN_INTERVAL,
) -> MetricsServer:
    """Publish the metrics for Prometheus at ``http://<address>/metrics`` from a daemon thread.

    Returns the running server; ``stop()`` it (or use it as a context manager).
    Every scrape reads the engine through ``source`` (results reused for
    ``min_interval`` seconds). ``":9187"`` listens on every interface;
    ``"127.0.0.1:0"`` on loopback with a free port (see ``server.address``).
    """
    return MetricsServer(source, address, min_interval).start()


# -- OpenTelemetry --------------------------------------------------------------


def register_otel(
    source: Source, meter: Meter | None = None, *, min_interval: float = DEFAULT_MIN_INTERVAL
) -> Sequence[ObservableGauge]:
    """Create an observable gauge on ``meter`` for every metric of :data:`METRICS`.

    ``meter`` defaults to ``opentelemetry.metrics.get_meter("sa_pgque")``. The
    gauges are fed by one ``pgque.otel_metrics()`` query per collection (at
    most one per ``min_interval`` seconds); a failing query is logged and
    yields no observations. Needs the ``otel`` extra.
    """
    try:
        from opentelemetry import metrics as otel
        from opentelemetry.metrics import CallbackOptions, Observation
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise ImportError("sa_pgque.metrics.register_otel needs OpenTelemetry: pip install 'sa-pgque[otel]'") from error

    collector = _Collector(source, min_interval)
    meter = meter if meter is not None else otel.get_meter("sa_pgque")

    def observer(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            try:
                points = collector.points()
            except Exception as error:
                log.warning("metrics collection failed: %s", error)
                return []
            return [Observation(p.metric_value, dict(p.attributes)) for p in points if p.metric_name == name]

        return observe

    return [
        meter.create_observable_gauge(
            metric.name, callbacks=[observer(metric.name)], unit=metric.unit, description=metric.description
        )
        for metric in METRICS
    ]
