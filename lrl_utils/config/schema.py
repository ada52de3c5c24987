"""The typed-params machinery: YAML data checked against dataclass fields (`from_dict`), field help and bounds.

`from_dict` rejects unknown keys (with a close-match hint), missing keys, wrong types, out-of-range numbers and
NaN or infinite floats, with one line naming the file and the innermost key. A field's help text and bounds live
in its metadata: `_help(text, minimum=, maximum=, above=, below=)` (inclusive / exclusive bounds, applied to a
number or to each item of a tuple or dict field). A `Checked` dataclass also has cross-field checks, its `check()`
method: `from_dict` runs it as it builds the instance (a failure names the file and the key), and so does any
construction in code. `_added` marks a field added after runs were made (left out of a spec's hash while at its
default); `_runtime` one that a run sets, never params. Registry and profile names that become run-folder names
must be plain names (`check_plain_name`). `params.py` re-exports everything here.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import types
import typing
from dataclasses import field
from typing import Any, Literal


class ParamError(ValueError):
    """A parameter file is invalid; the message is one line naming the file and the key."""


class Invalid(ValueError):
    """A cross-field check of a `Checked` dataclass failed: the `key` at fault (relative to the dataclass; "" = the
    whole of it) and why."""

    def __init__(self, key: str, message: str):
        super().__init__(f"`{key}`: {message}" if key else message)
        self.key, self.message = key, message


class Checked:
    """Mixin of a dataclass whose checks run whenever an instance is made: each field's bounds (`_help` metadata),
    its `Literal` choices, and the cross-field `check()`. Made by `from_dict` (params loading), a failure names the
    file and the full key; made in code (`dataclasses.replace`, tests), it names the class."""

    def __post_init__(self) -> None:
        name = type(self).__name__
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if typing.get_origin(hints[f.name]) is Literal and value not in typing.get_args(hints[f.name]):
                raise ParamError(f"{name}: `{f.name}`: expected {_type_name(hints[f.name])}, got {value!r}")
            _check_bounds(value, f, f.name, name)
        self.check()

    def check(self) -> None:
        """Cross-field checks: raise `Invalid(key, message)` (field bounds are in the field metadata)."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# --------------------------------------------------------------------------------------------------
# Generic validation of plain YAML data against dataclass field types


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is not None:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str, file: str) -> Any:
    """Check `value` against type `tp` and return it converted (lists → tuples, dicts → dataclasses)."""

    def fail() -> typing.NoReturn:
        raise ParamError(
            f"{file}: `{where}`: expected {_type_name(tp)}, got {type(value).__name__} {value!r}"
        )

    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(tp):
            fail()
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                return _convert(value, option, where, file)
            except ParamError as err:
                errors.append((option, err))
        # A mapping or list has the shape of a dataclass, dict or tuple option: that option's error names the
        # innermost key (e.g. `causal_lm.pretrain.learning_rate`), not the whole section.
        shaped = [(option, err) for option, err in errors if _shape_fits(value, option)]
        if shaped:
            raise max(shaped, key=lambda pair: _fit(value, pair[0]))[1]
        fail()
    if tp is type(None):
        if value is not None:
            fail()
        return None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            fail()
        return from_dict(tp, value, file, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            fail()
        (item_tp, *_rest) = typing.get_args(tp) or (Any,)
        return tuple(_convert(v, item_tp, f"{where}[{i}]", file) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            fail()
        key_tp, val_tp = typing.get_args(tp) or (str, Any)
        return {
            _convert(k, key_tp, where, file): _convert(v, val_tp, f"{where}.{k}", file)
            for k, v in value.items()
        }
    if tp is bool:
        if not isinstance(value, bool):
            fail()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML reads `1e-4` (no dot) as a string; accept numeric strings for floats only.
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    fail()
            fail()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            fail()
        return value
    fail()


def _shape_fits(value: Any, tp: Any) -> bool:
    """Whether `value` has the container shape of type `tp` (a mapping for a dataclass or dict, a list for a tuple)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) or origin is dict:
        return isinstance(value, dict)
    return origin in (tuple, list) and isinstance(value, (list, tuple))


def _fit(value: Any, tp: Any) -> int:
    """How many keys of mapping `value` are fields of dataclass `tp` (picks among dataclass options by shape)."""
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return len(set(value) & {f.name for f in dataclasses.fields(tp)})
    return 0


def from_dict(cls: type, data: dict, file: str, where: str = "") -> Any:
    """Build dataclass `cls` from `data`, rejecting unknown keys, missing keys and wrong types."""
    if not isinstance(data, dict):
        raise ParamError(f"{file}: `{where or '<top>'}`: expected a mapping, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean `{prefix}{close[0]}`?)" if close else f" (known: {', '.join(fields)})"
            raise ParamError(f"{file}: unknown key `{prefix}{key}`{hint}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            if "runtime" in f.metadata:
                raise ParamError(f"{file}: `{prefix}{name}`: not a parameter: {f.metadata['runtime']}")
            kwargs[name] = _convert(data[name], hints[name], prefix + name, file)
            _check_bounds(kwargs[name], f, prefix + name, file)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ParamError(f"{file}: missing key `{prefix}{name}`")
    try:
        return cls(**kwargs)
    except Invalid as err:  # a `Checked` class's cross-field check; key "" = the whole mapping
        raise ParamError(
            f"{file}: `{prefix + err.key if err.key else where or '<top>'}`: {err.message}"
        ) from None


def _check_bounds(value: Any, f: dataclasses.Field, where: str, file: str) -> None:
    """Enforce a field's bounds metadata on a converted number, or on each item of a tuple or value of a dict
    (None passes: "no value"), and refuse a NaN or infinite float anywhere in it (YAML `.nan`, `.inf`)."""
    if dataclasses.is_dataclass(value):  # checked by its own `from_dict`
        return
    if isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            _check_bounds(item, f, f"{where}[{i}]", file)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_bounds(item, f, f"{where}.{key}", file)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    tests = {
        "minimum": (">=", lambda lim: lim <= value),
        "exclusive_minimum": (">", lambda lim: lim < value),
        "maximum": ("<=", lambda lim: value <= lim),
        "exclusive_maximum": ("<", lambda lim: value < lim),
    }
    limits = {key: f.metadata[key] for key in tests if f.metadata.get(key) is not None}
    # `not (a <= b)` rather than `a > b`, so that a NaN fails too
    if any(not tests[key][1](lim) for key, lim in limits.items()):
        bounds = " and ".join(f"{tests[key][0]} {lim}" for key, lim in limits.items())
        raise ParamError(f"{file}: `{where}`: must be {bounds}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamError(f"{file}: `{where}`: must be a finite number, got {value!r}")


def to_dict(obj: Any) -> Any:
    """A dataclass (nested) as plain JSON-able data, without its `_runtime` fields; tuples become lists."""
    if dataclasses.is_dataclass(obj):
        return {
            f.name: to_dict(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if "runtime" not in f.metadata
        }
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def describe(cls: type) -> dict[str, str]:
    """Field name → help text, for documentation and notebook tables."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def _help(
    text: str,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    above: float | None = None,
    below: float | None = None,
    **kw: Any,
) -> Any:
    """A dataclass field with help text and optional bounds, checked by `from_dict`: `minimum` / `maximum` are
    inclusive, `above` / `below` exclusive; they apply to a number, or to each item of a tuple or dict field."""
    bounds = {"minimum": minimum, "maximum": maximum, "exclusive_minimum": above, "exclusive_maximum": below}
    meta: dict[str, Any] = {"help": text, **{k: v for k, v in bounds.items() if v is not None}}
    return field(metadata=meta | kw.pop("metadata", {}), **kw)


def _added(text: str, default: Any, **bounds: Any) -> Any:
    """A field added after runs were made: a spec's hash leaves it out while it holds `default` (`specs._hashed`),
    so those runs keep their folders; set to anything else, it is hashed. Bounds as `_help`'s."""
    return _help(text, default=default, metadata={"hashed_unless_default": True}, **bounds)


def _runtime(text: str, why: str, default: Any) -> Any:
    """A field that a run sets (`dataclasses.replace`), never params: `from_dict` refuses it (`why` says where
    it comes from), `to_dict` and a spec's hash leave it out."""
    return _help(text, default=default, metadata={"runtime": why})


MIN_LENGTH = 8  # the shortest `max_length` of a sequence: two special tokens and some text
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit


def _seed(text: str, **kw: Any) -> Any:
    """A random seed: an int in [0, 2^32 - 1]."""
    return _help(text, minimum=0, maximum=MAX_SEED, **kw)


REGISTRIES = {
    "language": "params/languages.yaml",
    "model": "params/models.yaml",
    "adapter": "params/adapters.yaml",
}


def check_name(name: str, known: typing.Iterable[str], file: str, where: str, what: str) -> None:
    """Raise a one-line ParamError for an unknown registry name, listing the closest valid names and, for a
    language, model or adapter, the registry file a new one is added to."""
    known = list(known)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
        hint = f"; closest: {', '.join(close)}" if close else f"; known: {', '.join(known[:12])}"
        if what in REGISTRIES and file != REGISTRIES[what]:
            hint += f" (a new {what} is an entry of {REGISTRIES[what]})"
        raise ParamError(f"{file}: `{where}`: unknown {what} {name!r}{hint}")


# A name that becomes part of a run folder (`runs/<stage>/<slug>--<digest>`): dot-separated parts of letters,
# digits, `_` and `-` (so no `/`, `\`, `..`, leading dot or absolute path can lead a folder out of `runs/`).
PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


MAX_NAME = (
    100  # a name is part of file names (a run folder's is longer still): the file system allows 255 bytes
)


def is_plain_name(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= MAX_NAME and PLAIN_NAME.fullmatch(name) is not None


def check_plain_name(name: Any, file: str, where: str, what: str) -> None:
    """Raise a one-line ParamError unless `name` is a plain name (it names a run folder)."""
    if not is_plain_name(name):
        raise ParamError(
            f"{file}: `{where}`: {what} name {name!r} must be letters, digits, `_`, `-` and single inner dots, "
            f"at most {MAX_NAME} characters (it names run folders)"
        )
