"""Search spaces and valid values of a variant's hyperparameters, declared with the field.

A plugin declares them where it declares the default, in its config dataclass::

    from dataclasses import dataclass
    from ganbench.hparams import AtLeast, IntUniform, LogUniform, Positive, hparam

    @dataclass(frozen=True)
    class MyConfig:
        lr: float = hparam(2e-4, search=LogUniform(1e-5, 1e-2), valid=Positive())
        critic_steps: int = hparam(1, search=IntUniform(1, 5), valid=AtLeast(1))

``search`` is the range a hyperparameter search draws the field from (``--search`` narrows or
widens it); ``valid`` says which values the variant accepts at all: ``--set`` and ``--search``
outside them are refused when the run is planned, before anything is written or trained. A
subclass that only changes a default (``lr: float = 1e-4``) keeps its base class's
declaration; declare the field again with :func:`hparam` to change it (``search=None``: not
searched).

Ranges map a coordinate ``u`` in [0, 1) (of a scrambled Sobol sequence, say) onto their
values with :meth:`Range.map`; their :attr:`Range.text` (``log(1e-5,0.01)``) is what
``--search VARIANT.KEY=RANGE`` takes and :func:`parse_range` reads. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "Range",
    "LogUniform",
    "Uniform",
    "IntUniform",
    "Choice",
    "parse_range",
    "Validator",
    "Positive",
    "AtLeast",
    "Interval",
    "BatchSize",
    "hparam",
    "search_space",
    "valid_values",
    "check_values",
    "check_range",
    "check_declarations",
]

RANGE_FORMS = "log(LOW,HIGH), uniform(LOW,HIGH), int(LOW,HIGH) or choice(A,B,...)"
_METADATA_KEY = "ganbench.hparam"


def format_number(x: Any) -> str:
    """The shortest text that reads back as ``x``: ``1e-5``, ``0.01``, ``100``, ``0.999``."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, numbers.Integral):
        return str(int(x))
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    plain = repr(x)
    if "e" in plain or not math.isfinite(x):
        mantissa, _, exponent = plain.partition("e")
        return f"{mantissa}e{int(exponent)}" if exponent else plain
    for digits in range(17):  # the shortest scientific form that reads back as x
        mantissa, _, exponent = f"{x:.{digits}e}".partition("e")
        if float(f"{mantissa}e{exponent}") == x:
            scientific = f"{mantissa}e{int(exponent)}"
            return scientific if len(scientific) < len(plain) else plain
    return plain


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# --- ranges -----------------------------------------------------------------------------------------


class Range:
    """A search range. Subclasses are frozen and validated when constructed (``ValueError``)."""

    kind: ClassVar[str]

    def map(self, u: float) -> Any:
        """The value at coordinate ``u`` in [0, 1) (1 is taken as the top of the range)."""
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        """Whether ``map`` can return ``value`` (of the range's type)."""
        raise NotImplementedError

    @property
    def text(self) -> str:
        """``kind(A,B,...)``, as ``--search`` takes it; :func:`parse_range` reads it back."""
        raise NotImplementedError

    def extremes(self) -> tuple[Any, ...]:
        """Values whose validity implies every value's (for validators that are intervals)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.text


def _unit(u: float) -> float:
    if not _real(u) or not 0.0 <= u <= 1.0:
        raise ValueError(f"a range maps a coordinate in [0, 1), got {u!r}")
    return float(u)


def _bounds(kind: str, low: Any, high: Any, integers: bool = False) -> None:
    ok = _integer if integers else _real
    if not (ok(low) and ok(high)):
        what = "integers" if integers else "numbers"
        raise ValueError(f"{kind}({low!r},{high!r}): the bounds must be {what}")
    if not integers and not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{kind}({format_number(low)},{format_number(high)}): the bounds must be finite")
    text = f"{kind}({format_number(low)},{format_number(high)})"
    if low > high:
        swapped = f"{kind}({format_number(high)},{format_number(low)})"
        raise ValueError(f"{text} is inverted: write the low bound first, e.g. {swapped}")
    if low == high:
        raise ValueError(f"{text} is empty: a range needs low < high (to fix a value, set it instead)")


@dataclass(frozen=True)
class _Continuous(Range):
    low: float
    high: float

    def __post_init__(self) -> None:
        _bounds(self.kind, self.low, self.high)
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))

    def contains(self, value: Any) -> bool:
        return _real(value) and math.isfinite(value) and self.low <= value < self.high

    def _clip(self, value: float) -> float:
        return min(max(value, self.low), math.nextafter(self.high, self.low))

    @property
    def text(self) -> str:
        return f"{self.kind}({format_number(self.low)},{format_number(self.high)})"

    def extremes(self) -> tuple[float, ...]:
        return (self.low, math.nextafter(self.high, self.low))


@dataclass(frozen=True)
class LogUniform(_Continuous):
    """Real numbers in [low, high), uniform in log scale; needs 0 < low < high. ``map(0.5)`` is
    the geometric midpoint ``sqrt(low * high)``."""

    kind: ClassVar[str] = "log"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low <= 0:
            how = "touches 0" if self.low == 0 else "reaches below 0"
            example = "log(1e-5,0.01)"
            if self.high > 0:
                example = f"log({format_number(self.high / 1000)},{format_number(self.high)})"
            raise ValueError(f"{self.text} {how}: a log range needs 0 < low < high, e.g. {example}")

    def map(self, u: float) -> float:
        u = _unit(u)
        return self._clip(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))


@dataclass(frozen=True)
class Uniform(_Continuous):
    """Real numbers in [low, high), uniform (as ``numpy.random.uniform``)."""

    kind: ClassVar[str] = "uniform"

    def map(self, u: float) -> float:
        u = _unit(u)
        return self._clip(self.low + u * (self.high - self.low))


@dataclass(frozen=True)
class IntUniform(Range):
    """The integers low..high, both included, each drawn with equal probability: ``map`` cuts
    [0, 1) into ``high - low + 1`` equal bins."""

    kind: ClassVar[str] = "int"
    low: int
    high: int

    def __post_init__(self) -> None:
        _bounds(self.kind, self.low, self.high, integers=True)
        object.__setattr__(self, "low", int(self.low))
        object.__setattr__(self, "high", int(self.high))

    def map(self, u: float) -> int:
        n = self.high - self.low + 1
        return self.low + min(int(_unit(u) * n), n - 1)

    def contains(self, value: Any) -> bool:
        return _integer(value) and self.low <= value <= self.high

    @property
    def text(self) -> str:
        return f"int({self.low},{self.high})"

    def extremes(self) -> tuple[int, ...]:
        return (self.low, self.high)


def _choice_text(value: Any) -> str:
    if isinstance(value, (bool, numbers.Real)):
        return format_number(value)
    text = str(value)
    if not text or text != text.strip() or any(c in text for c in ",()"):
        raise ValueError(f"choice value {value!r} cannot be written in a range: no commas, parentheses or outer spaces")
    return text


@dataclass(frozen=True, init=False)
class Choice(Range):
    """One of the given values (at least two, distinct), each drawn with equal probability:
    ``map`` cuts [0, 1) into ``len(values)`` equal bins, in the order given."""

    kind: ClassVar[str] = "choice"
    values: tuple[Any, ...]

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", tuple(values))
        if len(values) < 2:
            raise ValueError(
                f"choice({','.join(map(str, values))}) is empty or holds one value: give at least two values "
                "(to fix a value, set it instead)"
            )
        for v in values:
            if _real(v) and not math.isfinite(v):
                raise ValueError(f"choice values must be finite, got {v!r}")
            _choice_text(v)
        repeated = [v for i, v in enumerate(values) if any(_same(v, w) for w in values[:i])]
        if repeated:
            raise ValueError(f"{self.text} repeats {_choice_text(repeated[0])}: name each value once")

    def map(self, u: float) -> Any:
        n = len(self.values)
        return self.values[min(int(_unit(u) * n), n - 1)]

    def contains(self, value: Any) -> bool:
        return any(_same(value, v) for v in self.values)

    @property
    def text(self) -> str:
        return f"choice({','.join(_choice_text(v) for v in self.values)})"

    def extremes(self) -> tuple[Any, ...]:
        return self.values


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _literal(token: str) -> Any:
    if re.fullmatch(r"[+-]?\d+", token):
        return int(token)
    try:
        return float(token)
    except ValueError:
        pass
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    return token


def parse_range(text: str, value: Callable[[str], Any] | None = None) -> Range:
    """A range from its text: ``log(1e-5,1e-2)``, ``uniform(0,1)``, ``int(1,5)``,
    ``choice(a,b,c)`` (spaces allowed). ``value`` types each choice value (by default an
    integer, a number, ``true``/``false``, or else the text). ``ValueError`` names what is
    wrong and what is accepted."""
    match = re.fullmatch(r"\s*([a-z]+)\s*\((.*)\)\s*", str(text))
    kinds = {"log": LogUniform, "uniform": Uniform, "int": IntUniform, "choice": Choice}
    if not match or match.group(1) not in kinds:
        raise ValueError(f"{str(text).strip()!r} is not a range; accepted: {RANGE_FORMS}")
    kind, body = match.group(1), match.group(2)
    args = [a.strip() for a in body.split(",")] if body.strip() else []
    if kind == "choice":
        if any(not a for a in args):
            raise ValueError(f"{str(text).strip()!r}: a choice value is empty")
        return Choice(*(value(a) if value is not None else _literal(a) for a in args))
    if len(args) != 2:
        raise ValueError(f"{str(text).strip()!r}: {kind}(LOW,HIGH) takes two bounds, got {len(args)}")
    try:
        if kind == "int":
            low, high = (int(a) for a in args)
        else:
            low, high = (float(a) for a in args)
    except ValueError:
        what = "integers" if kind == "int" else "numbers"
        raise ValueError(f"{str(text).strip()!r}: the bounds of {kind}(LOW,HIGH) must be {what}") from None
    return kinds[kind](low, high)


# --- validators -------------------------------------------------------------------------------------


class Validator:
    """The values a field accepts. Subclass it with ``accepts(value) -> bool`` and ``text``
    (what follows "must be" in an error message). A search range is valid when its
    :meth:`Range.extremes` are, so a validator should describe an interval (or a set, for
    choices)."""

    text: str = "valid"

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Positive(Validator):
    """A finite number > 0 (a learning rate, a clipping bound)."""

    def accepts(self, value: Any) -> bool:
        return _real(value) and math.isfinite(value) and value > 0

    @property
    def text(self) -> str:
        return "> 0 and finite"


@dataclass(frozen=True)
class AtLeast(Validator):
    """A finite number >= ``low`` (``AtLeast(1)`` for a count, ``AtLeast(0)`` for a weight)."""

    low: float

    def accepts(self, value: Any) -> bool:
        return _real(value) and math.isfinite(value) and value >= self.low

    @property
    def text(self) -> str:
        return f">= {format_number(self.low)}"


@dataclass(frozen=True)
class Interval(Validator):
    """A finite number between ``low`` and ``high``, each end included unless said otherwise:
    Adam's betas are ``Interval(0, 1, include_high=False)``."""

    low: float
    high: float
    include_low: bool = True
    include_high: bool = True

    def __post_init__(self) -> None:
        if not (_real(self.low) and _real(self.high) and self.low < self.high):
            raise ValueError(f"Interval({self.low!r}, {self.high!r}) needs numbers low < high")

    def accepts(self, value: Any) -> bool:
        if not (_real(value) and math.isfinite(value)):
            return False
        above = value >= self.low if self.include_low else value > self.low
        below = value <= self.high if self.include_high else value < self.high
        return above and below

    @property
    def text(self) -> str:
        left, right = "[" if self.include_low else "(", "]" if self.include_high else ")"
        return f"in {left}{format_number(self.low)}, {format_number(self.high)}{right}"


@dataclass(frozen=True)
class BatchSize(AtLeast):
    """A batch size: at least 1 here, and at most the training split's size, which the harness
    checks once it has loaded the data (before the run directory is written)."""

    low: float = 1

    @property
    def text(self) -> str:
        return f">= {format_number(self.low)} and at most the training split's size"


# --- declaring and reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Declaration:
    search: Range | None
    valid: Validator | None


def hparam(default: Any, *, search: Range | None = None, valid: Validator | None = None) -> Any:
    """A config dataclass field with its default, its search range and its valid values:
    ``lr_g: float = hparam(2e-4, search=LogUniform(1e-5, 1e-2), valid=Positive())``. Returns a
    ``dataclasses.field``; ``ValueError`` when the default is not valid or the range reaches
    invalid values."""
    if search is not None and not isinstance(search, Range):
        raise TypeError(f"hparam search must be a ganbench.hparams Range, got {type(search).__name__}")
    if valid is not None and not isinstance(valid, Validator):
        raise TypeError(f"hparam valid must be a ganbench.hparams Validator, got {type(valid).__name__}")
    if valid is not None:
        if not valid.accepts(default):
            raise ValueError(f"hparam default {default!r} is not valid: it must be {valid.text}")
        _check_inside(search, valid, "the field")
    return dataclasses.field(default=default, metadata={_METADATA_KEY: _Declaration(search, valid)})


def _check_inside(search: Range | None, valid: Validator | None, name: str) -> None:
    if search is None or valid is None:
        return
    for i, v in enumerate(search.extremes()):
        if not valid.accepts(v):
            if isinstance(search, _Continuous) and i == 1:
                where = f"values up to {format_number(search.high)}"
            else:
                where = format_number(v) if _real(v) else repr(v)
            raise ValueError(f"{name} must be {valid.text}, and {search.text} reaches {where}")


def _dataclass_type(config_type: Any) -> type:
    if isinstance(config_type, type) and dataclasses.is_dataclass(config_type):
        return config_type
    if dataclasses.is_dataclass(config_type):
        return type(config_type)
    raise TypeError(f"expected a config dataclass, got {config_type!r}")


def _declaration(config_type: type, name: str) -> _Declaration | None:
    """The field's declaration, from the nearest class in the MRO that declared it with hparam."""
    for cls in config_type.__mro__:
        if not dataclasses.is_dataclass(cls):
            continue
        own = cls.__dict__.get("__dataclass_fields__", {}).get(name)
        if own is not None and _METADATA_KEY in own.metadata:
            return own.metadata[_METADATA_KEY]
    return None


def _declared(config_type: Any, attribute: str) -> dict[str, Any]:
    """``{field: declaration.<attribute>}`` of every field that declares one, in field order."""
    cls = _dataclass_type(config_type)
    out = {}
    for f in dataclasses.fields(cls):
        decl = _declaration(cls, f.name)
        if decl is not None and getattr(decl, attribute) is not None:
            out[f.name] = getattr(decl, attribute)
    return out


def search_space(config_type: Any) -> dict[str, Range]:
    """``{field: Range}`` of every field the config dataclass (or instance) declares a search
    range for, in field order."""
    return _declared(config_type, "search")


def valid_values(config_type: Any) -> dict[str, Validator]:
    """``{field: Validator}`` of every field the config dataclass (or instance) declares valid
    values for, in field order."""
    return _declared(config_type, "valid")


def check_values(config: Any) -> None:
    """``ValueError`` naming the first field of the config instance whose value is not valid
    (``lr_g must be > 0 and finite, got -1.0``); None when every value is."""
    for name, valid in valid_values(config).items():
        value = getattr(config, name)
        if not valid.accepts(value):
            raise ValueError(f"{name} must be {valid.text}, got {value!r}")


def _field_type(config_type: type, name: str) -> Any:
    try:
        tp = typing.get_type_hints(config_type).get(name, Any)
    except Exception:  # an unresolvable annotation: no type to check against
        return Any
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else Any
    return tp


def _type_problem(search: Range, tp: Any, name: str) -> str | None:
    if tp is float:
        if isinstance(search, IntUniform):
            return (
                f"{search.text} draws integers, but {name} is a float field; "
                "accepted: log(LOW,HIGH), uniform(LOW,HIGH) or choice of numbers"
            )
        if isinstance(search, Choice) and not all(_real(v) for v in search.values):
            return f"{search.text}: {name} is a float field; its choices must be numbers"
    elif tp is int:
        if isinstance(search, _Continuous):
            return (
                f"{search.text} draws real numbers, but {name} is an integer field; "
                "accepted: int(LOW,HIGH) or choice of integers"
            )
        if isinstance(search, Choice) and not all(_integer(v) for v in search.values):
            return f"{search.text}: {name} is an integer field; its choices must be integers"
    elif tp is bool or tp is str:
        kind = "true/false" if tp is bool else "text"
        if not isinstance(search, Choice) or not all(type(v) is tp for v in search.values):
            field_kind = "bool" if tp is bool else "str"
            return f"{search.text}: {name} is a {field_kind} field; accepted: choice of {kind} values"
    elif typing.get_origin(tp) is typing.Literal:
        allowed = typing.get_args(tp)
        if not isinstance(search, Choice) or not all(v in allowed for v in search.values):
            return f"{search.text}: {name} takes one of {', '.join(map(str, allowed))}; accepted: a choice of those"
    elif tp is not Any and not isinstance(search, Choice):
        return f"{search.text}: {name} is not a number; accepted: choice(A,B,...)"
    return None


def check_range(config_type: Any, name: str, search: Range) -> None:
    """``ValueError`` when ``search`` cannot be the range of field ``name``: the field does not
    exist, the range draws values of another type (a real-number range on an integer field,
    a choice of words on a float field), or it reaches values the field does not accept."""
    cls = _dataclass_type(config_type)
    names = [f.name for f in dataclasses.fields(cls)]
    if name not in names:
        raise ValueError(f"there is no setting {name!r}; accepted: {', '.join(sorted(names)) or 'none'}")
    problem = _type_problem(search, _field_type(cls, name), name)
    if problem:
        raise ValueError(problem)
    decl = _declaration(cls, name)
    _check_inside(search, decl.valid if decl else None, name)


def check_declarations(config_type: Any) -> None:
    """``ValueError`` naming the first field whose declaration does not hold: a default outside
    its valid values (a subclass may change a default but keeps the base's valid values), or a
    search range of the wrong type. The registry runs this on every variant's config."""
    cls = _dataclass_type(config_type)
    for f in dataclasses.fields(cls):
        decl = _declaration(cls, f.name)
        if decl is None:
            continue
        if decl.valid is not None and f.default is not dataclasses.MISSING and not decl.valid.accepts(f.default):
            raise ValueError(f"{f.name}: its default {f.default!r} is not valid: it must be {decl.valid.text}")
        if decl.search is not None:
            try:
                check_range(cls, f.name, decl.search)
            except ValueError as exc:
                raise ValueError(f"{f.name}: {exc}") from None
