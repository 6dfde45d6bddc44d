"""Finding the engine's revisions from a host's ``alembic.ini``: ``version_locations`` and ``path_separator``.

Alembic >= 1.16 splits ``version_locations`` on the ``path_separator``
setting. ``os`` (what ``alembic init`` writes) is ``os.pathsep``, ``:`` on
POSIX, which cuts the package resource ``sa_pgque:migrations/versions`` in
two; ``space`` (or ``newline``) keeps it whole. Without the setting, Alembic
warns and falls back to splitting on spaces and commas.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import Revision

import sa_pgque
from sa_pgque.alembic import engine_revisions

REVISIONS = engine_revisions()
HOST = Path(__file__).parent / "host"


def config(version_locations: str, separator: str | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HOST))
    config.set_main_option("version_locations", version_locations)
    if separator is not None:
        config.set_main_option("path_separator", separator)
    return config


def revisions(config: Config) -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


@pytest.mark.parametrize(
    ("separator", "locations"),
    [
        ("space", f"{HOST}/versions sa_pgque:migrations/versions"),
        ("newline", f"\n{HOST}/versions\nsa_pgque:migrations/versions"),
        (";", f"{HOST}/versions;sa_pgque:migrations/versions"),
    ],
)
def test_separators_that_keep_the_package_resource_whole(separator: str, locations: str) -> None:
    cfg = config(locations, separator)
    assert cfg.get_version_locations_list() == [f"{HOST}/versions", "sa_pgque:migrations/versions"]
    assert revisions(cfg) == {"host_0001", *REVISIONS}


@pytest.mark.skipif(os.pathsep != ":", reason="os.pathsep is ':' on POSIX only")
def test_path_separator_os_breaks_the_package_resource_on_posix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = config(f"{HOST}/versions sa_pgque:migrations/versions", "os")
    assert cfg.get_version_locations_list() == [f"{HOST}/versions sa_pgque", "migrations/versions"]
    assert revisions(cfg) == set()  # neither "directory" exists: Alembic silently finds no revision at all


def test_without_path_separator_alembic_warns_and_splits_on_spaces() -> None:
    cfg = config(f"{HOST}/versions sa_pgque:migrations/versions", None)
    with pytest.warns(DeprecationWarning, match="No path_separator found"):
        assert cfg.get_version_locations_list() == [f"{HOST}/versions", "sa_pgque:migrations/versions"]


def test_the_resource_is_the_installed_package_directory() -> None:
    """Editable install or checkout: ``sa_pgque/migrations`` resolves to the real script directory."""
    versions = Path(str(files("sa_pgque") / "migrations" / "versions")).resolve()
    assert versions.is_dir()
    assert versions.parent == Path(sa_pgque.__file__).parent.joinpath("migrations").resolve()
    assert sorted(p.name for p in versions.glob("pgque_*.py"))[0].startswith(REVISIONS[0])
    for shipped in ("schema.sql", "catalog.json", "script.py.mako", "env.py"):
        assert (versions.parent / shipped).is_file(), shipped


def ids(found: Sequence[object]) -> list[str]:
    return [r.revision for r in found if isinstance(r, Revision)]


def test_depends_on_a_branch_label_means_its_first_revision() -> None:
    """``depends_on = "pgque"`` names the revision carrying the label; use ``pgque@head`` or a revision id."""
    script = ScriptDirectory.from_config(config(f"{HOST}/versions sa_pgque:migrations/versions", "space"))
    assert ids(script.revision_map.get_revisions("pgque")) == [REVISIONS[0]]
    assert ids(script.revision_map.get_revisions("pgque@head")) == [REVISIONS[-1]]
    assert sorted(script.get_heads()) == sorted(["host_0001", REVISIONS[-1]])
