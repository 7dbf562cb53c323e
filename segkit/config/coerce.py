"""Values as a field's declared type: text as typed after ``key=`` in an override, or plain data (a checkpoint's
JSON, a field set from Python). Each function raises one UserError naming the key."""
from __future__ import annotations

import functools
import re
import types
import typing

from segkit.errors import UserError


@functools.cache
def field_types(cls) -> dict:
    """The declared type of each field of dataclass ``cls`` (its annotations are text: ``from __future__``)."""
    return typing.get_type_hints(cls)


def coerce(value, annotation, key: str, from_text: bool = False):
    """``value`` as type ``annotation``; ``from_text``: as a user types it (``none``, ``2e3``, ``129x257``)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (from_text and str(value).lower() in ("none", "null")):
            return None
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return coerce(value, inner[0], key, from_text)
    if origin is tuple:
        return _coerce_tuple(value, typing.get_args(annotation), key, from_text)
    try:
        return _coerce_scalar(value, annotation)
    except (TypeError, ValueError):
        raise UserError(f"{key}={value!r} is not a valid {annotation.__name__}.", key) from None


def _coerce_tuple(value, args: tuple, key: str, from_text: bool) -> tuple:
    items = None
    if from_text:  # the forms a user types: 129,257  129x257  (129, 257)  [129, 257]
        text = str(value).strip().strip("()[]")
        if args[0] in (int, float):
            text = re.sub(r"(?<=\d)\s*[xX]\s*(?=\d)", ",", text)
        items = [v.strip() for v in text.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    variadic = args[-1] is Ellipsis
    if items is None or (not variadic and len(items) != len(args)):
        count = "" if variadic else f"{len(args)} "
        raise UserError(f"{key} takes {count}comma-separated values, got {value!r}.", key)
    return tuple(coerce(item, args[0], key, from_text) for item in items)


def _coerce_scalar(value, annotation):
    """``value`` as bool, int, float or str (ValueError if it is none); other annotations pass it through."""
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(value)
    if annotation is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
    if annotation is float:
        return float(value)
    if annotation is str:
        return str(value)
    return value
