"""The per-queue settings ``pgque.set_queue_config`` accepts (spec 6.4), as Python values.

Shared by the declarative :class:`~sa_pgque.declarative.Queue` and the Alembic
operations: one table of parameter names, their kinds and their column
defaults, and the conversion of a Python value to the text the engine parses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Literal

Kind = Literal["count", "interval", "flag"]

ConfigValue = int | bool | timedelta | str | None
"""A setting as an operation takes it: a Python value, engine text, or ``None`` (the column default)."""

PARAMETERS: Mapping[str, Kind] = {
    "ticker_max_count": "count",
    "ticker_max_lag": "interval",
    "ticker_idle_period": "interval",
    "rotation_period": "interval",
    "ticker_paused": "flag",
    "external_ticker": "flag",
    "max_retries": "count",
}
"""Every parameter ``set_queue_config`` accepts, in the order the engine's table lists them."""

DEFAULTS: Mapping[str, int | bool | timedelta | None] = {
    "ticker_max_count": 500,
    "ticker_max_lag": timedelta(seconds=3),
    "ticker_idle_period": timedelta(minutes=1),
    "rotation_period": timedelta(hours=2),
    "ticker_paused": False,
    "external_ticker": False,
    "max_retries": None,
}
"""What each column holds after ``create_queue`` or a reset (``value = None``); NULL retries mean 5."""

COLUMNS: Mapping[str, str] = {name: f"queue_{name}" for name in PARAMETERS}
"""The ``pgque.queue`` column behind each parameter."""


def check_parameter(name: str) -> str:
    """``name`` if the engine accepts it, else a ``ValueError`` listing the ones it does."""
    if name not in PARAMETERS:
        raise ValueError(f"unknown queue parameter {name!r}; expected one of: {', '.join(PARAMETERS)}")
    return name


def normalize(name: str, value: object) -> int | bool | timedelta | None:
    """A declared value in the form the database returns it (``int``, ``bool``, ``timedelta``, ``None``).

    Intervals may be given as a ``timedelta`` or a number of seconds. Values the
    engine would refuse (``ticker_max_count <= 0``, a non-positive interval,
    ``max_retries < 0``) are refused here, at declaration time.
    """
    kind = PARAMETERS[check_parameter(name)]
    if value is None:
        return None
    if kind == "flag":
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {value!r}")
        return value
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < (0 if name == "max_retries" else 1):
            raise ValueError(f"{name} must be {'>= 0' if name == 'max_retries' else '> 0'}, got {value}")
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = timedelta(seconds=value)
    if not isinstance(value, timedelta):
        raise TypeError(f"{name} must be a timedelta or a number of seconds, got {value!r}")
    if value <= timedelta(0):
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def interval_text(value: timedelta) -> str:
    """A PostgreSQL interval literal equal to ``value``: ``0.1 seconds``, ``1 days 3600 seconds``."""
    seconds = f"{value.seconds}.{value.microseconds:06d}".rstrip("0").rstrip(".")
    return f"{value.days} days {seconds} seconds" if value.days else f"{seconds} seconds"


def value_text(value: ConfigValue) -> str | None:
    """The ``x_param_value`` text for a Python value (``None`` stays NULL: reset to the default)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return interval_text(value)
    return str(value)
