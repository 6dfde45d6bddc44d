"""The short/long switch of the reliability suite, and its hypothesis profiles.

Plain ``pytest`` runs the short version (what CI runs); ``SA_PGQUE_SOAK=1``
runs the long soak: the same tests and assertions with larger counts and
durations, and many more, freshly drawn, hypothesis examples.
"""

from __future__ import annotations

import os
from typing import TypeVar

from hypothesis import HealthCheck, settings

SOAK = os.environ.get("SA_PGQUE_SOAK", "").strip() not in ("", "0")
"""Whether the long soak was asked for (``SA_PGQUE_SOAK=1``)."""

T = TypeVar("T")


def scale(short: T, soak: T) -> T:
    """``short`` in the default (CI) run, ``soak`` when ``SA_PGQUE_SOAK=1``."""
    return soak if SOAK else short


_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

FUZZ = settings(
    max_examples=scale(40, 600),
    deadline=None,
    derandomize=not SOAK,  # CI draws the same examples every run: no flakiness from new draws
    database=None,
    suppress_health_check=_QUIET,
    print_blob=True,
)
"""Settings of every hypothesis test of the suite (``@FUZZ``)."""


def fuzz(examples: int, soak_examples: int) -> settings:
    """``FUZZ`` with another number of examples."""
    return settings(FUZZ, max_examples=scale(examples, soak_examples))
