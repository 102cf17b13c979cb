"""Rendering pages from the records only, through jinja2 templates in templates/.

A lab may override any template by putting a file of the same name in its own `templates/` folder.
Rendering the same records twice gives the same bytes: pages carry no generation time.
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
from datetime import date, datetime
from pathlib import Path

from lab.health.diagnosis import run_findings
from lab.launcher import vcs
from lab.pages import escape, results, verdicts
from lab.pages.changes import attempt_change_words
from lab.pages.verdicts import why_stopped
from lab.pages.results import attempt_config, headline_attempt
from lab.records import config as config_tools
from lab.records import metrics
from lab.records.files import write_text
from lab.records.store import Store
from lab.records.store.events import NOTE_FIELDS
from lab.records.times import seconds_text
from lab.records.store.names import shortened


def package_templates() -> Path:
    """The project's templates: `templates/` beside `lab/` in a checkout or an editable install, else the copy
    an installed wheel puts in `<prefix>/share/lab/templates` (pyproject.toml's data-files)."""
    checkout = Path(__file__).resolve().parents[2] / "templates"
    return checkout if checkout.is_dir() else Path(sys.prefix) / "share" / "lab" / "templates"


PACKAGE_TEMPLATES = package_templates()
NOTE_LABELS = {"findings": "Findings", "observations": "Observations", "conclusion": "Conclusion",
               "next": "Next steps", "result": "Result"}


@functools.lru_cache(maxsize=8)
def environment(root: Path, own: tuple[str, ...] = ()):
    """The jinja2 environment of the lab at `root`: its own templates first, then the project's. `own` (the names
    in the lab's templates/, `own_templates`) keys the cache: a template the lab adds is found, not the project's
    one already loaded."""
    import jinja2

    loader = jinja2.FileSystemLoader([str(root / "templates"), str(PACKAGE_TEMPLATES)])
    env = jinja2.Environment(loader=loader, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = metrics.format_number
    env.filters["figure"] = metrics.figure_text
    env.filters["memory"] = metrics.memory_text  # bytes
    env.filters["mib"] = lambda mib: metrics.memory_text(None if mib is None else mib * metrics.MIB)
    env.filters["value"] = config_tools.format_value
    env.filters.update(escape.FILTERS)
    return env


def own_templates(root: Path) -> tuple[str, ...]:
    """The names of the files in the lab's own templates/ folder, sorted; () without one."""
    try:
        return tuple(sorted(os.listdir(root / "templates")))
    except OSError:
        return ()


def render(store: Store, template: str, path: Path, **context) -> Path:
    """Render `template` with `context` to `path` (written only when the bytes changed)."""
    text = environment(store.root, own_templates(store.root)).get_template(template).render(**context)
    text = text.rstrip("\n") + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_text(path, text)
    return path


def display_title(run: dict, limit: int = 70) -> str:
    """The run's title in words: its --title, else its hypothesis, else its slug title, shortened to `limit`
    characters at a word boundary (`names.shortened`)."""
    text = run.get("title_text") or run.get("hypothesis") or run["title"].replace("_", " ")
    return shortened(text, limit)


def reference_config(store: Store, run: dict) -> tuple[str, dict] | None:
    """What a run's setup is described against: its parent's config (as its headline attempt ran), else its
    baseline's, else None."""
    if run.get("parent") and store.exists(run["parent"]):
        parent = run["parent"]
        return parent, attempt_config(store, parent, headline_attempt(store, parent))
    snapshot = store.baselines.get(run["baseline"]) if run.get("baseline") else None
    if snapshot:
        return run["baseline"], snapshot["config"]
    return None


def setup_changes(store: Store, run: dict) -> tuple[str | None, list[config_tools.Change]]:
    """(what it is compared with, key-level changes) for a run's setup section."""
    reference = reference_config(store, run)
    if reference is None:
        return None, []
    name, base = reference
    return name, config_tools.diff(base, attempt_config(store, run["id"], headline_attempt(store, run["id"])))


def setup_text(run: dict, reference: str | None) -> str:
    """A run's setup in words, as markdown: its family and preset, and what it is compared with, each where there
    is one ("neural_decoder (preset `tiny`), against nsd_001"; "against sine_011"; "" for neither)."""
    parts = []
    if run.get("family"):
        parts.append(run["family"] + (f" (preset {escape.code(run['preset'])})" if run.get("preset") else ""))
    if reference:
        parts.append(f"against {reference}")
    return ", ".join(parts)


def duration_text(attempt: dict) -> str | None:
    """How long an ended attempt took, '3m 12s', or None while it runs. Its `seconds` (the monotonic clock's) when
    recorded, else the time between its start and end stamps; a wall clock that stepped meanwhile is said
    ('9s (the wall clock stepped back 1h 0m meanwhile)'), and a negative time is never shown."""
    if not attempt.get("started") or not attempt.get("ended"):
        return None
    seconds = attempt.get("seconds")
    jump = attempt.get("clock_jump_s")
    if not isinstance(seconds, (int, float)):
        ended, started = (datetime.fromisoformat(attempt[key]) for key in ("ended", "started"))
        seconds = (ended - started).total_seconds()
        if seconds < 0:
            return f"unknown (the wall clock stepped back {seconds_text(-seconds)} meanwhile)"
    text = seconds_text(seconds)
    if isinstance(jump, (int, float)) and jump:
        step = abs(jump) if abs(jump) < 60 else round(abs(jump) / 60) * 60  # its stamps are to the second
        text += f" (the wall clock stepped {'back' if jump < 0 else 'forward'} {seconds_text(step)} meanwhile)"
    return text


def command_text(attempt: dict) -> str:
    """The command a researcher would type to repeat the attempt."""
    if attempt.get("invocation"):
        return attempt["invocation"]
    return shlex.join(attempt.get("command", []))


def reproduce_text(attempt: dict) -> str:
    """`command_text`, and for a wrapped command also the command alone with the variables its launch set
    (USE_TORCH_XLA=0 ...), so it runs the same without the lab."""
    text = command_text(attempt)
    variables = attempt.get("launch_environment")
    if variables and attempt.get("command") and not attempt.get("builtin_trainer"):
        assignments = " ".join(f"{key}={shlex.quote(str(value))}" for key, value in sorted(variables.items()))
        text += "\n# without the lab, with the variables the launch set:\n" \
            f"{assignments} {shlex.join(attempt['command'])}"
    return text


def resumed_text(store: Store, run_id: str, attempt: dict) -> str | None:
    """'resumed from Test N at step S' for an attempt started from an earlier attempt's checkpoint, else None
    (or the checkpoint's path when no attempt of the run recorded it)."""
    path = attempt.get("resume_from")
    if not path:
        return None
    for earlier in store.attempts.of(run_id):
        for checkpoint in (earlier.get("checkpoints") or {}).values():
            if earlier["number"] < attempt["number"] and checkpoint.get("path") == path:
                return f"resumed from Test {earlier['number']} at step {checkpoint.get('step')}"
    return f"resumed from {path}"


def attempt_view(store: Store, run: dict, attempt: dict, events: list[dict]) -> dict:
    """What the pages show of one attempt."""
    number = attempt["number"]
    notes = [(NOTE_LABELS[e["field"]], e["text"]) for e in events if e["kind"] == "note" and e.get("attempt") == number]
    previous = max((n for n in store.attempts.numbers(run["id"]) if n < number), default=None)
    return {
        "number": number,
        "note": attempt.get("note"),
        "command": command_text(attempt),
        "status": attempt.get("status"),
        "exit_code": attempt.get("exit_code"),
        "started": attempt.get("started"),
        "ended": attempt.get("ended"),
        "duration": duration_text(attempt),
        "wandb": attempt.get("wandb"),
        "resumed": resumed_text(store, run["id"], attempt),
        "disagreements": attempt.get("config_disagreements") or {},
        "unconfirmed": attempt.get("set_unconfirmed") or {},
        "git": attempt.get("git") or {},
        "notes": notes,
        "stopped": why_stopped(store, run["id"], attempt),
        "result": results.attempt_result(store, run["id"], number),
        "previous": previous,
        "changed": attempt_change_words(store, run["id"], previous, number) if previous else None,
    }


def run_view(store: Store, run_id: str, day: date | None = None) -> dict:
    """What the pages show of one run; with `day`, only the attempts and notes of that day."""
    run = store.runs.load(run_id)
    events = store.events.of(run_id)
    in_view = [e for e in events if day is None or store.day(e["time"]) == day]
    attempts = [
        attempt_view(store, run, attempt, events)
        for attempt in store.attempts.of(run_id)
        if day is None
        or store.day(attempt["started"]) == day
        or (attempt.get("ended") and store.day(attempt["ended"]) == day)
    ]
    notes = [
        (NOTE_LABELS[field], texts)
        for field in NOTE_FIELDS
        if (texts := [e["text"] for e in in_view if e["kind"] == "note" and e.get("field") == field
                      and not e.get("attempt")])
    ]
    reference, changes = setup_changes(store, run)
    latest_wandb = next((a["wandb"] for a in reversed(attempts) if a.get("wandb")), None)
    headline = headline_attempt(store, run_id)
    summary = results.attempt_summary(store, run_id, headline) if headline else {"result": None, "rows": []}
    return {
        "run": run,
        "title": display_title(run),
        "continued": day is not None and any(store.day(e["time"]) < day for e in events),
        "wandb": latest_wandb,
        "reference": reference,
        "setup": setup_text(run, reference),
        "changes": changes,
        "attempts": attempts,
        "notes": notes,
        "findings": run_findings(store, run_id, headline),
        "headline": headline,
        "result": summary["result"],
        "metrics": summary["rows"],
        "verdict": verdicts.run_verdict(store, run, headline),
        "report": f"../reports/{run_id}.md" if store.attempts.latest_with_metrics(run_id) else None,
        "listening": listening_link(store, run_id, day),
    }


def listening_link(store: Store, run_id: str, day: date | None = None) -> dict | None:
    """{"page": the run's listening page (from a daily or report page), "made": how many samples it has (made on
    `day`, when given)}, or None when there are none (then the run has no listening page)."""
    from lab.records import samples

    times = [line.get("time") for number in store.attempts.numbers(run_id)
             for line in samples.of_attempt(store.attempt_dir(run_id, number))]
    if not times:
        return None
    made = sum(1 for time in times if day is None or (time and store.day(time) == day))
    return {"page": f"../listen/{run_id}.md", "made": made}


def latest_profile(store: Store, run_id: str) -> dict | None:
    """The components of the run's latest `lab profile` (peak tensor memory of one training step, MiB)."""
    profiles = [event for event in store.events.of(run_id) if event["kind"] == "profile"
                and isinstance(event.get("components"), dict)]
    return profiles[-1]["components"] if profiles else None


def active_days(store: Store) -> list[date]:
    """Every day with an event on any run or in the journal, oldest first."""
    days = {store.day(e["time"]) for run_id in store.readable_run_ids() for e in store.events.of(run_id)}
    days |= {store.day(e["time"]) for e in store.events.journal()}
    return sorted(days)


def daily_logs(store: Store, day: date | None = None, every_day: bool = False) -> list[Path]:
    """`lab log`: the daily page of `day` (default: today in the lab's zone), or with `every_day` of every day
    with activity; returns their paths."""
    days = active_days(store) if every_day else [day or store.today()]
    return [daily_log(store, one) for one in days]


def daily_log(store: Store, day: date, run_ids: list[str] | None = None) -> Path:
    """Write logs/daily/<day>.md from the records and return its path. `run_ids`: the runs with an event that day
    when the caller knows them (`lab render`'s derived facts), else every readable run is read."""
    return render(store, "daily.md.j2", store.logs_dir / "daily" / f"{day.isoformat()}.md",
                  **day_context(store, day, run_ids))


def day_context(store: Store, day: date, run_ids: list[str] | None = None) -> dict:
    """What a daily page shows (the Markdown one and the site's): {"day": ISO date, "overview" and "insights"
    (texts of that day's journal), "experiments" (`run_view` of each run active that day, by its first event),
    "commits" (`vcs.commits_on`)}; `run_ids` as `daily_log`."""
    candidates = store.readable_run_ids() if run_ids is None else run_ids
    events = {rid: [e for e in store.events.of(rid) if store.day(e["time"]) == day] for rid in candidates}
    run_ids = [rid for rid, on_day in events.items() if on_day]
    first_event = {rid: min(e["time"] for e in events[rid]) for rid in run_ids}
    journal = [e for e in store.events.journal() if store.day(e["time"]) == day]
    return {"day": day.isoformat(),
            "overview": [e["text"] for e in journal if e["kind"] == "overview"],
            "insights": [e["text"] for e in journal if e["kind"] == "insight"],
            "experiments": [run_view(store, rid, day) for rid in sorted(run_ids, key=lambda r: (first_event[r], r))],
            "commits": vcs.commits_on(store.root, day, store.zone)}
