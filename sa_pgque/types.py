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

from sqlalchemy import BigInteger, Integer, Text, bindparam, cast, func, literal, null, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import DateTime, TypeEngine, UserDefinedType

if TYPE_CHECKING:
    from sa_pgque.results import Message

JsonValue = dict[str, Any] | list[Any] | int | float | bool
"""Python values sent as jsonb."""

Payload = str | JsonValue | None
"""What a payload may be: text, a JSON value, or NULL."""


def encode_payload(value: object) -> tuple[bool, str | None]:
    """``(is_json, text)`` of a payload: how it is sent and its text form.

    ``str`` is text as is, ``None`` is NULL text, JSON values (dict, list,
    numbers, booleans) are serialized for the ``jsonb`` overloads. Anything
    else, or an unserializable JSON value, raises ``TypeError``.
    """
    if value is None:
        return False, None
    if isinstance(value, str):
        return False, value
    if isinstance(value, (dict, list, int, float, bool)):
        return True, json.dumps(value)
    raise TypeError(f"sa_pgque: a payload must be str, a JSON value or None, not {type(value).__name__}")


def encoded_arg(is_json: bool, text: str | None) -> ColumnElement[Any]:
    """An encoded payload bound for the ``jsonb`` or the ``text`` overload."""
    if text is None:
        return cast(null(), JSONB if is_json else Text)
    bound = bindparam(None, text, type_=Text, unique=True)
    return cast(bound, JSONB) if is_json else bound


def encoded_array_arg(is_json: bool, texts: Sequence[str | None]) -> ColumnElement[Any]:
    """Encoded payloads as one ``jsonb[]`` or ``text[]`` value, in order.

    The array travels as a single JSON document that the server unpacks
    (``jsonb_array_elements``), which is several times cheaper than binding a
    text array whose every element the driver has to quote and escape. A
    ``None`` element stays SQL NULL in both kinds.
    """
    if is_json:
        document = "[" + ",".join("null" if text is None else text for text in texts) + "]"
        unpack = func.jsonb_array_elements(_json_param(document))
    else:
        document = json.dumps(list(texts), ensure_ascii=False)
        unpack = func.jsonb_array_elements_text(_json_param(document))
    elements = unpack.table_valued("value", with_ordinality="n").render_derived()
    value: ColumnElement[Any] = elements.c.value
    if is_json:
        value = func.nullif(value, cast(literal("null"), JSONB))
    array = select(func.array_agg(aggregate_order_by(value, elements.c.n))).scalar_subquery()
    return func.coalesce(array, cast(literal("{}"), ARRAY(JSONB if is_json else Text)))


def _json_param(document: str) -> ColumnElement[Any]:
    return cast(bindparam(None, document, type_=Text, unique=True), JSONB)


def payload_arg(value: object) -> ColumnElement[Any]:
    """A bound payload that selects the ``text`` or ``jsonb`` overload by its Python type."""
    if isinstance(value, ColumnElement):
        return value
    return encoded_arg(*encode_payload(value))


def payloads_arg(values: Sequence[Payload] | ColumnElement[Any]) -> ColumnElement[Any]:
    """A bound array of payloads: ``text[]`` when every element is str/None, else ``jsonb[]``.

    Mixing ``str`` elements with JSON values is refused: whether a str meant
    text or JSON would be a guess.
    """
    if isinstance(values, ColumnElement):
        return values
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError("sa_pgque: payloads must be a sequence of payloads")
    encoded = [encode_payload(v) for v in values]
    kinds = {is_json for (is_json, text) in encoded if text is not None}
    if len(kinds) > 1:
        raise TypeError("sa_pgque: payloads mix str and JSON values; send them in separate batches")
    return encoded_array_arg(kinds == {True}, [text for _, text in encoded])


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
