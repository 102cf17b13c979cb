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
from lab.tracking.wandb_server import default_entity

# pages rendered from the records, never committed
DERIVED_FOLDERS = ("daily", "reports", "changelogs", "site", "listen")


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
    if wandb_project and not wandb_entity:
        wandb_entity = default_entity()[0]
    settings = {"entity": wandb_entity, "project": wandb_project, "mode": wandb_mode}
    if not wandb:
        settings["enabled"] = False
    elif wandb_project:
        settings["enabled"] = True
    store = Store.init(root, wandb=settings, prefixes=prefixes)
    logs = store.logs_dir.relative_to(store.root).as_posix()
    pages = [f"{logs}/{folder}/" for folder in DERIVED_FOLDERS] + [f"{logs}/ablations/*",
                                                                    f"!{logs}/ablations/index.json*"]
    ignored = (f"{store.settings['artefacts']}/", ".env", "wandb/", "/outputs/", "/multirun/", "/lightning_logs/",
               *pages)
    ignore_entries(store.root / ".gitignore", ignored)
    remote.configure_clone(store.root, logs)
    remote.untrack(store.root, [store.logs_dir / folder for folder in (*DERIVED_FOLDERS, "ablations")],
                   keep=[f"{logs}/ablations/index.json", f"{logs}/ablations/index.jsonl"])
    return store


def ignore_entries(ignore: Path, entries: tuple[str, ...]) -> None:
    """Append to the .gitignore at `ignore` each of `entries` it does not list yet (wandb/: a script's own W&B
    folder; /outputs/ and /multirun/: Hydra's run folders, /lightning_logs/: Lightning's, each anchored at the
    lab's root so that a code folder of that name deeper down stays tracked)."""
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    missing = [entry for entry in entries if entry not in lines]
    if missing:
        text = ignore.read_text() if ignore.exists() else ""
        separator = "\n" if text and not text.endswith("\n") else ""
        write_text(ignore, text + separator + "".join(f"{entry}\n" for entry in missing))


def wandb_line(store: Store, entity_given: bool) -> str | None:
    """What `lab init` says of the W&B links: the entity they use and where it came from, or that pages show
    the W&B run id without a link and how to set one; None while W&B has no project (no links)."""
    settings = store.settings.get("wandb", {})
    if not settings.get("project") or not settings.get("enabled", True):
        return None
    entity, source = settings.get("entity"), "--wandb-entity"
    if entity and not entity_given:
        found, source = default_entity()
        source = source if found == entity else "lab.json"
    if entity:
        return f"W&B links: https://wandb.ai/{entity}/{settings['project']}/... (entity {entity} from {source})"
    return ("W&B links: none, W&B knows no default entity here (WANDB_ENTITY, or `wandb login`), so pages show "
            "the W&B run id alone; set one with lab init --wandb-entity ENTITY")
