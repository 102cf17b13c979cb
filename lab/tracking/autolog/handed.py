"""The run's `--set` values handed to the script it launches (LAB_SET, a JSON object of dotted keys and values,
which `lab launch` sets beside LAB_CONFIG, the run's whole config). Nothing here ever ends or raises into the
script: what cannot be applied is kept in attempt.json's `set_unapplied` ({key: why}) and the launch, at its end,
names it as not confirmed.

- argparse: in each parse of the process's own command line (`sys.argv[1:]`, by a parser of the script, not of a
  tool), a key naming one of the parser's options (`hidden` or `--hidden`, dashes or underscores) becomes that
  option's value, converted by its `type=` and checked against its `choices`; the command line typing the option
  itself wins (the launcher has refused a visible disagreement before the attempt began). A key the parser has no
  option for (a subcommand's, a pre-parse's), or a value its `type=`/`choices` refuses, is left out.
- Hydra: each key becomes an override `key=value` of the composed config (`a.b=1`), unless the command line gives
  that key already (the command line's value stands).
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from lab.tracking import tracker

SET_VARIABLE = "LAB_SET"
PLAIN_TEXT = re.compile(r"[A-Za-z0-9_./:+-]*\Z")  # a Hydra override value that needs no quotes
TAKEN: set[str] = set()  # the keys a parse of this process applied
UNAPPLIED: dict[str, str] = {}  # {key: why} for the keys a parse of this process could not apply


def set_values() -> dict[str, Any]:
    """The dotted keys and values `--set` gave the run and the launch ({} outside a launch, or for none)."""
    try:
        values = json.loads(os.environ.get(SET_VARIABLE) or "{}")
    except json.JSONDecodeError:
        return {}
    return values if isinstance(values, dict) else {}


def note_unapplied(reasons: dict[str, str], taken: set[str]) -> None:
    """Keep in attempt.json's `set_unapplied` why each key no parse of this process took was left out."""
    TAKEN.update(taken)
    UNAPPLIED.update(reasons)
    left = {key: why for key, why in UNAPPLIED.items() if key not in TAKEN}
    current = tracker.current()
    if current.attempt_dir is not None and (left or taken):
        current.identity()[0].attempts.update(current.attempt_dir, set_unapplied=left)


def option_of(parser: Any, key: str) -> Any:
    """The parser's action that `key` names (its dest, or a long option spelled with dashes or underscores)."""
    wanted = key.lstrip("-").replace("-", "_")
    for action in parser._actions:
        names = [option.lstrip("-").replace("-", "_") for option in action.option_strings if option.startswith("--")]
        if action.option_strings and (action.dest == wanted or wanted in names):
            return action
    return None


def typed_on_command_line(parser: Any, action: Any, args: list[str]) -> bool:
    """Whether `args` give `action`'s option (`--hidden 64`, `--hidden=64`, `-H64`, and an abbreviation such as
    `--hid 64` where the parser allows them)."""
    for token in args:
        if token == "--":
            return False
        name = token.partition("=")[0]
        for option in action.option_strings:
            if token == option or token.startswith(option + "=") or \
                    (len(option) == 2 and not option.startswith("--") and token.startswith(option)) or \
                    (parser.allow_abbrev and name.startswith("--") and len(name) > 2 and option.startswith(name)):
                return True
    return False


def converted(parser: Any, action: Any, value: Any) -> tuple[Any, str | None]:
    """(`value` as the option's own parse would make it (its `type=`, `nargs`, `choices`), None), or (None, why
    it cannot be)."""
    import argparse

    if action.nargs == 0:  # store_true, store_false, store_const, count
        if isinstance(value, bool) or action.const is not None and value == action.const:
            return value, None
        return None, f"{action.option_strings[0]} is a flag of the script: give true or false"
    many = action.nargs not in (None, "?")
    tokens = [text_of(item) for item in value] if many and isinstance(value, list) else [text_of(value)]
    try:
        return parser._get_values(action, tokens), None
    except argparse.ArgumentError as error:
        return None, f"the script's {action.option_strings[0]} refuses {value!r} ({error.message})"


def text_of(value: Any) -> str:
    """A JSON value as a command line would type it (Python's True/False for booleans)."""
    return value if isinstance(value, str) else str(value)


def parses_own_command_line(args: Any) -> bool:
    """Whether a parse of `args` reads the process's own command line (`None`, or a copy of `sys.argv[1:]`)."""
    return args is None or list(args) == sys.argv[1:]


def prepared_defaults(parser: Any, args: Any) -> list[tuple[Any, Any, Any, str]]:
    """Make each `--set` value the default of the option it names (a required option counts as given), for one
    parse of `parser` (a script's) of `args`; returns [(action, (its old default, whether it was required), the
    run's value, its key)] for `restore_defaults` and `check_parsed`. Nothing for a parse of other arguments than
    the process's own; a key the parser has no option for, or whose value it refuses, is noted (`note_unapplied`)
    and left out."""
    values = set_values()
    if not values or not parses_own_command_line(args):
        return []
    changed, reasons = [], {}
    options = ", ".join(sorted(option for action in parser._actions for option in action.option_strings
                               if option.startswith("--") and option != "--help")) or "none"
    for key, value in values.items():
        action = option_of(parser, key)
        if action is None:
            reasons[key] = missing_reason(parser, key, options)
            continue
        wanted, why = converted(parser, action, value)
        if why:
            reasons[key] = why
            continue
        changed.append((action, (action.default, action.required), wanted, key))
        action.default, action.required = wanted, False  # the run's value counts as given
    note_unapplied(reasons, set())
    return changed


def missing_reason(parser: Any, key: str, options: str) -> str:
    """Why `key` names no option of `parser`: one of its subcommands has it (the lab sets the top-level parser's
    options only), or no parser does."""
    import argparse

    for action in parser._actions:
        for name, sub in action.choices.items() if isinstance(action, argparse._SubParsersAction) else ():
            if option_of(sub, key) is not None:
                return f"--{key.replace('_', '-')} is an option of its subcommand {name}, which the lab does not set"
    return f"the parser of its command line has no --{key.replace('_', '-')} (its options: {options})"


def restore_defaults(parser: Any, changed: list[tuple[Any, Any, Any, str]]) -> None:
    """Put back the defaults (and `required=`) `prepared_defaults` replaced (the script's parser is as it was)."""
    for action, (default, required), _, _ in changed:
        action.default, action.required = default, required


def check_parsed(parser: Any, namespace: Any, args: list[str] | None,
                 changed: list[tuple[Any, Any, Any, str]]) -> None:
    """Note the keys this parse took, and those the command line typed with another value (`-H 8`: the command
    line's value stands)."""
    given = sys.argv[1:] if args is None else list(args)
    taken, reasons = set(), {}
    for action, _, wanted, key in changed:
        got = getattr(namespace, action.dest, wanted)
        if got != wanted and typed_on_command_line(parser, action, given):
            reasons[key] = f"the command line gives {action.option_strings[0]} {text_of(got)}"
        else:
            taken.add(key)
    note_unapplied(reasons, taken)


def hydra_overrides(namespace: Any) -> None:
    """Add the `--set` values to the overrides of Hydra's parsed command line (`namespace.overrides`); a key the
    command line overrides with another value keeps the command line's (noted, `note_unapplied`)."""
    values, typed = set_values(), getattr(namespace, "overrides", None)
    if not values or not isinstance(typed, list):
        return
    given = {}
    for item in typed:
        name, sep, text = str(item).partition("=")
        if sep:
            given[name.lstrip("+~")] = text
    for key, value in values.items():
        text = override_text(value)
        if key not in given:
            typed.append(f"{key}={text}")
    note_unapplied({key: f"the command line overrides {key}={given[key]}" for key, value in values.items()
                    if key in given and given[key] != override_text(value)}, set())


def override_text(value: Any) -> str:
    """A JSON value in Hydra's override grammar: true/false/null, numbers, lists, text quoted where needed."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(override_text(item) for item in value) + "]"
    text = str(value)
    return text if PLAIN_TEXT.match(text) else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
