"""The database: one async engine, sessions, migrations and a health ping.

SQLite (embedded default) and PostgreSQL run the same Alembic migrations.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from devmesh.domain.errors import Unavailable

__all__ = ["Database"]

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every process migrating one database.
_MIGRATION_LOCK_ID = 0x6465766D657368
# What "the database is down" looks like: SQLAlchemy's wrappers for lost or refused
# connections and pool exhaustion, and the drivers' raw socket errors (asyncpg raises
# ConnectionRefusedError and TimeoutError on connect, unwrapped).
_UNREACHABLE = (DBAPIError, PoolTimeout, OSError, TimeoutError)
_RETRY_AFTER = 5


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


class Database:
    """Owns the engine. Build it in the composition root; ``close()`` it there."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        sqlite_synchronous: Literal["full", "normal"] = "normal",
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if not self.is_sqlite:
            options.update(pool_size=pool_size, max_overflow=pool_size)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            event.listen(
                self.engine.sync_engine,
                "connect",
                partial(_sqlite_pragmas, synchronous=sqlite_synchronous.upper()),
            )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits on success, rolls back on error.

        A database that cannot be reached (refused or lost connections, a file that
        cannot be opened, an exhausted pool) becomes ``Unavailable`` here, the one
        place every query passes, so each face answers it as retriable, never as an
        internal error. Other database errors (an integrity error) pass unchanged.
        """
        try:
            async with self.sessions() as session, session.begin():
                yield session
        except _UNREACHABLE as exc:
            if isinstance(exc, DBAPIError) and not _is_unreachable(exc):
                raise
            raise Unavailable(
                "the database is not reachable; try again shortly", retry_after=_RETRY_AFTER
            ) from exc

    async def upgrade(self) -> None:
        """Apply every pending migration. Several processes at once are safe on
        PostgreSQL (an advisory lock), not on SQLite: start those one at a time."""
        async with self.engine.connect() as conn:
            await conn.run_sync(_upgrade)
            await conn.commit()

    async def current_revision(self) -> str | None:
        async with self.engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )

    @staticmethod
    def head_revision() -> str | None:
        return ScriptDirectory.from_config(_alembic_config()).get_current_head()

    async def ping(self) -> None:
        """Raise ``Unavailable`` unless the database answers and is migrated to head."""
        try:
            async with asyncio.timeout(5):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                current = await self.current_revision()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise Unavailable("database is not reachable") from exc
        head = self.head_revision()
        if current != head:
            raise Unavailable(
                f"database schema is at {current or 'nothing'}, expected {head}; "
                "run `devmesh db upgrade`"
            )

    async def close(self) -> None:
        await self.engine.dispose()


def _is_unreachable(exc: DBAPIError) -> bool:
    # OperationalError covers "unable to open database file", "database is locked" and
    # server shutdowns; InterfaceError a connection already closed.
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def _upgrade(conn: Connection) -> None:
    cfg = _alembic_config()
    cfg.attributes["connection"] = conn
    if conn.dialect.name == "postgresql":
        # Several replicas starting at once must not race the same migration.
        conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        try:
            command.upgrade(cfg, "head")
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID})
    else:
        command.upgrade(cfg, "head")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, *, synchronous: str) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL: a commit is in the log when it returns, which a process crash
    # cannot undo; the log is flushed at checkpoints, so a power loss may lose the
    # last commits. FULL flushes every commit (about 2.4 ms each on our disk).
    # docs/configuration.md#database has the choice.
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"sqlite synchronous must be FULL or NORMAL, not {synchronous!r}")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
