"""sa_pgque.metrics: the Prometheus text format, the HTTP endpoint on loopback, the OpenTelemetry gauges."""

from __future__ import annotations

import re
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, InMemoryMetricReader, NumberDataPoint
from sqlalchemy import Engine

import sa_pgque as pgque
from sa_pgque import metrics
from sa_pgque.results import MetricPoint
from tests._pg import Database


@pytest.fixture
def engine(db: Database) -> Engine:
    engine = db.engine()
    with engine.begin() as connection:
        pgque.create_queue(connection, 'or"ders')
        pgque.subscribe(connection, 'or"ders', "billing")
    with engine.begin() as connection:  # not in the transaction that wrote the first tick
        for n in range(3):
            pgque.send(connection, 'or"ders', {"n": n})
    return engine


def test_prometheus_text_of_points() -> None:
    points = [
        MetricPoint("pgque.queue.depth", "{event}", 3.0, {"queue": 'a"b\\c\nd'}),
        MetricPoint("pgque.queue.ticker_lag", "s", 0.25, {"queue": "q"}),
        MetricPoint("pgque.queue.depth", "{event}", 0.0, {"queue": "a"}),
        MetricPoint("pgque.consumer.lag", "s", 1.5, {"queue": "q", "consumer": "c"}),
        MetricPoint("pgque.future.thing", "{widget}", 7.0, {"queue": "q"}),
    ]
    assert metrics.prometheus_text(points) == (
        "# HELP pgque_consumer_lag_seconds Age of the consumer's cursor tick\n"
        "# TYPE pgque_consumer_lag_seconds gauge\n"
        'pgque_consumer_lag_seconds{consumer="c",queue="q"} 1.5\n'
        "# HELP pgque_future_thing pgque.future.thing\n"
        "# TYPE pgque_future_thing gauge\n"
        'pgque_future_thing{queue="q"} 7\n'
        "# HELP pgque_queue_depth Committed events the slowest consumer has not finished yet\n"
        "# TYPE pgque_queue_depth gauge\n"
        'pgque_queue_depth{queue="a"} 0\n'
        'pgque_queue_depth{queue="a\\"b\\\\c\\nd"} 3\n'
        "# HELP pgque_queue_ticker_lag_seconds Age of the queue's latest tick\n"
        "# TYPE pgque_queue_ticker_lag_seconds gauge\n"
        'pgque_queue_ticker_lag_seconds{queue="q"} 0.25\n'
    )
    assert metrics.prometheus_text([]) == ""


def test_prometheus_text_from_the_database(engine: Engine) -> None:
    text = metrics.prometheus_text(engine)
    assert 'pgque_queue_depth{queue="or\\"ders"} 3\n' in text
    assert 'pgque_consumer_pending_events{consumer="billing",queue="or\\"ders"} 3\n' in text
    assert 'pgque_queue_health{check="consumers",queue="or\\"ders"} 0\n' in text
    assert re.search(r'^pgque_queue_ticker_lag_seconds\{queue="or\\"ders"\} [0-9.e-]+$', text, re.M)
    with engine.connect() as connection:
        assert 'pgque_queue_depth{queue="or\\"ders"} 3\n' in metrics.prometheus_text(connection)


def test_every_metric_of_the_engine_is_described(engine: Engine) -> None:
    for _ in range(2):  # two ticks make a rate; then a batch is open
        with engine.begin() as connection:
            pgque.tick(connection, 'or"ders')
    with engine.connect() as connection:
        assert pgque.receive(connection, 'or"ders', "billing")
        points = metrics.collect(connection)
    described = {m.name: m.unit for m in metrics.METRICS}
    assert {p.metric_name for p in points} == set(described)
    assert all(described[p.metric_name] == p.metric_unit for p in points)


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        (":9187", ("", 9187)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost", ("localhost", 9187)),
        ("9100", ("", 9100)),
        (9100, ("", 9100)),
        (("127.0.0.1", 1), ("127.0.0.1", 1)),
    ],
)
def test_parse_address(address: object, parsed: tuple[str, int]) -> None:
    assert metrics.parse_address(address) == parsed  # type: ignore[arg-type]


def test_parse_address_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="bad metrics address"):
        metrics.parse_address("host:port")


def test_serve_over_http_on_loopback(engine: Engine) -> None:
    with metrics.serve(engine, "127.0.0.1:0", min_interval=0) as server:
        host, port = server.address
        assert host == "127.0.0.1" and port > 0
        assert server.url == f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == metrics.CONTENT_TYPE
            body = response.read().decode()
        assert 'pgque_queue_depth{queue="or\\"ders"} 3\n' in body
        with engine.begin() as connection:
            pgque.send(connection, 'or"ders', "one more")
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert 'pgque_queue_depth{queue="or\\"ders"} 4\n' in response.read().decode()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
        assert missing.value.code == 404
        missing.value.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert "/metrics" in response.read().decode()
    server.stop()  # twice is fine


def test_serve_reports_collection_failures(db: Database, engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("drop schema pgque cascade")
    with metrics.serve(engine, "127.0.0.1:0") as server:
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(server.url, timeout=10)
        assert failed.value.code == 503
        failed.value.close()


def test_scrapes_within_min_interval_share_one_query(engine: Engine) -> None:
    with metrics.serve(engine, ("127.0.0.1", 0), min_interval=60) as server:
        with urllib.request.urlopen(server.url, timeout=10) as response:
            first = response.read()
        with engine.begin() as connection:
            pgque.send(connection, 'or"ders', "not seen yet")
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert response.read() == first


def gauge_points(reader: InMemoryMetricReader) -> dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[Any, Any]]:
    """(name, sorted attributes) -> (unit, value) of every gauge data point the reader collects now."""
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[Any, Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                assert isinstance(metric.data, Gauge)
                for point in metric.data.data_points:
                    assert isinstance(point, NumberDataPoint)
                    found[metric.name, tuple(sorted((point.attributes or {}).items()))] = (metric.unit, point.value)
    return found


def test_otel_gauges_collected_by_the_sdk(engine: Engine) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        gauges = metrics.register_otel(engine, provider.get_meter("test"), min_interval=0)
        assert len(gauges) == len(metrics.METRICS)
        found = gauge_points(reader)
        queue = (("queue", 'or"ders'),)
        assert found[("pgque.queue.depth", queue)] == ("{event}", 3)
        assert found[("pgque.queue.consumers", queue)] == ("{consumer}", 1)
        assert found[("pgque.consumer.pending_events", (("consumer", "billing"), ("queue", 'or"ders')))] == (
            "{event}",
            3,
        )
        assert found[("pgque.queue.health", (("check", "dead_letters"), ("queue", 'or"ders')))] == ("1", 0)
        assert found[("pgque.queue.ticker_lag", queue)][0] == "s"
        with engine.begin() as connection:
            pgque.send(connection, 'or"ders', "more")
        assert gauge_points(reader)[("pgque.queue.depth", queue)] == ("{event}", 4)
    finally:
        provider.shutdown()


def test_otel_collection_failure_yields_nothing(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        metrics.register_otel(engine, provider.get_meter("test"))
        with engine.begin() as connection:
            connection.exec_driver_sql("drop schema pgque cascade")
        data = reader.get_metrics_data()
        points = [] if data is None else [m for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics]
        assert points == []
        assert "metrics collection failed" in caplog.text
    finally:
        provider.shutdown()


def test_register_otel_without_the_extra(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"pip install 'sa-pgque\[otel\]'"):
        metrics.register_otel(engine)
