"""The sample host project (tests/alembic/host), copied into a temporary directory per test."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from tests._pg import Database


class Host:
    """A copy of the host project whose ``alembic.ini`` points at a test database."""

    def __init__(self, project: Path, database: Database) -> None:
        self.project = project
        self.database = database

    @property
    def versions(self) -> Path:
        return self.project / "versions"

    def config(self, **attributes: Any) -> Config:
        """The project's Alembic config, with ``attributes`` for env.py (e.g. ``pgque_drop_undeclared``)."""
        config = Config(str(self.project / "alembic.ini"))
        url = self.database.url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        config.attributes.update(attributes)
        return config

    def declare(self, source: str) -> None:
        """Append declarations to the project's models.py."""
        models = self.project / "models.py"
        models.write_text(models.read_text(encoding="utf-8") + "\n" + source + "\n", encoding="utf-8")

    def replace_in_models(self, old: str, new: str) -> None:
        models = self.project / "models.py"
        text = models.read_text(encoding="utf-8")
        assert old in text
        models.write_text(text.replace(old, new), encoding="utf-8")

    def offline(self, revision: str = "heads", **attributes: Any) -> str:
        """What ``alembic upgrade --sql <revision>`` prints."""
        buffer = io.StringIO()
        config = self.config(**attributes)
        config.output_buffer = buffer
        command.upgrade(config, revision, sql=True)
        return buffer.getvalue()

    def revision_file(self, revision: str) -> str:
        [path] = self.versions.glob(f"{revision}_*.py")
        return path.read_text(encoding="utf-8")
