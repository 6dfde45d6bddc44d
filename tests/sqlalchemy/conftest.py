"""Fixtures for the SQLAlchemy layer: engines and sessions on a fresh engine database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from tests._pg import Database


@pytest.fixture
def engine(db: Database) -> Engine:
    return db.engine()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def async_engine(db: Database) -> Iterator[AsyncEngine]:
    engine = create_async_engine(db.url, poolclass=NullPool)
    yield engine


@pytest.fixture
def async_sessions(async_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(async_engine)
