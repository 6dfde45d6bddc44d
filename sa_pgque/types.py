"""SQL types: the ``pgque.message`` composite, and how Python payloads are bound.

Payloads choose their overload explicitly: ``str`` goes to the ``text``
overloads (stored byte for byte, no parsing), JSON values (``dict``, ``list``,
numbers, booleans) are serialized and cast to ``jsonb`` (stored in
PostgreSQL's canonical jsonb form), ``None`` is a NULL ``text``, and a SQL
expression keeps its own type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Integer, Text, bindparam, cast, null, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import DateTime, TypeEngine, UserDefinedType

if TYPE_CHECKING:
    from sa_pgque.results import Message

JsonValue = dict[str, Any] | list[Any] | int | float | bool
"""Python values sent as jsonb."""

Payload = str | JsonValue | None
"""What a payload may be: text, a JSON value, or NULL."""


def is_json_value(value: object) -> bool:
    """True for the Python values that are sent as ``jsonb`` rather than ``text``."""
    return isinstance(value, (dict, list, int, float, bool))


def check_payload(value: object) -> None:
    """Raise TypeError for a value that cannot be a payload (including unserializable JSON)."""
    if value is None or isinstance(value, str):
        return
    if not is_json_value(value):
        raise TypeError(f"sa_pgque: a payload must be str, a JSON value or None, not {type(value).__name__}")
    json.dumps(value)


def payload_arg(value: object) -> ColumnElement[Any]:
    """A bound payload that selects the ``text`` or ``jsonb`` overload by its Python type."""
    if isinstance(value, ColumnElement):
        return value
    check_payload(value)
    if value is None:
        return cast(null(), Text)
    if isinstance(value, str):
        return bindparam(None, value, type_=Text, unique=True)
    return cast(bindparam(None, json.dumps(value), type_=Text, unique=True), JSONB)


def payloads_arg(values: Sequence[Payload] | ColumnElement[Any]) -> ColumnElement[Any]:
    """A bound array of payloads: ``text[]`` when every element is str/None, else ``jsonb[]``.

    Mixing ``str`` elements with JSON values is refused: whether a str meant
    text or JSON would be a guess.
    """
    if isinstance(values, ColumnElement):
        return values
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError("sa_pgque: payloads must be a sequence of payloads")
    for v in values:
        if not isinstance(v, str):
            check_payload(v)
    kinds = {"text" if isinstance(v, str) else "json" for v in values if v is not None}
    if kinds == {"text", "json"}:
        raise TypeError("sa_pgque: payloads mix str and JSON values; send them in separate batches")
    if kinds == {"json"}:
        texts = [None if v is None else json.dumps(v) for v in values]
        return cast(bindparam(None, texts, type_=ARRAY(Text), unique=True), ARRAY(JSONB))
    return bindparam(None, list(values), type_=ARRAY(Text), unique=True)


class MessageType(UserDefinedType[Any]):
    """The ``pgque.message`` composite type.

    Binding a :class:`~sa_pgque.results.Message` renders a typed row
    constructor (see :func:`message_arg`); a column of this type (for example
    ``select m from pgque.receive(...) m``) is read back into a ``Message``.
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "pgque.message"

    def result_processor(self, dialect: Any, coltype: object) -> Callable[[Any], Message | None]:
        from sa_pgque.results import Message

        def process(value: Any) -> Message | None:
            if value is None:
                return None
            fields = parse_record(value) if isinstance(value, str) else list(value)
            return Message.from_fields(fields)

        return process


_MESSAGE_FIELD_TYPES: tuple[TypeEngine[Any], ...] = (
    BigInteger(),
    BigInteger(),
    Text(),
    Text(),
    Integer(),
    DateTime(timezone=True),
    Text(),
    Text(),
    Text(),
    Text(),
)


def message_arg(message: Message | ColumnElement[Any]) -> ColumnElement[Any]:
    """A ``pgque.message`` value: a typed row constructor for a Message, or an expression as is."""
    if isinstance(message, ColumnElement):
        return message
    values = (
        message.msg_id,
        message.batch_id,
        message.type,
        message.payload_text,
        message.retry_count,
        message.created_at,
        message.extra1,
        message.extra2,
        message.extra3,
        message.extra4,
    )
    return cast(
        tuple_(*[bindparam(None, v, type_=t, unique=True) for v, t in zip(values, _MESSAGE_FIELD_TYPES, strict=True)]),
        MessageType(),
    )


_RECORD_TOKEN = re.compile(r'"((?:[^"\\]|""|\\.)*)"|([^,()"]*)')


def parse_record(text: str) -> list[str | None]:
    """Split PostgreSQL's text output of a composite value into its fields (NULL as None)."""
    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError(f"not a composite value: {text!r}")
    body = text[1:-1]
    fields: list[str | None] = []
    position = 0
    while True:
        match = _RECORD_TOKEN.match(body, position)
        assert match is not None
        quoted, bare = match.groups()
        if quoted is not None:
            fields.append(re.sub(r'""|\\(.)', lambda m: m.group(1) or '"', quoted))
        else:
            fields.append(bare if bare else None)
        position = match.end()
        if position >= len(body):
            return fields
        position += 1  # the comma
        if position == len(body):
            fields.append(None)
            return fields


def parse_timestamptz(value: str | datetime | None) -> datetime | None:
    """A timestamptz from a composite field (ISO output, as PostgreSQL prints it)."""
    if value is None or isinstance(value, datetime):
        return value
    text = value.replace(" ", "T", 1)
    text = re.sub(r"\.(\d{1,6})", lambda m: "." + m.group(1).ljust(6, "0"), text)
    if re.search(r"[+-]\d\d$", text):
        text += ":00"
    return datetime.fromisoformat(text)
