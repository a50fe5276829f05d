"""Settings of a run: one dataclass per run type (as CleanRL's `Args`), every default and help text in one place.

A field made with `setting(...)` is also the script's flag `--field-name` (plus any aliases); `parse` turns
the command line into the dataclass and tells which flags were given, so that a run read back from its
settings.json (`--resume`, `--test`) keeps what was saved and takes only what the user typed.
Each setting has a kind: "policy" (it shapes a saved policy: read back for --test and --resume, and may not
be changed), "environment" (the environment a saved policy was made for: read back like "policy", but a
test may change it, to test the policy in another environment), "training" (read back for --resume; what the
user types replaces it) or none (what to do and where: never read back).
"""
import argparse
import dataclasses
import types
import typing
from pathlib import Path

from .errors import InputError, flag_name


def setting(default, help: str, *, aliases: tuple[str, ...] = (), choices=None, kind: str | None = None,
            required: bool = False, minimum: float | None = None):
    """A dataclass field that is also a flag; list defaults are copied for every instance. `minimum`: the
    smallest value the flag accepts (None, where allowed, is always accepted)."""
    assert kind in (None, "policy", "environment", "training")
    metadata = {"help": help, "aliases": aliases, "choices": choices, "kind": kind, "required": required,
                "minimum": minimum}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _value_type(annotation):
    """(element type, is a list) of `int`, `float | None`, `list[int]`..."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


class OneLineParser(argparse.ArgumentParser):
    """A bad flag is one line, as every other input error, not the usage text."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser(cls, description: str) -> argparse.ArgumentParser:
    """The flags of a settings dataclass; defaults are left out of the namespace so that `parse` sees what
    was given, and shown in the help."""
    parser = OneLineParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                           argument_default=argparse.SUPPRESS)
    for field in dataclasses.fields(cls):
        names = [flag_name(field.name), *field.metadata["aliases"]]
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        help_text = field.metadata["help"] + ("" if default in (None, False) else f" (default: {shown})")
        help_text = help_text.replace("%", "%%")
        value_type, is_list = _value_type(field.type)
        if value_type is bool:
            parser.add_argument(*names, dest=field.name, action="store_true", help=help_text)
            continue
        parser.add_argument(*names, dest=field.name, type=value_type, nargs="+" if is_list else None,
                            choices=field.metadata["choices"], required=field.metadata["required"], help=help_text)
    return parser


def parse(cls, argv, description: str):
    """(settings, the settings given on the command line as a dict)."""
    parser = build_parser(cls, description)
    given = vars(parser.parse_args(argv))
    for field in dataclasses.fields(cls):
        minimum, value = field.metadata["minimum"], given.get(field.name)
        if minimum is not None and value is not None and value < minimum:
            parser.error(f"argument {flag_name(field.name)}: must be at least {minimum}, got {value}")
    return cls(**given), given


def to_dict(settings) -> dict:
    return dataclasses.asdict(settings)


def from_saved(current, saved: dict, given: dict, kinds: tuple[str, ...], source: Path,
               changeable: tuple[str, ...] = ()):
    """`current` settings with those of the given kinds read back from a saved settings.json (keys it lacks
    stay as they are), except what the user typed; a "policy" or "environment" setting typed differently is
    refused unless its kind is `changeable`."""
    values = to_dict(current)
    for field in dataclasses.fields(current):
        name, kind = field.name, field.metadata["kind"]
        if kind not in kinds or name not in saved:
            continue
        fixed = kind in ("policy", "environment") and kind not in changeable
        if name in given and fixed and given[name] != saved[name]:
            raise InputError(f"{source} was made with {name} = {saved[name]}, not {given[name]}; leave "
                             "the flag out or pick one made with it", name)
        if name not in given:
            values[name] = saved[name]
    return type(current)(**values)

