"""`lab note`: notes on a run (findings, observations, conclusion, next steps, result; on the run or one of its
attempts), a code change it makes, the attempt that speaks for it, and the day's own notes (overview,
insights); each committed once written, so that the next `git push` shares it."""

from __future__ import annotations

from pathlib import Path

from lab.errors import LabError
from lab.launcher import vcs
from lab.records.store import Store
from lab.records.store.events import NOTE_FIELDS


def note(store: Store, run_id: str | None = None, *, notes: dict[str, str | None] | None = None,
         attempt: int | None = None, change: str | None = None, component: str | None = None,
         headline: int | None = None, insight: str | None = None, overview: str | None = None) -> None:
    """Record notes: with `run_id`, `notes` ({field: text} for fields of NOTE_FIELDS; on Test `attempt` when
    given), a code `change` (touching `component`, default "code") and the `headline` attempt; without, the day
    notes `insight` and `overview`. LabError (one line) for a combination that says nothing or mixes the two."""
    notes = {field: text for field, text in (notes or {}).items() if text}
    unknown = set(notes) - set(NOTE_FIELDS)
    if unknown:
        raise LabError(f"unknown note field {sorted(unknown)[0]!r}: use one of {', '.join(NOTE_FIELDS)}")
    journal = {"insight": insight, "overview": overview}
    if run_id is None:
        return day_notes(store, journal, bool(notes))
    if any(journal.values()):
        raise LabError("--insight and --overview are day notes: give them without a run id")
    if notes.get("result") and attempt is None:
        raise LabError("--result is one Test's result: give it with --attempt N (lab note ID --attempt N --result ...)")
    if component and not change:
        raise LabError("--component names the part a code change touched: give it with --change TEXT")
    if not notes and headline is None and not change:
        raise LabError(f"nothing to note: give one of {', '.join('--' + f for f in NOTE_FIELDS)}, --change TEXT "
                       "or --headline N")
    store.runs.load(run_id)
    if change:
        store.events.add(run_id, "change", text=change, component=component or "code")
    if attempt is not None:
        store.attempts.load(run_id, attempt)
    if headline is not None:
        store.attempts.set_headline(run_id, headline)
    for field, text in notes.items():
        store.events.add(run_id, "note", field=field, text=text, attempt=attempt)
    commit_notes(store, [store.run_dir(run_id)], f"notes of {store.runs.load(run_id)['slug']}")


def day_notes(store: Store, journal: dict[str, str | None], run_notes: bool) -> None:
    """The day notes of `journal` ({"insight", "overview"}) written and committed; LabError when there are none,
    or when run notes came without a run id (`run_notes`)."""
    if run_notes:
        raise LabError("run notes (--findings, ...) need a run id: lab note ID --findings ...")
    if not any(journal.values()):
        raise LabError("give a run id with --findings/--observations/--conclusion/--next/--result, "
                       "or --insight/--overview")
    for kind, text in journal.items():
        if text:
            store.events.add_journal(kind, text)
    commit_notes(store, [store.logs_dir / "journal.jsonl"], "day notes")


def commit_notes(store: Store, paths: list[Path], what: str) -> None:
    """Commit the records `lab note` wrote (as a launch commits an ended attempt's), so that the next `git push`
    shares them and a `git pull --rebase` meets no uncommitted record. When git cannot commit now (mid-merge,
    detached HEAD, a refusing hook), the notes stay on disk, named on stderr, for the next commit."""
    vcs.commit_records_or_say(store.root, paths, what,
                              f"the {what} are saved in {', '.join(str(path) for path in paths)}")
