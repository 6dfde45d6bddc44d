"""Declaring queues next to the models."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import MetaData

from sa_pgque import Queue
from sa_pgque.declarative import INFO_KEY, declared_queues


def test_a_declaration_is_kept_in_the_metadata_with_only_the_settings_given() -> None:
    metadata = MetaData()
    orders = Queue("orders", metadata, max_retries=10, ticker_max_lag=0.1, consumers=["billing", "billing", "audit"])
    assert metadata.info[INFO_KEY] == {"orders": orders}
    assert dict(orders.config) == {"ticker_max_lag": timedelta(milliseconds=100), "max_retries": 10}
    assert orders.consumers == ("billing", "audit")
    assert declared_queues(metadata) == [orders]
    assert repr(orders) == (
        "Queue('orders', ticker_max_lag=datetime.timedelta(microseconds=100000), max_retries=10,"
        " consumers=['billing', 'audit'])"
    )


def test_none_means_the_engine_default() -> None:
    queue = Queue("q", MetaData(), max_retries=None, ticker_idle_period=None)
    assert dict(queue.config) == {"ticker_idle_period": None, "max_retries": None}


def test_a_name_is_declared_once_per_metadata() -> None:
    metadata = MetaData()
    Queue("q", metadata)
    with pytest.raises(ValueError, match="already declared"):
        Queue("q", metadata)
    other = MetaData()
    Queue("q", other)
    with pytest.raises(ValueError, match="more than one MetaData"):
        declared_queues([metadata, other])


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"max_retries": -1}, ValueError, "max_retries must be >= 0"),
        ({"ticker_max_count": 0}, ValueError, "ticker_max_count must be > 0"),
        ({"ticker_max_lag": timedelta(0)}, ValueError, "ticker_max_lag must be > 0"),
        ({"ticker_max_lag": "3 seconds"}, TypeError, "ticker_max_lag must be a timedelta"),
        ({"ticker_paused": 1}, TypeError, "ticker_paused must be a bool"),
        ({"max_retries": True}, TypeError, "max_retries must be an int"),
    ],
)
def test_values_the_engine_would_refuse_are_refused_at_declaration(
    settings: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Queue("q", MetaData(), **settings)  # type: ignore[arg-type]


def test_consumers_must_be_a_list_of_names() -> None:
    with pytest.raises(TypeError, match="not a single str"):
        Queue("q", MetaData(), consumers="billing")
