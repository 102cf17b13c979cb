"""What changed between two attempts, in words and in figures: the daily page's "Decreased batch size to 2 and
increased grad accum steps to 16" from the attempts' configs (their overrides included) and commands, and the
metric deltas `lab diff` prints beside the config deltas."""

from __future__ import annotations

import shlex

from lab.errors import LabError
from lab.pages import results
from lab.records import config as config_tools
from lab.records.metrics import format_number
from lab.records.store import Store

WORDS_SHOWN = 4  # changes named in one sentence; the rest are counted


def parse_attempt(store: Store, spec: str) -> tuple[str, int | None]:
    """'RUN' (its headline attempt) or 'RUN:TEST' -> (run id, attempt number or None before any attempt);
    LabError for a run or attempt that does not exist, or a TEST that is not a number."""
    run_id, _, number = spec.partition(":")
    store.runs.load(run_id)
    if not number:
        return run_id, results.headline_attempt(store, run_id)
    if not number.isdigit():
        raise LabError(f"{spec!r}: write RUN or RUN:TEST, like nsd_004:2")
    store.attempts.load(run_id, int(number))
    return run_id, int(number)


def key_words(key: str) -> str:
    """'grad accum steps' for 'train.grad_accum_steps': the key's last part, as words."""
    return key.rsplit(".", 1)[-1].replace("_", " ").replace("-", " ")


def change_phrase(change: config_tools.Change) -> str:
    """'increased lr to 0.03', 'set optimizer to adamw', 'added dropout (0.1)', 'removed warmup'."""
    name, after = key_words(change.key), config_tools.format_value(change.after)
    if change.before is config_tools.MISSING:
        return f"added {name} ({after})"
    if change.after is config_tools.MISSING:
        return f"removed {name}"
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (change.before, change.after))
    if numbers:
        return f"{'increased' if change.after > change.before else 'decreased'} {name} to {after}"
    return f"set {name} to {after}"


def command_phrase(before: list[str], after: list[str]) -> str | None:
    """'added `--amp`; removed `--compile`' for the arguments one command has and the other lacks, else None."""
    added = [word for word in after if word not in before]
    removed = [word for word in before if word not in after]
    parts = [f"added `{shlex.join(added)}`"] if added else []
    parts += [f"removed `{shlex.join(removed)}`"] if removed else []
    return "; ".join(parts) or None


def unexplained(command: list[str], names: set[str]) -> list[str]:
    """The words of `command` left once the flags that set a config key of `names` (`--lr 0.05`, `--lr=0.05`,
    `--crash-at 45` for `crash_at`) and their values are taken out: what the config's changes do not already say."""
    kept, index = [], 0
    while index < len(command):
        word = command[index]
        flag = word.lstrip("-").partition("=")[0].replace("-", "_")
        index += 1
        if not (word.startswith("-") and flag in names):
            kept.append(word)
        elif "=" not in word and index < len(command) and not command[index].startswith("--"):
            index += 1  # the flag's value
    return kept


def command_change(store: Store, before: tuple[str, int], after: tuple[str, int],
                   changes: list[config_tools.Change]) -> str | None:
    """What attempt `after` ((run id, number)) ran differently from `before` in its command, beyond the flags that
    set a key of `changes` ('added `--amp`'); None when the commands say nothing more than the config does."""
    names = {change.key.rsplit(".", 1)[-1].replace("-", "_") for change in changes}
    commands = [unexplained(store.attempts.load(rid, number).get("command") or [], names)
                for rid, number in (before, after)]
    return command_phrase(*commands)


def attempt_change_words(store: Store, run_id: str, before: int, after: int) -> str | None:
    """What attempt `after` of a run changed from attempt `before`, as a sentence: its config changes (bookkeeping
    apart) by name, then the arguments its command added or dropped beside the flags that set those keys; None
    when both are the same."""
    changes = config_tools.diff(results.attempt_config(store, run_id, before),
                                results.attempt_config(store, run_id, after))
    tested = [change for change in changes if change.component != "bookkeeping"]
    parts = []
    if tested:
        phrases = [change_phrase(change) for change in tested[:WORDS_SHOWN]]
        more = len(tested) - WORDS_SHOWN
        text = ", ".join(phrases[:-1]) + (" and " if len(phrases) > 1 else "") + phrases[-1]
        parts.append(text + (f" (and {more} more: lab diff {run_id}:{before} {run_id}:{after})" if more > 0 else ""))
    parts += [words] if (words := command_change(store, (run_id, before), (run_id, after), changes)) else []
    text = "; ".join(parts)
    return text[0].upper() + text[1:] if text else None


def metric_lines(store: Store, first: tuple[str, int | None], second: tuple[str, int | None]) -> list[str]:
    """`lab diff`'s metric deltas: each held-out metric both attempts logged, at each one's kept step ('val/loss:
    0.53 -> 0.42 (-0.11, 20.8% lower (better))'), the judged metric first; [] when either has no metrics."""
    if first[1] is None or second[1] is None:
        return []
    summaries = [results.attempt_summary(store, rid, number) for rid, number in (first, second)]
    tables = [{row["metric"]: row for row in summary["rows"]} for summary in summaries]
    judged = (summaries[1]["result"] or summaries[0]["result"] or {}).get("metric")
    names = sorted(name for name in set(tables[0]) & set(tables[1])
                   if (name == judged or name.startswith("val/")) and not name.endswith(results.SE_SUFFIX)
                   and not results.size_metric(name))
    names.sort(key=lambda name: name != judged)
    lines = []
    for name in names:
        before, after = tables[0][name]["kept"], tables[1][name]["kept"]
        if before is None or after is None:
            continue
        words = results.change_words(before, after, tables[1][name]["mode"])
        lines.append(f"  {name}: {format_number(before)} -> {format_number(after)} "
                     f"({after - before:+.4g}, {words})")
    return lines
