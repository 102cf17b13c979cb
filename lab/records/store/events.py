"""Events and notes: every action on a run (created, attempt started or ended, a note, a health finding) as a
line of logs/runs/<id>/events.jsonl, and the day's own notes (overview, insights) in logs/journal.jsonl.

Both files are only ever appended to, so the lines two clones wrote merge as a union.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lab.records.files import append_jsonl, read_jsonl
from lab.records.store.names import now_iso
from lab.records.store.place import Place

NOTE_FIELDS = ("findings", "observations", "conclusion", "next", "result")


def well_formed_event(event: dict) -> bool:
    """Whether an events.jsonl line has what the pages read: a kind, an ISO time, and a note's field and text."""
    if not isinstance(event.get("kind"), str) or not isinstance(event.get("time"), str):
        return False
    try:
        datetime.fromisoformat(event["time"])
    except ValueError:
        return False
    if event["kind"] == "note":
        return event.get("field") in NOTE_FIELDS and isinstance(event.get("text"), str)
    return True


def event_time(event: dict) -> datetime:
    """An event's time as an aware datetime (a time without offset is read as local time)."""
    return datetime.fromisoformat(event["time"]).astimezone()


def in_order(events: list[dict]) -> list[dict]:
    """Events in the order they happened: one clone's events keep the order it appended them (its sequence in the
    file), whatever its wall clock did (a clock stepped back by NTP or a resumed VM), and several clones' events
    interleave by time. Each event sorts at its time, or at its clone's previous event's when that is later."""
    latest: dict[Any, datetime] = {}
    keyed = []
    for index, event in enumerate(events):
        moment = max(event_time(event), latest.get(event.get("clone"), event_time(event)))
        latest[event.get("clone")] = moment
        keyed.append((moment, index, event))
    return [event for _, _, event in sorted(keyed, key=lambda item: item[:2])]


class Events:
    """The events of each run and the day journal of a lab (`store.events`)."""

    def __init__(self, place: Place):
        self.place = place

    def add(self, run_id: str, kind: str, **data: Any) -> dict:
        """Append an event to the run, stamped with this clone's id; an `attempt` number is also recorded as
        its folder (`attempt_key`), which stays right when a merge brings in attempts that started earlier."""
        if isinstance(data.get("attempt"), int) and not data.get("attempt_key"):
            folder = self.place.attempt_dir(run_id, data["attempt"])
            data["attempt_key"] = folder.name if folder.exists() else None
        event = {"time": now_iso(), "kind": kind, "clone": self.place.clone_id,
                 **self.place.redact({k: v for k, v in data.items() if v is not None})}
        append_jsonl(self.place.home(run_id) / "events.jsonl", event)
        return event

    def of(self, run_id: str) -> list[dict]:
        """The run's events in time order (lines merged from several clones interleave), each `attempt` the
        Test number its `attempt_key` has now; a line that is not a well-formed event is skipped."""
        path = self.place.run_dir(run_id) / "events.jsonl"
        events = [event for event in read_jsonl(path) if well_formed_event(event)]
        if any(event.get("attempt_key") for event in events):
            numbers = {folder.name: index for index, folder in enumerate(self.place.attempt_folders(run_id), 1)}
            for event in events:
                if event.get("attempt_key") in numbers:
                    event["attempt"] = numbers[event["attempt_key"]]
        return in_order(events)

    def add_journal(self, kind: str, text: str) -> dict:
        """A day-level note (`overview` or `insight`) not tied to a run."""
        event = {"time": now_iso(), "kind": kind, "text": self.place.detector.redact(text)}
        append_jsonl(self.place.logs_dir / "journal.jsonl", event)
        return event

    def journal(self) -> list[dict]:
        """The day notes of every day, in the order they were written; malformed lines skipped."""
        return [event for event in read_jsonl(self.place.logs_dir / "journal.jsonl") if well_formed_event(event)]
