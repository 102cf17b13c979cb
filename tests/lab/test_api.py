"""lab.api does what the CLI does, in process: the same records, the same answers, the same one-line errors."""

import json
import os
import sys

import pytest

from lab import api, cli
from lab.errors import LabError

SCRIPT = ("from lab import tracker\n"
          "for step in range(1, 6):\n"
          "    tracker.log(step, **{'train/loss': 2.0 / step, 'val/loss': 2.5 / step})\n")


@pytest.fixture
def lab_root(repo, monkeypatch):
    """`repo` made a lab through the API, W&B off, as the working directory (where the CLI looks for it)."""
    for name in [name for name in os.environ if name.startswith(("LAB_", "WANDB_"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(repo)
    api.init(repo, wandb=False)
    return repo


def test_a_run_made_launched_and_noted_through_the_api_reads_back_as_the_cli_shows_it(lab_root, capsys):
    record = api.new_run("s_001", hypothesis="the loss falls", group="g", root=lab_root)
    assert record["id"] == "s_001" and record["slug"].endswith("_s_001_loss_falls")
    script = lab_root / "train.py"
    script.write_text(SCRIPT)
    assert api.launch("s_001", [sys.executable, str(script)], commit=False, note="first", root=lab_root) == 0
    api.note("s_001", findings="it fell", root=lab_root)
    shown = api.show("s_001", root=lab_root)
    assert shown["status"] == "finished" and [a["note"] for a in shown["attempts"]] == ["first"]
    assert [(e["field"], e["text"]) for e in shown["events"] if e["kind"] == "note"] == [("findings", "it fell")]
    rows = api.list_runs(group="g", root=lab_root)
    assert [(row["id"], row["status"], row["attempts"]) for row in rows] == [("s_001", "finished", 1)]
    capsys.readouterr()
    assert cli.main(["show", "s_001", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(api.show("s_001", root=lab_root)))
    assert cli.main(["runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == api.list_runs(root=lab_root)
    page = api.report("s_001", root=lab_root)
    assert page == lab_root / "logs" / "reports" / "s_001.md" and "val/loss" in page.read_text()


def test_the_api_raises_the_one_line_error_the_cli_prints(lab_root, capsys):
    api.new_run("s_001", hypothesis="h", root=lab_root)
    for call, argv in [(lambda: api.note("s_001", root=lab_root), ["note", "s_001"]),
                       (lambda: api.new_run("s_001", hypothesis="again", root=lab_root),
                        ["new-run", "s_001", "--hypothesis", "again"]),
                       (lambda: api.launch("s_001", root=lab_root), ["launch", "s_001"]),
                       (lambda: api.compare(["s_001"], group="g", root=lab_root),
                        ["compare", "s_001", "--group", "g"])]:
        with pytest.raises(LabError) as raised:
            call()
        capsys.readouterr()
        assert cli.main(argv) == 2
        assert capsys.readouterr().err == f"lab: error: {raised.value}\n"
    assert [e["kind"] for e in api.show("s_001", root=lab_root)["events"]] == ["created"]


def test_the_api_finds_the_lab_from_any_folder_inside_it(lab_root, tmp_path):
    inside = lab_root / "src" / "deep"
    inside.mkdir(parents=True)
    api.new_run("s_001", hypothesis="h", root=inside)
    assert api.show("s_001", root=inside)["run"]["id"] == "s_001"
    with pytest.raises(LabError, match="no lab found at .* run `lab init` in your repository first"):
        api.show("s_001", root=tmp_path)
