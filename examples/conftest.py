"""The examples are tested against the same real PostgreSQL fixtures as the package."""

from tests.conftest import db, engine_template, pg_server

__all__ = ["db", "engine_template", "pg_server"]
