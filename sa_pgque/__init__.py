"""sa_pgque: a PgQue-compatible PostgreSQL event queue for SQLAlchemy applications."""

from __future__ import annotations

from sa_pgque.migrate import install, uninstall

__all__ = ["install", "uninstall"]
__version__ = "0.1.0"
