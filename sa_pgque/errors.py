"""Errors raised by sa_pgque, mapped once from the server's SQLSTATE and message.

The engine gives every error it raises a stable SQLSTATE in class ``PQ``
(see ``docs/errors.md``) while keeping PgQue's message texts. A server running
PgQue itself raises the same texts with SQLSTATE ``P0001``; for those, the
message is matched the way PgQue's own clients do (case-insensitive
substrings), so both engines map to the same exception classes.

Every exception keeps the driver error it came from as ``__cause__`` and
exposes its ``sqlstate``.
"""

from __future__ import annotations

from typing import ClassVar


class PgqueError(Exception):
    """Base class of everything sa_pgque raises for a queue operation."""

    sqlstate: str | None
    """SQLSTATE of the server error, when there was one."""

    _codes: ClassVar[tuple[str, ...]] = ()
    _fragments: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class QueueNotFound(PgqueError):
    """The queue does not exist."""

    _codes = ("PQ001",)
    _fragments = (
        "queue not found",
        "no such queue",
        "no such event queue",
        "event queue not found",
        "event queue not created",
    )


class ConsumerNotFound(PgqueError):
    """The consumer (or subconsumer) is not subscribed to the queue."""

    _codes = ("PQ002",)
    _fragments = (
        "consumer not registered",
        "consumer not found",
        "not subscriber to queue",
        "subconsumer not found",
    )


class BatchNotFound(PgqueError):
    """The batch is not open (unknown, finished, or taken over), or lacks the event."""

    _codes = ("PQ003",)
    _fragments = ("batch not found", "cannot find data for batch", "not found in batch", "event not found")


class DeadLetterNotFound(PgqueError):
    """No dead letter with that id (already replayed or purged)."""

    _codes = ("PQ004",)
    _fragments = ("dead letter entry not found",)


class InvalidArgument(PgqueError, ValueError):
    """An argument was rejected: NULL, too long, out of range, malformed."""

    _codes = ("PQ010",)
    _fragments = (
        "invalid null value",
        "queue name too long",
        "payloads must not be null",
        "max_return must be",
        "must be > 0",
        "must be >= 0",
        "cannot change parameter",
        "must be an exact divisor",
        "must not be empty",
        "must not contain dot",
        "unsupported batch_handling",
        "cannot reposition",
        "external ticker tick_id",
        "external ticker event_seq",
        "idem_key must not be null",
        "ttl must be a positive interval",
    )


class QueueStateError(PgqueError):
    """The queue's state forbids the operation (paused, insert-disabled, external ticker, in use)."""

    _codes = ("PQ020",)
    _fragments = (
        "insert into queue disallowed",
        "writing to queue disabled",
        "has been paused",
        "is paused",
        "external tick source",
        "external ticker",
        "consumers still attached",
    )


class NotCooperative(PgqueError):
    """A normal consumer was used as a cooperative one, or the other way round."""

    _codes = ("PQ030",)
    _fragments = (
        "already a normal consumer",
        "is not a cooperative main consumer",
        "registered incompatibly",
        "is a cooperative main consumer",
        "is a cooperative subconsumer",
        "cannot finish cooperative main consumer batch",
    )


class ActiveBatch(PgqueError):
    """An open batch prevents the operation (finish or hand it over first)."""

    _codes = ("PQ031",)
    _fragments = (
        "cannot unregister active cooperative subconsumer",
        "cannot unregister cooperative",
        "cannot convert active normal consumer",
    )


class EngineStateError(PgqueError):
    """The engine's bookkeeping is inconsistent (corruption, clock or txid going backwards)."""

    _codes = ("PQ040",)
    _fragments = (
        "pgq corruption",
        "invalid pgq state",
        "maint failure",
        "no ticks for this queue",
        "unexpected active batch",
    )


class SchedulerUnavailable(PgqueError):
    """pg_cron / pg_timetable is missing or untrusted."""

    _codes = ("PQ050",)
    _fragments = ("pg_cron extension is not installed", "pg_timetable")


class TriggerError(PgqueError):
    """A change-capture trigger is misconfigured or refused the change."""

    _codes = ("PQ060",)
    _fragments = (
        "trigger needs queue name",
        "bad argument",
        "without pkey",
        "tg_op not supported",
        "change not allowed",
        "primary key update not allowed",
    )


class NotSupported(PgqueError):
    """The operation does not apply to this installation."""

    _codes = ("PQ070",)
    _fragments = ("installed as an extension",)


class PermissionDenied(PgqueError):
    """The role lacks the pgque_reader / pgque_writer / pgque_admin grant needed."""

    _codes = ("42501",)


class EngineNotInstalled(PgqueError):
    """Schema pgque (or the function called) does not exist: install the engine first."""

    _codes = ("3F000", "42883")


_BY_CODE: dict[str, type[PgqueError]] = {
    code: cls
    for cls in (
        QueueNotFound,
        ConsumerNotFound,
        BatchNotFound,
        DeadLetterNotFound,
        InvalidArgument,
        QueueStateError,
        NotCooperative,
        ActiveBatch,
        EngineStateError,
        SchedulerUnavailable,
        TriggerError,
        NotSupported,
        PermissionDenied,
        EngineNotInstalled,
    )
    for code in cls._codes
}

# Order matters where fragments overlap: the more specific classes come first.
_BY_MESSAGE: tuple[type[PgqueError], ...] = (
    DeadLetterNotFound,
    ActiveBatch,
    NotCooperative,
    ConsumerNotFound,
    QueueNotFound,
    BatchNotFound,
    InvalidArgument,
    QueueStateError,
    EngineStateError,
    SchedulerUnavailable,
    TriggerError,
    NotSupported,
)


def error_class(sqlstate: str | None, message: str) -> type[PgqueError] | None:
    """The exception class for a server error, or ``None`` if it is not a queue error."""
    if sqlstate in _BY_CODE:
        if sqlstate == "42883" and "pgque." not in message:
            return None
        return _BY_CODE[sqlstate]
    if sqlstate == "P0001":
        lowered = message.lower()
        for cls in _BY_MESSAGE:
            if any(fragment in lowered for fragment in cls._fragments):
                return cls
        return PgqueError
    return None


def translate(error: BaseException) -> BaseException:
    """Map a driver or SQLAlchemy error to a :class:`PgqueError`; return others unchanged.

    The caller raises the result ``from error`` so the original stays chained.
    """
    driver_error = getattr(error, "orig", None) or error
    sqlstate = getattr(driver_error, "sqlstate", None)
    diag = getattr(driver_error, "diag", None)
    message = getattr(diag, "message_primary", None) or str(driver_error).strip()
    cls = error_class(sqlstate, message)
    if cls is None:
        return error
    return cls(message, sqlstate)
