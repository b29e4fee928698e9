"""Settings: each one defined once, giving both the absl flag and the typed config field.

A setting is a field of a frozen config dataclass declared with one of the
helpers below (`integer`, `number`, `boolean`, `choice`, `text`, `int_list`,
`float_list`, `choice_list`, `text_list`, `bins`). The field's metadata holds
a `Setting`: kind, default, help, choices or bounds. From it
`svf_tf.config.flags` defines the absl flag (same name unless `flag=` says
otherwise, same default, choices listed in --helpfull), and the dataclass's
`__post_init__` checks its value with `validate_fields`, through the same
`Setting.validate` the flag parser calls. So a value is validated once,
where it enters: on the command line by the flag parser, from Python by
the dataclass. Checks that involve several fields (e.g. --synthetic needs
--dataset=pascal) live in the owning dataclass's `__post_init__`.

TensorFlow-free: `--helpfull` and flag errors never load it.
"""

import dataclasses
from collections.abc import Callable

KINDS = ("bool", "int", "float", "choice", "text", "int_list", "float_list", "choice_list",
         "text_list", "bins")
LIST_KINDS = ("int_list", "float_list", "choice_list", "text_list", "bins")


class SettingError(ValueError):
    """A value a setting does not accept; the message names it and says what to give."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """The definition of one setting (see the module docstring).

    Attributes:
        kind: one of `KINDS`.
        default: the default value (None: unset; for `per_method` settings:
            resolved from `svf_tf.config.method_defaults`).
        help: one-line help; the flag's help adds choices, bounds and the
            per-method defaults to it.
        choices: allowed values ("choice", "choice_list"; for "int_list" the
            allowed items).
        lower, upper: inclusive bounds of a number or of each list item.
        length: exact number of items of a list (e.g. 2 for a min,max pair).
        min_length: least number of items of a list.
        optional: None is a valid value ("unset").
        flag: the flag's name when it differs from the field's.
        check: extra rule, `value -> reason or None` (e.g. the input size).
        per_method: None means "the method's default" (`method_defaults`).
    """

    kind: str
    default: object
    help: str
    choices: tuple | None = None
    lower: float | None = None
    upper: float | None = None
    length: int | None = None
    min_length: int = 0
    optional: bool = False
    flag: str | None = None
    check: Callable | None = None
    per_method: bool = False

    # Validation (one function per kind; the flag parser and the dataclasses call it).
    def validate(self, value, label, shown=None):
        """`value` normalised (lists become tuples), or SettingError naming `label`.

        Args:
            value: the typed value.
            label: how the user named the setting ("--fold" on the command
                line, "DataConfig: fold" from Python).
            shown: the value as the user wrote it (default its repr).
        """
        if value is None:
            if self.optional:
                return None
            raise self._error(label, value, shown, "a value is required")
        if self.kind in LIST_KINDS:
            items = _as_items(value)
            if items is None:
                raise self._error(label, value, shown, self.describe())
            normalised = []
            for item in items:
                reason = self._item_reason(item)
                if reason:
                    raise self._error(label, value, shown, reason)
                normalised.append(float(item) if self.kind == "float_list" else item)
            if self.choices is not None:  # a subset: no repeats, in the order of the choices
                normalised = [c for c in self.choices if c in normalised]
            if self.length is not None and len(normalised) != self.length:
                raise self._error(label, value, shown, self.describe())
            if len(normalised) < self.min_length:
                raise self._error(label, value, shown, self.describe())
            value = tuple(normalised)
        else:
            reason = self._item_reason(value, scalar=True)
            if reason:
                raise self._error(label, value, shown, reason)
            if self.kind == "float":
                value = float(value)
            if self.kind == "text" and value == "" and self.optional:
                return None
        if self.check is not None:
            reason = self.check(value)
            if reason:
                raise self._error(label, value, shown, reason)
        return value

    def _item_reason(self, item, scalar=False):
        """None if `item` is a valid value (scalar) or list item, else the reason."""
        kind = self.kind if scalar else {"int_list": "int", "float_list": "float",
                                         "choice_list": "choice", "text_list": "text",
                                         "bins": "bin"}[self.kind]
        is_int = isinstance(item, int) and not isinstance(item, bool)
        if kind == "bool":
            ok = isinstance(item, bool)
        elif kind == "int":
            ok = is_int and self._in_bounds(item) and (self.choices is None
                                                      or item in self.choices)
        elif kind == "float":
            ok = (is_int or isinstance(item, float)) and self._in_bounds(item)
        elif kind == "choice":
            ok = isinstance(item, str) and item in self.choices
        elif kind == "text":
            ok = isinstance(item, str)
        else:  # a pyramid bin: an int >= 1 (cells) or a float in (0, 1] (a fraction)
            ok = (is_int and item >= 1) or (isinstance(item, float) and 0.0 < item <= 1.0)
        return None if ok else self.describe()

    def _in_bounds(self, number):
        return ((self.lower is None or number >= self.lower)
                and (self.upper is None or number <= self.upper))

    def _error(self, label, value, shown, reason):
        shown = repr(value) if shown is None else shown
        return SettingError(f"{label}={shown} is not accepted: {reason.rstrip('.')}.")

    def describe(self):
        """What the setting takes, as a fix: "give an integer in [0, 3]"."""
        bounds = _bounds_text(self.lower, self.upper)
        choices = ", ".join(str(c) for c in self.choices or ())
        unset = "; empty for unset" if self.optional else ""
        if self.kind in ("choice_list",) or (self.kind == "int_list" and self.choices):
            size = "a non-empty" if self.min_length else "a"
            return f"give {size} comma-separated subset of {choices}{unset}"
        if self.kind in LIST_KINDS:
            count = (f"exactly {self.length} " if self.length is not None
                     else "one or more " if self.min_length else "")
            item = {"int_list": f"integers{bounds}", "float_list": f"numbers{bounds}",
                    "text_list": "strings",
                    "bins": "ints >= 1 (bin sizes) or floats in (0, 1] (fractions of the "
                            "feature size)"}[self.kind]
            return f"give {count}comma-separated {item}{unset}"
        return {"bool": "give true or false", "int": f"give an integer{bounds}",
                "float": f"give a number{bounds}", "choice": f"give one of {choices}",
                "text": "give a string"}[self.kind]

    # Flags: text <-> typed value.
    def parse_text(self, text, label):
        """The typed value of a flag's text (before `validate`)."""
        if self.kind in LIST_KINDS:
            parts = [part.strip() for part in text.split(",")] if text.strip() else []
            if not parts:
                return None if self.optional else ()
            try:
                return tuple(self._parse_item(part) for part in parts)
            except ValueError:
                raise self._error(label, text, text, self.describe()) from None
        if self.optional and text == "":
            return None
        try:
            return self._parse_item(text, scalar=True)
        except ValueError:
            raise self._error(label, text, text, self.describe()) from None

    def _parse_item(self, text, scalar=False):
        kind = self.kind if scalar else self.kind.replace("_list", "")
        if kind == "bool":  # absl's spellings (BooleanParser)
            if text.lower() in ("true", "t", "1"):
                return True
            if text.lower() in ("false", "f", "0"):
                return False
            raise ValueError(text)
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bins":
            return int(text) if text.lstrip("+-").isdigit() else float(text)
        return text

    def to_text(self, value):
        """The flag text of a typed value (inverse of `parse_text`)."""
        if self.kind in LIST_KINDS:
            return ",".join(str(item) for item in value)
        if self.kind == "bool":
            return "true" if value else "false"
        return str(value)


def _as_items(value):
    """A list setting's value as a list: a scalar is one item; None for non-sequences."""
    if isinstance(value, (str, int, float)):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


def _bounds_text(lower, upper):
    def show(x):
        return str(int(x)) if float(x).is_integer() else str(x)

    if lower is not None and upper is not None:
        return f" in [{show(lower)}, {show(upper)}]"
    if lower is not None:
        return f" >= {show(lower)}"
    if upper is not None:
        return f" <= {show(upper)}"
    return ""


# Declaring settings: each helper returns a dataclasses.field carrying its Setting.
def _field(kind, default, help, **options):
    definition = Setting(kind, default, help, **options)
    return dataclasses.field(default=default, metadata={"setting": definition})


def boolean(default, help, **options):
    """A bool (`--name` / `--noname`)."""
    return _field("bool", default, help, **options)


def integer(default, help, *, lower=None, upper=None, **options):
    """An int, optionally bounded (inclusive)."""
    return _field("int", default, help, lower=lower, upper=upper, **options)


def number(default, help, *, lower=None, upper=None, **options):
    """A float, optionally bounded (inclusive)."""
    return _field("float", default, help, lower=lower, upper=upper, **options)


def choice(default, choices, help, **options):
    """One of `choices` (an absl enum)."""
    return _field("choice", default, help, choices=tuple(choices), **options)


def text(default, help, *, optional=True, **options):
    """A string, usually a path; None (or an empty flag) is unset unless `optional=False`."""
    return _field("text", default, help, optional=optional, **options)


def int_list(default, help, **options):
    """A tuple of ints (`--name=1,2,3`); with `choices`, a subset in their order."""
    return _field("int_list", default, help, **options)


def float_list(default, help, **options):
    """A tuple of floats (`--name=0.9,1.1`)."""
    return _field("float_list", default, help, **options)


def choice_list(default, choices, help, **options):
    """A subset of `choices` as a tuple in their order (`--name=U,S`)."""
    return _field("choice_list", default, help, choices=tuple(choices), **options)


def text_list(default, help, **options):
    """A tuple of strings (`--name=a.jpg,b.jpg`)."""
    return _field("text_list", default, help, **options)


def bins(default, help, **options):
    """PFENet pyramid bins: ints >= 1 (sizes) or floats in (0, 1] (fractions)."""
    return _field("bins", default, help, **options)


def setting_of(field: dataclasses.Field) -> Setting | None:
    """The `Setting` of a dataclass field, or None for a plain field."""
    return field.metadata.get("setting")


def setting_fields(cls):
    """(field, Setting) of every setting of a config dataclass, in declaration order."""
    return [(f, setting_of(f)) for f in dataclasses.fields(cls) if setting_of(f) is not None]


def validate_fields(instance):
    """Validates and normalises every setting field of a frozen dataclass, in place.

    Called first thing in the `__post_init__` of each config group. Errors
    name the class and the field: "DataConfig: fold=7 is not accepted: ...".
    """
    name = type(instance).__name__
    for field, definition in setting_fields(type(instance)):
        value = definition.validate(getattr(instance, field.name), f"{name}: {field.name}")
        # The dataclass is frozen; the normalised value is set once, here.
        object.__setattr__(instance, field.name, value)
