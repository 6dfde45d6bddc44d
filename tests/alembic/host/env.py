"""Alembic environment of the sample host application.

What a host needs for sa_pgque: ``import sa_pgque.alembic`` (registers the
operations, renderers and the queue comparator), and the two filters that
keep autogenerate away from schema ``pgque`` and the engine's version table.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from alembic import context
from sqlalchemy import engine_from_config, pool

import sa_pgque.alembic

config = context.config


def load_models() -> ModuleType:
    """``models.py`` next to this file, loaded afresh on every run (the tests edit it between commands)."""
    spec = importlib.util.spec_from_file_location("host_models", Path(__file__).with_name("models.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # SQLAlchemy resolves the Mapped[] annotations through it
    spec.loader.exec_module(module)
    return module


target_metadata = load_models().metadata

options = {
    "target_metadata": target_metadata,
    "include_schemas": True,
    "include_name": sa_pgque.alembic.include_name,
    "include_object": sa_pgque.alembic.include_object,
    # opt-in: let autogenerate drop queues and consumers that are not declared
    sa_pgque.alembic.DROP_UNDECLARED: config.attributes.get(sa_pgque.alembic.DROP_UNDECLARED, False),
}


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **options)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    section = config.get_section(config.config_ini_section, {})
    engine = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, **options)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
