"""The `lab` command: each command parses its arguments, calls one function of the Python API (lab.api) and prints
what it returns. Imports no torch at start-up."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shlex
import sys
from datetime import date
from typing import TextIO

from lab import api
from lab.errors import ConfigError, LabError, RecordError, say, warn
from lab.families import registry
from lab.families.spec import Command
from lab.records.store.attempts import FINAL_STATUSES
from lab.records.store.events import NOTE_FIELDS

RUN_STATUSES = ("created", "running", *FINAL_STATUSES, "unreadable")

EXAMPLES = {
    "init": "lab init --wandb-entity my-team --wandb-project dia-music-finetuning --prefix nsd=neural_decoder",
    "new-run": ('lab new-run dia_009 --hypothesis "MusicGen delay needs the full-size decoder" --group musicgen_delay'
                "   |   lab new-run nsd_010 --from nsd_009 --init-from best --hypothesis \"fine-tune\""),
    "launch": 'lab launch dia_009 --note "batch 4, grad accum 1" -- python my_train.py --lr 2e-4',
    "note": 'lab note dia_009 --findings "..." --conclusion "..."   |   lab note --insight "..."',
    "runs": ("lab runs --status crashed,failed     (runs whose latest attempt crashed or failed; also killed)   |   "
             "lab runs --family neural_decoder --status finished --since 2026-11-01   |   "
             "lab runs --group lr_ablation --where 'val/loss.best < 0.5' --sort val/loss.best   |   "
             "lab runs --columns id,config.optim.lr,val/loss.best,verdict --sort 'val/loss.best desc'   |   "
             "lab runs --where 'config.model.dropout == 0.1' --format csv"),
    "export": ("lab export --out artefacts/exports/   (git-ignored, as lab init ignores artefacts/)   |   "
               "lab export --out artefacts/exports/ --format csv"),
    "tag": "lab tag dia_009 +best -draft   |   lab runs --tag best",
    "show": "lab show dia_009 --json",
    "diff": "lab diff nsd_002            (against its baseline)   |   lab diff nsd_002 nsd_003",
    "log": "lab log 2026-11-22   |   lab log --all",
    "sync": "lab sync",
    "baseline": ("lab baseline add my_baseline --repo https://github.com/me/project --config configs/base.json   |   "
                 "lab baseline attach my_baseline exp_001 exp_002"),
    "changelog": ("lab changelog cffan_baseline   |   "
                  "lab changelog cffan_baseline --status 'train.grad_clip=✅ critical fix'"),
    "compare": "lab compare nsd_004 nsd_005 nsd_006   |   lab compare --group lr_ablation",
    "report": "lab report nsd_006",
    "doctor": "lab doctor nsd_006",
    "render": "lab render   |   lab render --html",
    "site": "lab site   |   lab site --branch && git push   |   lab site --out /tmp/lab-site",
    "serve": "lab serve   |   lab serve --port 8080",
    "rm": "lab rm dia_009   |   lab rm dia_009 --yes",
    "rename": "lab rename dia_001 dia_004",
}


def one_line_os_error(error: OSError) -> str:
    """An OS error (a full disk, a folder where a file should be, a name too long) as one readable line."""
    if error.strerror is None:
        return str(error)
    where = f": {error.filename}" if error.filename else ""
    return f"{error.strerror.lower()}{where}"


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise LabError(f"invalid date {text!r}: use YYYY-MM-DD") from None


# -- commands: each parses nothing more than argparse did, calls one function of lab.api, and prints ------------


def cmd_init(args) -> int:
    from lab.runs.setup_lab import parse_prefixes, wandb_line

    store = api.init(wandb_entity=args.wandb_entity, wandb_project=args.wandb_project, wandb_mode=args.wandb_mode,
                     wandb=not args.no_wandb, prefixes=parse_prefixes(args.prefix))
    logs = store.logs_dir.relative_to(store.root).as_posix()
    print(f"lab ready at {store.root} (records in {logs}/; this clone is {store.clone_id[:8]})")
    line = wandb_line(store, entity_given=bool(args.wandb_entity))
    if line:
        print(line)
    return 0


def cmd_new_run(args) -> int:
    record = api.new_run(args.id, next_free=args.next, hypothesis=args.hypothesis, family=args.family,
                         preset=args.preset, title=args.title, group=args.group, tags=args.tag, parent=args.parent,
                         config_file=args.config, overrides=args.set, init_from=args.init_from,
                         baseline=args.baseline, expect=args.expect)
    print(f"created {record['id']} ({record['slug']})")
    for line in record.get("summary_lines", []):
        print(f"  {line}")
    return 0


def cmd_launch(args) -> int:
    return api.launch(args.id, args.command or None, overrides=args.set, note=args.note, commit=not args.no_commit,
                      processes=args.processes, resume=args.resume, seeds=args.seeds,
                      metrics_pattern=args.metrics_pattern, nodes=args.nodes, node_rank=args.node_rank,
                      main_address=args.main_address, invocation=shlex.join(["lab", *args.argv]))


def cmd_note(args) -> int:
    api.note(args.id, **{field: getattr(args, field) for field in NOTE_FIELDS}, attempt=args.attempt,
             change=args.change, component=args.component, headline=args.headline, insight=args.insight,
             overview=args.overview)
    return 0


def cmd_runs(args) -> int:
    statuses = [part.strip() for part in (args.status or "").split(",") if part.strip()]
    unknown = [status for status in statuses if status not in RUN_STATUSES]
    if unknown:
        raise LabError(f"--status {unknown[0]}: a run's status is one of {', '.join(RUN_STATUSES)}")
    asks = (args.where, args.sort, args.columns, args.format, args.limit, args.until, args.tag, args.search)
    if not (args.attempts or len(statuses) > 1 or any(value is not None and value != [] for value in asks)):
        from lab.runs.listing import table

        rows = api.list_runs(family=args.family, status=statuses[0] if statuses else None, group=args.group,
                             since=parse_day(args.since) if args.since else None)
        print(json.dumps(rows, indent=2, sort_keys=True) if args.json else table(rows))
        return 0
    return print_table(args, statuses)


def print_table(args, statuses: list[str]) -> int:
    """`lab runs` with a question (--where, --sort, --columns, --format ...): the runs table, filtered."""
    from lab.runs import table

    columns = args.columns or ",".join(table.LISTED)
    config, measured = table.parts_needed(args.where, args.sort, columns)
    rows = api.runs(attempts=args.attempts, where=args.where, sort=args.sort, columns=columns, limit=args.limit,
                    status=statuses, family=args.family, group=args.group, tags=args.tag or [],
                    since=parse_day(args.since) if args.since else None, search=args.search,
                    until=parse_day(args.until) if args.until else None, config=config, measured=measured)
    answer = table.text(rows, args.format or ("json" if args.json else "table"))
    if answer:  # an empty jsonl answer prints nothing, not a blank line
        print(answer)
    return 0


def cmd_tag(args) -> int:
    tags = api.tag(args.id, args.changes)
    print(f"{args.id}: {', '.join(tags) if tags else 'no tags'}")
    return 0


def cmd_export(args) -> int:
    for path in api.export(args.out, format=args.format):
        print(path)
    return 0


def cmd_rm(args) -> int:
    if not args.yes:
        from lab.runs.removal import removal_question

        question = removal_question(api.lab_at(), args.id)
        if not sys.stdin.isatty():
            raise LabError(f"lab rm asks before removing; add --yes to remove {args.id} without asking")
        if input(question).strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return 1
    print(api.remove(args.id))
    return 0


def cmd_rename(args) -> int:
    print(api.rename(args.old, args.new))
    return 0


def cmd_show(args) -> int:
    from lab.runs.listing import describe

    details = api.show(args.id)
    print(json.dumps(details, indent=2, sort_keys=True) if args.json else describe(details))
    return 0


def cmd_diff(args) -> int:
    print(api.diff(args.a, args.b))
    return 0


def cmd_log(args) -> int:
    for path in api.log(parse_day(args.date) if args.date else None, every_day=args.all):
        print(path)
    return 0


def cmd_sync(args) -> int:
    def progress(run_id: str, number: int, ok: bool, message: str) -> None:
        print(f"{run_id} test {number}: {message}", flush=True)

    results = api.sync(progress)
    pending = sum(not ok for _, _, ok, _ in results)
    if pending:
        say(f"{pending} attempt(s) still pending sync")
        return 1
    print("nothing pending" if not results else "all synced")
    return 0


def cmd_changelog(args) -> int:
    for path in api.changelog(args.baseline, status=args.status, current=args.current):
        print(path)
    return 0


def cmd_baseline(args) -> int:
    from lab.runs.baselines import baseline_line

    if args.action == "attach":
        attached = api.attach_baseline(args.name, args.runs)
        already = [run_id for run_id in dict.fromkeys(args.runs) if run_id not in attached]
        if attached:
            print(f"baseline {args.name}: {', '.join(attached)} now use{'s' if len(attached) == 1 else ''} it; "
                  f"lab changelog {args.name} renders their changes")
        if already:
            print(f"baseline {args.name}: {', '.join(already)} already use{'s' if len(already) == 1 else ''} it")
        return 0
    if args.runs:
        raise LabError(f"lab baseline add takes no run ids; to make runs join it: lab baseline attach {args.name} "
                       + " ".join(args.runs))
    snapshot = api.add_baseline(args.name, config_file=args.config, from_run=args.from_run, repository=args.repo,
                                reference=args.reference)
    print(baseline_line(args.name, snapshot))
    return 0


def cmd_compare(args) -> int:
    path = api.compare(args.ids, group=args.group, name=args.name)
    if args.group:
        print(api.group_reference(args.group))
    print(path)
    return 0


def cmd_report(args) -> int:
    print(api.report(args.id, args.attempt))
    return 0


def cmd_doctor(args) -> int:
    from lab.health.diagnosis import doctor_text

    findings = api.doctor(args.id, args.attempt, record=not args.dry_run)
    print(doctor_text(api.lab_at(), args.id, args.attempt, findings))
    return 0


def cmd_render(args) -> int:
    for path in api.render():
        print(path)
    if args.html:
        print(api.site()[0])
    return 0


def cmd_serve(args) -> int:
    server = api.serve(args.host, args.port)
    host, port = server.server_address[:2]
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"serving the lab's pages to the network on {host}:{port} (read-only)")
    print(f"serving the lab's pages on http://{host}:{port}/index.html (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_site(args) -> int:
    pages = api.site(args.out, branch=args.branch)
    print(f"{len(pages)} pages; open {pages[0]}")
    if args.branch:
        print("committed to the lab-pages branch; git push carries it")
    return 0


# -- parser ----------------------------------------------------------------------------------------------


def build_parser(families: bool = True) -> argparse.ArgumentParser:
    """The `lab` parser: the notebook's commands, and with `families` those of the installed families (finding
    them imports each family's config module, about 60 ms)."""
    parser = argparse.ArgumentParser(
        prog="lab",
        description="A research lab notebook: runs, attempts, configs, git and W&B capture, rendered pages.",
    )
    parser.add_argument("--version", action="version", version=f"lab {lab_version()}")
    commands = parser.add_subparsers(dest="name", metavar="COMMAND", required=True)

    def command(name: str, handler, summary: str, example: str | None = None) -> argparse.ArgumentParser:
        examples = (example or EXAMPLES[name]).split("   |   ")
        sub = commands.add_parser(
            name, help=summary, description=summary,
            epilog="examples:\n" + "\n".join(f"  {line.strip()}" for line in examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    sub = command("init", cmd_init, "Make the current repository a lab (lab.json, logs/, .gitignore entries).")
    sub.add_argument("--wandb-entity", help="W&B team or user that owns the project (for links)")
    sub.add_argument("--wandb-project", help="W&B project of every run (turns W&B links on)")
    sub.add_argument("--wandb-mode", choices=["offline", "online"], help="how launched runs log to W&B")
    sub.add_argument("--no-wandb", action="store_true", help="record no W&B links")
    sub.add_argument("--prefix", action="append", default=[], metavar="PREFIX=FAMILY",
                     help="map a run-id prefix to a family (repeatable)")

    sub = command("new-run", cmd_new_run, "Create a run: hypothesis, family, config, baseline, group.")
    sub.add_argument("id", help="run id like dia_009, or a prefix with --next")
    sub.add_argument("--next", action="store_true", help="ID is a prefix: take its next free number")
    sub.add_argument("--hypothesis", required=True, help="what the run is meant to show, in one sentence")
    sub.add_argument("--expect", metavar="EXPR",
                     help="what the hypothesis predicts, checked at the kept checkpoint: metrics, numbers, run ids, "
                          "+ - * / and < <= > >=, e.g. \"val/eer_16 <= 1.2 * val/eer_64\" or \"val/per < nsd_001\"")
    sub.add_argument("--family", help="model family with a built-in trainer")
    sub.add_argument("--preset", help="family preset (default: baseline)")
    sub.add_argument("--title", help="short title for the slug (default: from the hypothesis)")
    sub.add_argument("--group", help="W&B group / ablation group")
    sub.add_argument("--tag", action="append", default=[], help="a free tag (repeatable)")
    sub.add_argument("--from", dest="parent", metavar="RUN", help="copy config, family and baseline of RUN")
    sub.add_argument("--config", help="JSON config file")
    sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override (repeatable)")
    sub.add_argument("--baseline", metavar="NAME", help="the baseline the run changes (lab baseline add NAME ...)")
    sub.add_argument("--init-from", metavar="best|last|PATH[:KEY]",
                     help="start from these weights: the --from run's best or last checkpoint, or a file")

    sub = command("launch", cmd_launch, "Run a command (after --) or the family trainer as a new attempt.")
    sub.usage = ("lab launch [-h] [--set KEY=VALUE] [--note NOTE] [--no-commit] [--processes N] [--resume] "
                 "[--seeds N] [--metrics-pattern REGEX] [--nodes N --node-rank R --main-address HOST:PORT] "
                 "ID [-- CMD ...]")
    sub.add_argument("id", help="the run this attempt belongs to")
    sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for this attempt")
    sub.add_argument("--note", help="what this attempt changes (shown as 'Test N: note')")
    sub.add_argument("--no-commit", action="store_true", help="record the dirty diff instead of committing")
    sub.add_argument("--processes", type=int, default=1, metavar="N",
                     help="processes for the built-in trainer (accelerate)")
    sub.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    sub.add_argument("--seeds", type=int, metavar="N",
                     help="launch the built-in trainer N times with train.seed = the run's seed, +1, ...; pages then "
                          "compare the mean and spread over seeds")
    sub.add_argument("--metrics-pattern", metavar="REGEX",
                     help=r"turn printed lines into rows: named groups are metrics, 'step' the step, e.g. "
                          r"'step (?P<step>\d+) loss (?P<loss>\S+)' (default: lab.json capture.metrics_pattern)")
    sub.add_argument("--nodes", type=int, default=1, metavar="N",
                     help="machines of a multi-node launch: run the same command on each, with its --node-rank")
    sub.add_argument("--node-rank", type=int, default=0, metavar="R",
                     help="this machine's rank; node 0 records the attempt, the others log under artefacts")
    sub.add_argument("--main-address", metavar="HOST:PORT", help="node 0's address, where the nodes meet")

    sub = command("note", cmd_note, "Add notes to a run (or an attempt), or day notes.")
    sub.add_argument("id", nargs="?", help="the run (none for --insight and --overview)")
    for field in NOTE_FIELDS:
        sub.add_argument(f"--{field}", metavar="TEXT", help="Test N's result (shown on its pages); needs ID and "
                         "--attempt N" if field == "result" else f"the run's {field} (shown on its pages; with "
                         "--attempt N, Test N's); needs ID")
    sub.add_argument("--attempt", type=int, metavar="N", help="attach the note to attempt N (Test N); needs ID")
    sub.add_argument("--change", metavar="TEXT", help="a code change the run makes (the changelog lists it); "
                     "needs ID")
    sub.add_argument("--component", metavar="NAME", help="what --change touches: schedule, model, data, ...; "
                     "needs --change")
    sub.add_argument("--headline", type=int, metavar="N",
                     help="attempt N speaks for the run on its pages (default: its best attempt)")
    sub.add_argument("--insight", help="a key insight of the day; without ID")
    sub.add_argument("--overview", help="the day's overview paragraph; without ID")

    sub = command("runs", cmd_runs, "List runs as a table, or ask a question of them (--where, --sort).")
    sub.add_argument("--family", help="only runs of this family")
    sub.add_argument("--status", metavar="STATUS[,STATUS]",
                     help=f"only runs whose latest attempt has one of these statuses ({', '.join(RUN_STATUSES)}; "
                          "crashed: the process died without a clean exit; failed: it exited non-zero)")
    sub.add_argument("--group", help="only runs of this group")
    sub.add_argument("--since", metavar="YYYY-MM-DD", help="only runs created on or after this day")
    sub.add_argument("--until", metavar="YYYY-MM-DD", help="only runs created on or before this day")
    sub.add_argument("--tag", action="append", metavar="TAG", help="only runs with this tag (again for several)")
    sub.add_argument("--search", metavar="TEXT", help="only runs whose hypothesis, title or notes hold TEXT")
    sub.add_argument("--where", metavar="EXPR",
                     help="a pandas query over the columns, names as written: \"val/loss.best < 0.5 and "
                          "config.optim.lr >= 1e-3\"")
    sub.add_argument("--sort", metavar="COLUMN[,COLUMN]",
                     help="sort by these columns; 'COLUMN desc' (or --sort=-COLUMN) for descending")
    sub.add_argument("--columns", metavar="A,B", help="the columns to show, patterns allowed (config.optim.*); "
                                                      "'*' for every column")
    sub.add_argument("--limit", type=int, metavar="N", help="at most N rows")
    sub.add_argument("--attempts", action="store_true", help="one row per attempt instead of per run")
    sub.add_argument("--format", choices=["table", "csv", "json", "jsonl", "md"], help="how to print the rows")
    sub.add_argument("--json", action="store_true", help="print JSON rows instead of a table")

    sub = command("tag", cmd_tag, "Add or remove a run's tags (also sent to W&B with its next launch).")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("changes", nargs=argparse.REMAINDER, metavar="+TAG|-TAG",
                     help="+name (or name) adds a tag, -name removes one")

    sub = command("export", cmd_export, "Write the runs, attempts and metric rows as Parquet or CSV files.")
    sub.add_argument("--out", required=True, metavar="DIR", help="the folder to write runs, attempts and metrics to")
    sub.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="file format (default parquet)")

    sub = command("rename", cmd_rename, "Give a run a new id, with every reference to it (also after two clones "
                  "took one id).")
    sub.add_argument("old", help="the run's id now")
    sub.add_argument("new", help="its new id")

    sub = command("show", cmd_show, "Show one run with its attempts and notes.")
    sub.add_argument("id")
    sub.add_argument("--json", action="store_true")

    sub = command("diff", cmd_diff, "Config differences: a run against its baseline, or two runs.")
    sub.add_argument("a")
    sub.add_argument("b", nargs="?")

    sub = command("log", cmd_log, "Render the daily research log (logs/daily/DATE.md) and print its path.")
    sub.add_argument("date", nargs="?", help="YYYY-MM-DD (default: today)")
    sub.add_argument("--all", action="store_true", help="every day with activity")

    command("sync", cmd_sync, "Sync offline W&B runs (wandb sync); links stay pending when it fails.")

    sub = command("changelog", cmd_changelog, "Render the baseline-diff changelog (logs/changelogs/BASELINE.md).")
    sub.add_argument("baseline", nargs="?", help="baseline name (default: every baseline in use)")
    sub.add_argument("--status", action="append", default=[], metavar="KEY=TEXT",
                     help="your own status for a row of the comparison table (repeatable)")
    sub.add_argument("--current", metavar="RUN", help="the run the changelog calls current (default: the best)")

    sub = command("baseline", cmd_baseline, "Register a baseline of your own project for changelogs.")
    sub.add_argument("action", choices=["add", "attach"],
                     help="add: snapshot a baseline config; attach: make existing runs (RUN...) use the baseline")
    sub.add_argument("name", help="baseline name, like my_baseline")
    sub.add_argument("runs", nargs="*", metavar="RUN", help="attach: the runs that join the baseline")
    sub.add_argument("--config", help="JSON config file of the baseline")
    sub.add_argument("--from-run", metavar="RUN", help="take the config a run recorded (its headline attempt)")
    sub.add_argument("--repo", metavar="URL", help="where the baseline's code lives")
    sub.add_argument("--reference", help="paper or note the baseline reproduces")

    sub = command("compare", cmd_compare, "Render an ablation comparison (logs/ablations/NAME.md) with plots.")
    sub.add_argument("ids", nargs="*", help="runs to compare, the first is the reference")
    sub.add_argument("--group", help="compare every run of this group")
    sub.add_argument("--name", help="page name (default: the group, or the ids joined by _vs_)")

    sub = command("report", cmd_report, "Render a training report (logs/reports/ID.md) with plots.")
    sub.add_argument("id")
    sub.add_argument("--attempt", type=int, help="attempt number (default: the run's headline attempt, its best)")

    sub = command("doctor", cmd_doctor, "Run the health checks on a run and record what they find.")
    sub.add_argument("id")
    sub.add_argument("--attempt", type=int, help="attempt number (default: the latest with metrics)")
    sub.add_argument("--dry-run", action="store_true", help="print findings without recording them")

    sub = command("render", cmd_render, "Rebuild every page from the records.")
    sub.add_argument("--html", action="store_true", help="also write the HTML site (as lab site)")

    sub = command("site", cmd_site, "Write the lab's pages in HTML (logs/site/): charts to zoom, tables to sort.")
    sub.add_argument("--out", metavar="DIR", help="folder of the site (default: logs/site/)")
    sub.add_argument("--branch", action="store_true",
                     help="also commit the site to the lab-pages branch (work tree and index untouched)")

    sub = command("serve", cmd_serve, "Serve the HTML pages on 127.0.0.1, running attempts refreshed (read-only).")
    sub.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 takes a free one)")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")

    sub = command("rm", cmd_rm, "Remove a run: its records move to logs/archive/, its artefacts are deleted.")
    sub.add_argument("id")
    sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    for family_command in family_commands() if families else ():
        sub = command(family_command.name, functools.partial(run_family_command, family_command),
                      family_command.summary, family_command.example)
        family_command.arguments(sub)

    for sub in commands.choices.values():
        for action in sub._actions:
            if action.help is None:
                action.help = POSITIONAL_HELP.get(action.dest, action.dest)
    return parser


def run_family_command(command: Command, args: argparse.Namespace) -> int:
    """Run a family's command, or say in one line what to install when no family declaring it can run here."""
    owners = [spec for spec in map(registry.get, registry.known()) if command in spec.commands]
    if owners and all(spec.missing_requirements() for spec in owners):
        owners[0].check_installed()
    return command.run(args)


def family_commands() -> list:
    """The commands of the installed families; none (with one warning line) when a family does not load."""
    try:
        return registry.commands()
    except ConfigError as error:
        warn(str(error))
        return []


POSITIONAL_HELP = {"id": "run id, like dia_009", "json": "print JSON instead of text",
                   "a": "run id", "b": "second run id (default: the first one's baseline)"}


def lab_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("lab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run `lab ARGV` (default: this process's arguments) and return its exit status: 0, 2 for bad input (one
    `lab: error:` line), a launched command's own status, 130 when interrupted. What it prints goes to `stdout`
    and `stderr` (text streams; default: the process's own), a launched command's output included."""
    with contextlib.redirect_stdout(stdout or sys.stdout), contextlib.redirect_stderr(stderr or sys.stderr):
        try:
            return run_command(list(sys.argv[1:] if argv is None else argv), own_stdout=stdout is None)
        except SystemExit as done:  # argparse's --help, --version and usage errors
            if done.code is None or isinstance(done.code, int):
                return done.code or 0
            print(done.code, file=sys.stderr)
            return 1


def check_sharing() -> None:
    """Warn of attempts whose launch commit is on no remote (lab.launcher.shared); nothing outside a lab."""
    from lab.launcher import shared

    try:
        store = api.lab_at()
    except LabError:
        return
    shared.check(store)


def run_command(argv: list[str], own_stdout: bool) -> int:
    """`main` once its streams are in place; `own_stdout`: stdout is this process's own file descriptor 1."""
    trailing: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, trailing = argv[:split], argv[split + 1:]
    parser = build_parser(families=not argv or argv[0] not in EXAMPLES)  # EXAMPLES: the notebook's own commands
    if not argv:
        parser.print_help()
        return 0
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.name == "launch":
        print(f"lab: error: unexpected arguments {shlex.join(unknown)}: put your command after --, like "
              f"lab launch {args.id} -- python train.py", file=sys.stderr)
        return 2
    if unknown:
        parser.parse_args(argv)
    if args.name == "launch":
        args.command, args.argv = trailing, argv + (["--", *trailing] if trailing else [])
    elif trailing:
        print(f"lab: error: unexpected arguments after --: {shlex.join(trailing)}", file=sys.stderr)
        return 2
    try:
        if args.name != "init":
            check_sharing()
        return args.handler(args)
    except BrokenPipeError:
        if own_stdout:  # the reader went away (`lab runs | head`): nothing more reaches it, and no traceback
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (LabError, ConfigError, RecordError) as error:
        print(f"lab: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"lab: error: {one_line_os_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lab: interrupted", file=sys.stderr)
        return 130
