"""One generic ``to_json`` / ``from_json`` for the typed record (:mod:`nbdiag.record.model`).

The JSON form of a frozen dataclass is a dict of its fields **in field order**, so the
dataclass's field order is the record's key order. The conversion is driven by the field
type hints only (no per-class code):

* a dataclass -> a dict of its fields; a field whose value is :data:`ABSENT` is left out
  (a key some records do not have), ``None`` is written as ``null``;
* ``tuple[X, ...]`` <-> a JSON list; ``Mapping[str, X]`` <-> a JSON object (key order kept);
* ``float`` fields: NaN and ±inf are written as ``null`` (the rule of
  :func:`nbdiag.core.jsonio.jsonable`); an integer in the JSON stays an ``int`` (so
  ``1`` is not rewritten ``1.0``);
* ``Any`` leaves (a finding's evidence, free-form per-code detail) pass unchanged: they
  hold JSON values already;
* ``X | None | Absent`` unions choose the member from the JSON value.

``from_json`` is strict: a key no field names, or a value of the wrong JSON type, raises
:class:`RecordFormatError` naming the path (``record.design.columns[3].role``), so a field
renamed on one side only fails at once. No numpy or pandas here (group and report import it).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any, Callable, Final, TypeVar

from nbdiag.core.jsonplain import plain_list

__all__ = ["ABSENT", "Absent", "RecordFormatError", "from_json", "to_json", "field_types"]

T = TypeVar("T")


class Absent(enum.Enum):
    """Marks a field whose key is not in the JSON (distinct from ``None``, written as ``null``)."""

    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


#: the value of a field whose key a record does not have (``x is not ABSENT`` narrows the type)
ABSENT: Final = Absent.ABSENT


class RecordFormatError(ValueError):
    """A JSON value that does not fit the typed record (the message names the path)."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message, self.where = message, where

    def at(self, step: str) -> RecordFormatError:
        """The same error one level up (``step`` prepended to the path)."""
        return RecordFormatError(self.message, step + self.where)

    def __str__(self) -> str:
        return f"{self.where or '<root>'}: {self.message}"


_NoneType = type(None)
_isfinite = math.isfinite


def _identity(value: Any) -> Any:
    return value


def _check(kind: str, ok: Callable[[Any], bool]) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        if not ok(value):
            raise RecordFormatError(f"expected {kind}, found {type(value).__name__} {value!r:.80}")
        return value
    return decode


_PRIMITIVES: dict[Any, Callable[[Any], Any]] = {
    str: _check("a string", lambda v: type(v) is str),
    bool: _check("true/false", lambda v: type(v) is bool),
    int: _check("an integer", lambda v: type(v) is int),
    float: _check("a number", lambda v: type(v) is float or type(v) is int),
    _NoneType: _check("null", lambda v: v is None),
}


def _accepts(tp: Any) -> Callable[[Any], bool]:
    """Whether a JSON value can be of type ``tp`` (to pick a union member)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return lambda v: True
    if tp is float:
        return lambda v: type(v) is float or type(v) is int
    if tp in (str, bool, int):
        return lambda v: type(v) is tp
    if tp is _NoneType:
        return lambda v: v is None
    if dataclasses.is_dataclass(tp) or origin in (Mapping, dict):
        return lambda v: isinstance(v, dict)
    if origin is tuple:
        return lambda v: isinstance(v, list)
    raise TypeError(f"record codec: unsupported type {tp!r}")


def _union_members(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    if origin is typing.Union or (sys.version_info >= (3, 10) and origin is types.UnionType):
        return typing.get_args(tp)
    return None


_SCALARS = {str: (str,), bool: (bool,), int: (int,), float: (float, int), _NoneType: (_NoneType,)}


def _scalar_types(tp: Any) -> frozenset | None:
    """The Python types a JSON scalar of type ``tp`` may have, or None when ``tp`` is not scalar."""
    if tp in _SCALARS:
        return frozenset(_SCALARS[tp])
    members = _union_members(tp)
    if members is None:
        return None
    members = tuple(m for m in members if m is not Absent)  # ABSENT is never a JSON value
    if not all(m in _SCALARS for m in members):
        return None
    return frozenset(t for m in members for t in _SCALARS[m])


def _scalar_tuple_decoder(allowed: frozenset, tp: Any) -> Callable[[Any], Any]:
    def decode(value: Any) -> tuple:
        if not isinstance(value, list) or not allowed.issuperset(map(type, value)):
            _explain(value, allowed, tp, "a list")
        return tuple(value)
    return decode


def _scalar_mapping_decoder(allowed: frozenset, tp: Any) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        if not isinstance(value, dict) or not allowed.issuperset(map(type, value.values())):
            _explain(value, allowed, tp, "an object")
        return value
    return decode


def _first_bad(item: Callable[[Any], Any], values: Any) -> int:
    for i, v in enumerate(values):
        try:
            item(v)
        except RecordFormatError:
            return i
    return -1  # pragma: no cover


def _explain(value: Any, allowed: frozenset, tp: Any, kind: str) -> None:
    if not isinstance(value, (list, dict)):
        raise RecordFormatError(f"expected {kind}, found {type(value).__name__}")
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for k, v in items:
        if type(v) not in allowed:
            raise RecordFormatError(f"{type(v).__name__} {v!r:.80} is not {tp}", f"[{k!r}]")
    raise RecordFormatError(f"expected {kind}, found {type(value).__name__}")  # pragma: no cover


_DECODERS: dict[Any, Callable[[Any], Any]] = {}


def _decoder(tp: Any) -> Callable[[Any], Any]:
    try:
        return _DECODERS[tp]
    except (KeyError, TypeError):
        pass
    dec = _make_decoder(tp)
    try:
        _DECODERS[tp] = dec
    except TypeError:  # pragma: no cover - unhashable hint
        pass
    return dec


def _make_decoder(tp: Any) -> Callable[[Any], Any]:  # noqa: C901 - one branch per kind of type
    if tp is Any:
        return _identity
    if tp in _PRIMITIVES:
        return _PRIMITIVES[tp]
    scalars = _scalar_types(tp)
    if scalars is not None:  # a union of scalars (float | None ...): one set lookup
        def decode_scalar(value: Any) -> Any:
            if type(value) not in scalars:
                raise RecordFormatError(f"{type(value).__name__} {value!r:.80} is none of "
                                        f"{', '.join(t.__name__ for t in typing.get_args(tp) if t is not Absent)}")
            return value
        return decode_scalar
    if dataclasses.is_dataclass(tp):
        cls: type = tp  # type: ignore[assignment]
        return lambda v: _decode_dataclass(cls, v)
    members = _union_members(tp)
    if members is not None:
        options = [(m, _accepts(m)) for m in members if m is not Absent]
        decoders = [(ok, _decoder(m)) for m, ok in options]

        def decode_union(value: Any) -> Any:
            for ok, dec in decoders:
                if ok(value):
                    return dec(value)
            raise RecordFormatError(f"{type(value).__name__} {value!r:.80} is none of "
                                    f"{', '.join(getattr(m, '__name__', str(m)) for m, _ in options)}")
        return decode_union
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    items = _scalar_types(args[0]) if origin is tuple else None
    if items is not None:
        return _scalar_tuple_decoder(items, args[0])
    values = _scalar_types(args[1]) if origin in (Mapping, dict) else None
    if values is not None:
        return _scalar_mapping_decoder(values, args[1])
    if origin is tuple:
        item = _decoder(args[0])
        if item is _identity:
            def decode_plain(value: Any) -> tuple:
                if not isinstance(value, list):
                    raise RecordFormatError(f"expected a list, found {type(value).__name__}")
                return tuple(value)
            return decode_plain

        def decode_tuple(value: Any) -> tuple:
            if not isinstance(value, list):
                raise RecordFormatError(f"expected a list, found {type(value).__name__}")
            try:
                return tuple(map(item, value))
            except RecordFormatError as exc:
                raise exc.at(f"[{_first_bad(item, value)}]") from None
        return decode_tuple
    if origin in (Mapping, dict):
        item = _decoder(args[1])
        if item is _identity:
            def decode_free(value: Any) -> Any:
                if not isinstance(value, dict):
                    raise RecordFormatError(f"expected an object, found {type(value).__name__}")
                return value
            return decode_free

        def decode_mapping(value: Any) -> dict:
            if not isinstance(value, dict):
                raise RecordFormatError(f"expected an object, found {type(value).__name__}")
            out = {}
            for k, v in value.items():
                try:
                    out[k] = item(v)
                except RecordFormatError as exc:
                    raise exc.at(f".{k}") from None
            return out
        return decode_mapping
    raise TypeError(f"record codec: unsupported type {tp!r}")


_PLANS: dict[type, tuple[tuple[str, Any, bool], ...]] = {}


def field_types(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """``(name, type hint, required)`` of every field of a record dataclass, in order.

    ``required`` is False for a field that may be :data:`ABSENT` (its key may be missing).
    """
    try:
        return _PLANS[cls]
    except KeyError:
        pass
    hints = typing.get_type_hints(cls)
    plan = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        members = _union_members(tp)
        optional = members is not None and Absent in members
        plan.append((f.name, tp, not optional))
    _PLANS[cls] = tuple(plan)
    return _PLANS[cls]


_DC_DECODERS: dict[type, Callable[[Any], Any]] = {}


def _decode_dataclass(cls: type, value: Any) -> Any:
    dec = _DC_DECODERS.get(cls)
    if dec is None:
        dec = _DC_DECODERS[cls] = _compile_dataclass_decoder(cls)
    return dec(value)


def _compile_dataclass_decoder(cls: type) -> Callable[[Any], Any]:
    """A decoder for ``cls`` generated from its fields (one function, no per-field loop: records are
    decoded once per run × variant, on the participant level's time)."""
    env: dict[str, Any] = {"cls": cls, "ABSENT": ABSENT, "_new": object.__new__, "RecordFormatError": RecordFormatError,
                           "_not_object": _not_object, "_missing": _missing, "_extra": _extra}
    lines = ["def decode(value):",
             "    if type(value) is not dict:",
             "        _not_object(cls, value)",
             "    obj = _new(cls)",
             "    d = obj.__dict__",
             "    get = value.get",
             "    n = 0",
             "    name = None",
             "    try:"]
    for i, (name, tp, required) in enumerate(field_types(cls)):
        dec = _decoder(tp)
        scalars = _scalar_types(tp)
        call = "v" if dec is _identity else f"v if type(v) in s{i} else d{i}(v)" if scalars else f"d{i}(v)"
        env[f"d{i}"], env[f"s{i}"] = dec, scalars
        lines += [f"        name = {name!r}",
                  f"        v = get({name!r}, ABSENT)",
                  "        if v is ABSENT:",
                  f"            {'_missing(cls, name)' if required else f'd[{name!r}] = ABSENT'}",
                  "        else:",
                  f"            d[{name!r}] = {call}",
                  "            n += 1"]
    lines += ["    except RecordFormatError as exc:",
              "        raise exc.at('.' + name) from None",
              "    if n != len(value):",
              "        _extra(cls, value)",
              "    return obj"]
    exec("\n".join(lines), env)  # noqa: S102 - generated from the dataclass's own field names
    return env["decode"]


def _not_object(cls: type, value: Any) -> None:
    raise RecordFormatError(f"expected an object ({cls.__name__}), found {type(value).__name__}")


def _missing(cls: type, name: str) -> None:
    raise RecordFormatError(f"missing ({cls.__name__} requires {name!r})")


def _extra(cls: type, value: Any) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    extra = [k for k in value if k not in names]
    raise RecordFormatError(f"{', '.join(map(repr, extra))} is no field of {cls.__name__} "
                            f"(add it to nbdiag/record/model.py and docs/record.schema.json)")


def from_json(cls: type[T], data: Any, path: str = "record") -> T:
    """The typed value of class ``cls`` (a record dataclass) for JSON data ``data``.

    Raises
    ------
    RecordFormatError
        A key no field names, a missing required key, or a value of the wrong JSON type.
    """
    try:
        return _decode_dataclass(cls, data)
    except RecordFormatError as exc:
        raise exc.at(path) from None


def _all_finite(values: Any) -> bool:
    """No NaN/inf among the floats of ``values`` (C-speed for the usual all-number or no-float lists)."""
    try:
        if _isfinite(sum(values)):  # a sum of finite numbers; NaN/inf (or an overflow) checked below
            return True
    except TypeError:  # None or text among them
        pass
    kinds = set(map(type, values))
    if float not in kinds:
        return True
    if len(kinds) == 1:
        return all(map(_isfinite, values))
    return all(map(_isfinite, [v for v in values if type(v) is float]))


def _finite_list(value: Any) -> list:
    if _all_finite(value):
        return list(value)
    return [None if type(v) is float and not _isfinite(v) else v for v in value]


def _finite_dict(value: Any) -> dict:
    if _all_finite(value.values()):
        return dict(value)
    return {k: None if type(v) is float and not _isfinite(v) else v for k, v in value.items()}


def _float(value: Any) -> Any:
    return None if type(value) is float and not _isfinite(value) else value


_ENCODERS: dict[Any, Callable[[Any], Any]] = {}


def _encoder(tp: Any) -> Callable[[Any], Any]:
    try:
        return _ENCODERS[tp]
    except KeyError:
        pass
    _ENCODERS[tp] = enc = _make_encoder(tp)
    return enc


def _make_encoder(tp: Any) -> Callable[[Any], Any]:
    """How a value of type ``tp`` is written: type-driven, free-form leaves by :func:`to_json`."""
    scalars = _scalar_types(tp)
    if scalars is not None:
        return _float if float in scalars else (lambda v: v)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    items = _scalar_types(args[0]) if origin is tuple else None
    if items is not None:
        return _finite_list if float in items else list
    values = _scalar_types(args[1]) if origin in (Mapping, dict) else None
    if values is not None:
        return _finite_dict if float in values else dict
    if dataclasses.is_dataclass(tp):
        return _encode_dataclass
    if tp is Any:
        return _same  # free-form leaves hold JSON values already
    members = _union_members(tp)
    if members is not None:
        rest = [m for m in members if m is not Absent and m is not _NoneType]
        if len(rest) == 1:
            inner = _encoder(rest[0])
            return lambda v: None if v is None else inner(v)
    if origin is tuple:
        item = _encoder(args[0])
        return lambda v: [item(x) for x in v]
    if origin in (Mapping, dict):
        item = _encoder(args[1])
        if item is _same:
            return _same
        return lambda v: {k: item(x) for k, x in v.items()}
    return to_json  # other unions: by value


def _same(value: Any) -> Any:
    return value


def _encode_dataclass(value: Any) -> dict[str, Any]:
    t = type(value)
    plan = _ENC_PLANS.get(t)
    if plan is None:
        plan = tuple((name, _encoder(tp)) for name, tp, _ in field_types(t))
        _ENC_PLANS[t] = plan
    out = {}
    for name, enc in plan:
        v = getattr(value, name)
        if v is not ABSENT:
            out[name] = enc(v)
    return out


_ENC_PLANS: dict[type, tuple[tuple[str, Callable[[Any], Any]], ...]] = {}


def to_json(value: Any) -> Any:
    """The JSON form of a typed record value (dicts, lists, str, int, float, bool, None)."""
    t = type(value)
    if t is float:
        return value if _isfinite(value) else None
    if t is str or t is int or t is bool or value is None:
        return value
    if t is tuple or t is list:
        out = plain_list(value)
        return out if out is not None else [to_json(v) for v in value]
    if t is dict:
        return {k: to_json(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return _encode_dataclass(value)
    if isinstance(value, Mapping):
        return {k: to_json(v) for k, v in value.items()}
    raise TypeError(f"record codec: cannot write {t.__name__} {value!r:.80}")
