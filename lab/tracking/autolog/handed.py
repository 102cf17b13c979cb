"""The run's `--set` values handed to the script it launches (LAB_SET, a JSON object of dotted keys and values,
which `lab launch` sets beside LAB_CONFIG, the run's whole config):

- argparse: a key naming one of the parser's options (`hidden` or `--hidden`, dashes or underscores) becomes that
  option's value, converted by its `type=` and checked against its `choices`; the flag typed on the command line
  with another value, or a key no option of the script's parser names, ends the script before it runs with one
  `lab: error:` line (kept in attempt.json as `refused`).
- Hydra: each key becomes an override `key=value` of the composed config (`a.b=1`), unless the command line gives
  that key already (the same value: fine; another: refused).
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


def set_values() -> dict[str, Any]:
    """The dotted keys and values `--set` gave the run and the launch ({} outside a launch, or for none)."""
    try:
        values = json.loads(os.environ.get(SET_VARIABLE) or "{}")
    except json.JSONDecodeError:
        return {}
    return values if isinstance(values, dict) else {}


def refuse(message: str) -> None:
    """End the script before it runs: one `lab: error:` line, kept in attempt.json as `refused`; exit status 2
    (argparse's own for a bad command line)."""
    current = tracker.current()
    if current.attempt_dir is not None:
        try:
            current.identity()[0].attempts.update(current.attempt_dir, refused=message)
        except Exception:  # noqa: BLE001 - the line below still says why
            pass
    print(f"lab: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def option_of(parser: Any, key: str) -> Any:
    """The parser's action that `key` names (its dest, or a long option spelled with dashes or underscores)."""
    wanted = key.lstrip("-").replace("-", "_")
    for action in parser._actions:
        names = [option.lstrip("-").replace("-", "_") for option in action.option_strings if option.startswith("--")]
        if action.option_strings and (action.dest == wanted or wanted in names):
            return action
    return None


def typed_on_command_line(action: Any, args: list[str]) -> bool:
    """Whether `args` give `action`'s option (`--hidden 64`, `--hidden=64`, `-H64`)."""
    for token in args:
        if token == "--":
            return False
        for option in action.option_strings:
            if token == option or token.startswith(option + "=") or \
                    (len(option) == 2 and not option.startswith("--") and token.startswith(option)):
                return True
    return False


def converted(parser: Any, action: Any, key: str, value: Any) -> Any:
    """`value` as the option's own parse would make it (its `type=`, `nargs`, `choices`); refused when it
    cannot be."""
    import argparse

    if action.nargs == 0:  # store_true, store_false, store_const, count
        if isinstance(value, bool) or action.const is not None and value == action.const:
            return value
        refuse(f"--set {key}={value!r}: {action.option_strings[0]} is a flag of the script; give true or false")
    many = action.nargs not in (None, "?")
    tokens = [text_of(item) for item in value] if many and isinstance(value, list) else [text_of(value)]
    try:
        return parser._get_values(action, tokens)
    except argparse.ArgumentError as error:
        refuse(f"--set {key}={value!r}: the script's {action.option_strings[0]} refuses it ({error.message})")


def text_of(value: Any) -> str:
    """A JSON value as a command line would type it (Python's True/False for booleans)."""
    return value if isinstance(value, str) else str(value)


def prepared_defaults(parser: Any, strict: bool) -> list[tuple[Any, Any, Any]]:
    """Make each `--set` value the default of the option it names, for one parse of `parser` (a script's); returns
    [(action, its old default, the run's value)] for `restore_defaults` and `check_parsed`. `strict` (a full
    `parse_args`): a key naming no option is refused, with the options the script has."""
    values = set_values()
    if not values:
        return []
    changed, unknown = [], []
    for key, value in values.items():
        action = option_of(parser, key)
        if action is None:
            unknown.append(key)
            continue
        wanted = converted(parser, action, key, value)
        changed.append((action, action.default, wanted))
        action.default = wanted
    if unknown and strict:
        restore_defaults(parser, changed)
        options = ", ".join(sorted(option for action in parser._actions for option in action.option_strings
                                   if option.startswith("--") and option != "--help")) or "none"
        refuse(f"--set {', '.join(unknown)}: the script has no such option (its options: {options}); "
               "change the run with lab new-run --set KEY=VALUE for a key the script reads")
    return changed


def restore_defaults(parser: Any, changed: list[tuple[Any, Any, Any]]) -> None:
    """Put back the defaults `prepared_defaults` replaced (the script's parser is as it was)."""
    for action, default, _ in changed:
        action.default = default


def check_parsed(namespace: Any, args: list[str] | None, changed: list[tuple[Any, Any, Any]]) -> None:
    """Refuse a parse where the command line typed an option the run sets, with another value."""
    given = sys.argv[1:] if args is None else list(args)
    for action, _, wanted in changed:
        got = getattr(namespace, action.dest, wanted)
        if got != wanted and typed_on_command_line(action, given):
            refuse(f"the command line gives {action.option_strings[0]} {text_of(got)} but the run sets "
                   f"{action.dest}={text_of(wanted)} (--set); drop one of them")


def hydra_overrides(namespace: Any) -> None:
    """Add the `--set` values to the overrides of Hydra's parsed command line (`namespace.overrides`), refusing a
    key the command line overrides with another value."""
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
        if key in given and given[key] != text:
            refuse(f"the command line overrides {key}={given[key]} but the run sets {key}={text} (--set); "
                   "drop one of them")
        if key not in given:
            typed.append(f"{key}={text}")


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
