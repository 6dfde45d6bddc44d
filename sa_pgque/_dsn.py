"""Connection strings: one place that reads them, whatever form they come in.

People hand us libpq DSNs (``postgresql://...`` URIs or ``host=... dbname=...``
key/value strings, as psql takes them) and SQLAlchemy URLs
(``postgresql+psycopg://...``). psycopg wants the former, ``create_engine``
the latter; :func:`to_conninfo` and :func:`to_url` turn any of them into
either. :func:`resolve` picks the string to use from the command line or
the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from sqlalchemy import URL

ENVIRONMENT_VARIABLES = ("SA_PGQUE_DSN", "DATABASE_URL")
"""Where a DSN is looked up when none is given, in this order."""

DRIVER = "postgresql+psycopg"
"""The SQLAlchemy dialect and driver every URL made here uses."""

_SCHEMES = ("postgresql", "postgres")


class DsnError(ValueError):
    """A connection string is missing or malformed."""


def resolve(dsn: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The DSN to use: ``dsn`` when given, else ``$SA_PGQUE_DSN``, else ``$DATABASE_URL``."""
    if dsn:
        return dsn
    environ = os.environ if environ is None else environ
    for name in ENVIRONMENT_VARIABLES:
        if environ.get(name):
            return environ[name]
    raise DsnError("no database given: pass --dsn or set SA_PGQUE_DSN (or DATABASE_URL)")


def _libpq_form(dsn: str) -> str:
    """``dsn`` with a SQLAlchemy ``+driver`` suffix removed from its scheme."""
    scheme, sep, rest = dsn.strip().partition("://")
    if not sep:
        return dsn.strip()
    dialect = scheme.split("+", 1)[0].lower()
    if dialect not in _SCHEMES:
        raise DsnError(f"not a PostgreSQL URL (scheme {scheme!r}): use postgresql:// or postgresql+psycopg://")
    return f"{dialect}://{rest}"


def parameters(dsn: str) -> dict[str, str]:
    """The libpq connection parameters of any accepted form of DSN."""
    try:
        return {key: str(value) for key, value in conninfo_to_dict(_libpq_form(dsn)).items()}
    except psycopg.ProgrammingError as error:
        raise DsnError(f"invalid connection string: {error}") from None


def to_conninfo(dsn: str, **overrides: str) -> str:
    """A libpq key/value conninfo for ``dsn``, with ``overrides`` (say ``dbname=...``) applied."""
    return make_conninfo(**{**parameters(dsn), **overrides})


def _is_tcp_host(host: str) -> bool:
    """A single network host: not a socket directory, not a list of hosts."""
    return bool(host) and "," not in host and not host.startswith(("/", "@"))


def to_url(dsn: str, **overrides: str) -> URL:
    """A ``postgresql+psycopg`` SQLAlchemy URL for ``dsn``.

    A single network host goes in the URL's host and port; socket directories
    and host lists go in the query string (``?host=/run/postgresql``), the way
    SQLAlchemy passes them on to libpq. Every other parameter is kept in the
    query string.
    """
    params = {**parameters(dsn), **overrides}
    host = params.pop("host", "")
    port = params.pop("port", "")
    url_host: str | None = None
    url_port: int | None = None
    if _is_tcp_host(host) and (not port or port.isdigit()):
        url_host, url_port = host, int(port) if port else None
    else:
        if host:
            params["host"] = host
        if port:
            params["port"] = port
    return URL.create(
        DRIVER,
        username=params.pop("user", None) or None,
        password=params.pop("password", None) or None,
        host=url_host,
        port=url_port,
        database=params.pop("dbname", None) or None,
        query=params,
    )


def describe(dsn: str) -> str:
    """Where ``dsn`` points, for messages: ``user@host:port/dbname``, never the password."""
    params = parameters(dsn)
    user = params.get("user", "")
    where = params.get("host", "") or "local socket"
    if params.get("port"):
        where += f":{params['port']}"
    return f"{user + '@' if user else ''}{where}/{params.get('dbname', '')}"
