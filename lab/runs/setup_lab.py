"""`lab init`: make a repository a lab (lab.json, logs/), keep what must not be committed out of git (the
artefacts folder, .env, a script's own wandb/ folder, the derived pages), and set this clone up to share the
records through its git remote."""

from __future__ import annotations

from pathlib import Path

from lab.errors import LabError
from lab.families import registry
from lab.launcher import remote
from lab.records.files import write_text
from lab.records.store import Store
from lab.records.store.names import PREFIX

DERIVED_FOLDERS = ("daily", "reports", "changelogs")  # pages rendered from the records, never committed


def parse_prefixes(items: list[str]) -> dict[str, str]:
    """{prefix: family} from `--prefix PREFIX=FAMILY` items; LabError for an item that is not one."""
    prefixes = dict(item.split("=", 1) for item in items if "=" in item)
    if len(prefixes) != len(items) or not all(PREFIX.match(prefix) for prefix in prefixes):
        raise LabError(PREFIX_FORM)
    return prefixes


PREFIX_FORM = "--prefix takes PREFIX=FAMILY with a lowercase prefix, for example nsd=neural_decoder"


def init_lab(root: Path, *, wandb_entity: str | None = None, wandb_project: str | None = None,
             wandb_mode: str | None = None, wandb: bool = True, prefixes: dict[str, str] | None = None) -> Store:
    """Make `root` a lab (or update its lab.json): W&B settings (a project turns its links on, `wandb=False`
    off), `prefixes` mapping run-id prefixes to families; returns it. LabError for a prefix that cannot start a
    run id, ConfigError for a family that is not installed."""
    prefixes = dict(prefixes or {})
    if not all(PREFIX.match(prefix) for prefix in prefixes):
        raise LabError(PREFIX_FORM)
    for family in prefixes.values():
        registry.get(family)
    settings = {"entity": wandb_entity, "project": wandb_project, "mode": wandb_mode}
    if not wandb:
        settings["enabled"] = False
    elif wandb_project:
        settings["enabled"] = True
    store = Store.init(root, wandb=settings, prefixes=prefixes)
    logs = store.logs_dir.relative_to(store.root).as_posix()
    pages = [f"{logs}/{folder}/" for folder in DERIVED_FOLDERS] + [f"{logs}/ablations/*",
                                                                    f"!{logs}/ablations/index.json*"]
    ignore_entries(store.root / ".gitignore", (f"{store.settings['artefacts']}/", ".env", "wandb/", *pages))
    remote.configure_clone(store.root, logs)
    remote.untrack(store.root, [store.logs_dir / folder for folder in (*DERIVED_FOLDERS, "ablations")],
                   keep=[f"{logs}/ablations/index.json", f"{logs}/ablations/index.jsonl"])
    return store


def ignore_entries(ignore: Path, entries: tuple[str, ...]) -> None:
    """Append to the .gitignore at `ignore` each of `entries` it does not list yet (wandb/: a script's own W&B
    folder)."""
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    missing = [entry for entry in entries if entry not in lines]
    if missing:
        text = ignore.read_text() if ignore.exists() else ""
        separator = "\n" if text and not text.endswith("\n") else ""
        write_text(ignore, text + separator + "".join(f"{entry}\n" for entry in missing))
