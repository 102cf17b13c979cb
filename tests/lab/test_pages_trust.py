"""Pages a researcher can trust, built from wrapped scripts' runs: comparisons name their attempts, scripts
report their configs, everyday commands behave (the pages issue)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.health import rules as health
from lab.pages import plots
from lab.records.store import Store

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test

SCRIPT = """import argparse
from lab import tracker
parser = argparse.ArgumentParser()
parser.add_argument('--lr', type=float, default=0.1)
parser.add_argument('--hidden', type=int, default=32)
args = parser.parse_args()
tracker.config(vars(args))
for step in range(1, 21):
    loss = 1.0 / (step * args.lr * 10)
    tracker.log(step, **{'train/loss': loss})
    if step % 5 == 0:
        tracker.log(step, **{'val/loss': loss + 0.01})
"""


@pytest.fixture
def script_lab(lab):
    (lab.repo / "train.py").write_text(SCRIPT)
    return lab


def test_a_compare_names_the_attempt_of_every_figure(script_lab):
    lab = script_lab
    lab("new-run", "sin_001", "--hypothesis", "a small LR is enough")
    lab("launch", "sin_001", "--no-commit", "--", sys.executable, "train.py", "--lr", "0.1")
    lab("launch", "sin_001", "--no-commit", "--", sys.executable, "train.py", "--lr", "1.2")  # LR changed
    lab("new-run", "sin_002", "--hypothesis", "a wider layer helps")
    lab("launch", "sin_002", "--no-commit", "--", sys.executable, "train.py", "--lr", "0.1", "--hidden", "64")
    page = (lab.repo / "logs/ablations/sin_001_1_vs_sin_002.md")
    lab("compare", "sin_001:1", "sin_002")
    text = page.read_text()
    assert "**sin_001** (a small LR is enough, test 1)" in text and "| sin_001:1 |" in text and "| sin_002:1 |" in text
    assert "| `hidden` | 32 | 64 |" in text and "`lr`" not in text  # the compared change only
    lab("compare", "sin_001", "sin_002")  # the headline attempt is sin_001's best: test 2
    assert "| sin_001:2 |" in (lab.repo / "logs/ablations/sin_001_vs_sin_002.md").read_text()
    lab("report", "sin_001")  # a report speaks for the headline attempt too
    assert ", Test 2 (finished" in (lab.repo / "logs/reports/sin_001.md").read_text()
    lab("note", "sin_001", "--headline", "1")
    lab("compare", "sin_001", "sin_002")
    assert "| sin_001:1 |" in (lab.repo / "logs/ablations/sin_001_vs_sin_002.md").read_text()
    refused = lab("compare", "sin_001", "sin_001:1", check=False)
    assert refused.returncode == 2 and "named twice" in refused.stderr


def test_a_script_reports_its_config_and_a_disagreement_is_named(script_lab):
    lab = script_lab
    lab("new-run", "sin_003", "--hypothesis", "h", "--set", "hidden=128")
    result = lab("launch", "sin_003", "--no-commit", "--", sys.executable, "train.py", "--hidden", "16")
    assert "the script reports hidden=16 but the lab recorded 128" in result.stdout + result.stderr
    config = json.loads((Store(lab.repo).attempt_dir("sin_003", 1) / "config.json").read_text())
    assert config == {"hidden": 16, "lr": 0.1}


def test_launched_scripts_get_the_config_as_json(lab):
    lab("new-run", "sin_004", "--hypothesis", "h", "--set", "hidden=64")
    code = "import json, os\nprint(json.loads(os.environ['LAB_CONFIG']))\n"
    result = lab("launch", "sin_004", "--no-commit", "--", sys.executable, "-c", code)
    assert result.stdout.strip() == "{'hidden': 64}"


def test_everyday_commands(lab):
    assert lab().stdout.startswith("usage: lab")
    assert lab("--version").stdout.startswith("lab ")
    lab("new-run", "sin_005", "--hypothesis", "h")
    missing = lab("launch", "sin_005", "python", "train.py", check=False)
    assert missing.returncode == 2 and "put your command after --" in missing.stderr
    assert "ID [-- CMD ...]" in lab("launch", "--help").stdout
    asked = lab("rm", "sin_005", check=False)
    assert asked.returncode == 2 and "--yes" in asked.stderr and (lab.repo / "logs/runs/sin_005").exists()
    lab("rm", "sin_005", "--yes")
    assert "sin_005" not in lab("runs").stdout
    assert list((lab.repo / "logs/archive").glob("sin_005-*/run.json"))


def test_every_option_has_help():
    from lab.cli import build_parser

    parser = build_parser()
    commands = next(action for action in parser._actions if action.dest == "name").choices
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"lab {name} {action.dest} has no help"


def test_a_tiny_healthy_gradient_is_no_explosion():
    rows = [{"step": step, "train/grad_norm": 0.0004} for step in range(40)]
    rows.append({"step": 40, "train/grad_norm": 0.05})
    assert health.grad_explosion(rows, {}) == []
    rows.append({"step": 41, "train/grad_norm": 5.0})
    assert [finding.step for finding in health.grad_explosion(rows, {})] == [41]


def test_losses_and_gradient_norms_are_plotted_on_a_log_axis():
    assert plots.log_scale("loss", {"train/loss": ([1, 2], [2.0, 0.1])})
    assert plots.log_scale("grad norm (pre-clip)", {"train/grad_norm": ([1], [0.3])})
    assert not plots.log_scale("loss", {"train/loss": ([1, 2], [0.5, -0.1])})
    assert not plots.log_scale("val/acc", {"val/acc": ([1], [0.5])})


def test_a_constant_learning_rate_gets_no_panel(script_lab, repo):
    lab = script_lab
    (repo / "lr.py").write_text("from lab import tracker\nfor step in range(1, 11):\n"
                                "    tracker.log(step, **{'train/loss': 1 / step, 'train/lr': 0.001})\n")
    lab("new-run", "sin_006", "--hypothesis", "h")
    lab("launch", "sin_006", "--no-commit", "--", sys.executable, "lr.py")
    lab("report", "sin_006")
    assert "learning rate" not in (repo / "logs/reports/sin_006.md").read_text()


def test_a_scripts_run_continues_from_its_reported_config(script_lab):
    lab = script_lab
    lab("new-run", "sin_007", "--hypothesis", "h")
    lab("launch", "sin_007", "--no-commit", "--", sys.executable, "train.py", "--hidden", "32")
    lab("new-run", "sin_008", "--from", "sin_007", "--hypothesis", "wider", "--set", "hidden=64")
    assert json.loads((lab.repo / "logs/runs/sin_008/config.json").read_text()) == {"hidden": 64, "lr": 0.1}
    typo = lab("new-run", "sin_009", "--from", "sin_007", "--hypothesis", "h", "--set", "hiden=64", check=False)
    assert typo.returncode == 2 and "did you mean 'hidden'" in typo.stderr


STORY_SCRIPT = """import argparse, math
from lab import tracker
parser = argparse.ArgumentParser()
parser.add_argument('--lr', type=float, default=0.01)
parser.add_argument('--hidden', type=int, default=32)
args = parser.parse_args()
tracker.config(vars(args))
floor = 0.5 - 0.002 * args.hidden + 0.1 * abs(math.log10(args.lr / 0.03))  # settled by the last evaluations
for step in range(1, 201):
    loss = floor + 2 * math.exp(-step * 0.06)
    tracker.log(step, **{'train/loss': loss, 'train/lr': args.lr})
    if step % 50 == 0:
        tracker.log(step, **{'val/loss': loss + 0.05, 'val/zero': 0.0})
"""


@pytest.fixture
def story(lab):
    """A baseline of the researcher's own project and four runs: a reproduction, a two-key change that wins,
    a change that loses, and a change that beats its weak parent but not the best run."""
    (lab.repo / "train.py").write_text(STORY_SCRIPT)
    (lab.repo / "base.json").write_text('{"lr": 0.01, "hidden": 32}')
    lab("baseline", "add", "sine_base", "--config", "base.json", "--repo", "https://github.com/me/sine")
    steps = [("sin_001", [], ["--baseline", "sine_base"], []),
             ("sin_002", ["lr=0.03", "hidden=64"], ["--from", "sin_001"], ["--lr", "0.03", "--hidden", "64"]),
             ("sin_003", ["lr=0.001"], ["--from", "sin_001"], ["--lr", "0.001"]),
             ("sin_004", ["hidden=64"], ["--from", "sin_003"], ["--lr", "0.001", "--hidden", "64"])]
    for run_id, sets, origin, args in steps:
        lab("new-run", run_id, "--hypothesis", f"hypothesis of {run_id}", *origin,
            *[item for value in sets for item in ("--set", value)])
        lab("launch", run_id, "--no-commit", "--", sys.executable, "train.py", *args)
    lab("note", "sin_004", "--change", "checkpoint on the actual metric", "--component", "training")
    lab("note", "sin_002", "--findings", "both changes together help", "--conclusion", "keep them")
    return lab


def test_the_changelog_flags_confounded_changes_and_wins_over_a_weak_parent(story):
    story("changelog", "sine_base")
    page = (story.repo / "logs/changelogs/sine_base.md").read_text()
    assert "**Baseline Repository**: https://github.com/me/sine" in page
    assert "### Current Status (Run #2: sin_002, the best run)" in page
    works = page.split("## What Works")[1].split("## What Doesn't Work")[0]
    assert "`lr`: 0.01 → 0.03 (Run #2" in works and "confounded" in works
    assert "Run #4 (sin_004)" in works.split("weaker parent only")[1] and "✅ `hidden`: 32 → 64 (Run #4" not in works
    assert "code (training): checkpoint on the actual metric" in page
    story("changelog", "sine_base", "--current", "sin_004")
    page = (story.repo / "logs/changelogs/sine_base.md").read_text()
    assert "### Current Status (Run #4: sin_004, your pick)" in page


def test_the_report_tells_the_story(story):
    story("report", "sin_002")
    page = (story.repo / "logs/reports/sin_002.md").read_text()
    assert re.search(r"\*\*Verdict\*\*: supported: val/loss 0\.422 at step 200 vs 0\.53\d* for sin_001:1, "
                     r"2\d\.\d% lower \(better\); evaluation size not logged", page)
    assert "- **Findings**: both changes together help" in page and "- **Conclusion**: keep them" in page
    assert "Changes against parent sin_001:\n- `lr`: 0.01 → 0.03\n- `hidden`: 32 → 64" in page
    assert "Changes against baseline sine_base:" in page
    assert re.search(r"- Wall time: \d+s", page)
    story("report", "sin_003")
    assert "**Verdict**: not supported: val/loss" in (story.repo / "logs/reports/sin_003.md").read_text()


def test_the_ablation_page_has_its_reference_marks_and_a_winner(story):
    for run_id in ("sin_002", "sin_003"):
        story("new-run", run_id.replace("sin", "abl"), "--from", "sin_001", "--group", "lr", "--hypothesis", "h")
    story("launch", "abl_002", "--no-commit", "--", sys.executable, "train.py", "--lr", "0.03")
    story("launch", "abl_003", "--no-commit", "--", sys.executable, "train.py", "--lr", "0.001")
    story("compare", "--group", "lr")
    page = (story.repo / "logs/ablations/lr.md").read_text()
    assert "| sin_001:1 (reference) |" in page
    assert re.search(r"\| abl_002:1 \| [^|]+ \| 200 \| [^|]+ \| [^|]+ \| [^|]+ \| -[\d.]+ ✅ \|", page)
    assert re.search(r"\| abl_003:1 \| [^|]+ \| 200 \| [^|]+ \| [^|]+ \| [^|]+ \| \+[\d.]+ ❌ \|", page)
    assert "### val/zero" not in page and "Not compared: val/zero (all zero)." in page  # named, not dropped
    assert "**abl_002:1** wins on val/loss" in page


def test_render_rebuilds_comparison_pages(story):
    story("compare", "sin_002", "sin_003")
    page = story.repo / "logs/ablations/sin_002_vs_sin_003.md"
    page.unlink()
    story("render")
    assert page.exists()


def test_a_baseline_needs_one_config_and_is_never_replaced(story):
    both = story("baseline", "add", "other", "--config", "base.json", "--from-run", "sin_001", check=False)
    assert both.returncode == 2 and "one of them" in both.stderr
    again = story("baseline", "add", "sine_base", "--from-run", "sin_002", check=False)
    assert again.returncode == 2 and "exists" in again.stderr
    story("baseline", "add", "wide_base", "--from-run", "sin_002")
    story("new-run", "sin_009", "--baseline", "wide_base", "--hypothesis", "h")
    assert json.loads((story.repo / "logs/runs/sin_009/config.json").read_text()) == {"hidden": 64, "lr": 0.03}


def test_a_finding_tells_one_story_on_every_page(lab, repo):
    lab("new-run", "hx_001", "--hypothesis", "h")
    code = ("from lab import tracker\nfor step in range(60):\n"
            "    tracker.log(step, **{'train/loss': 1 / (step + 1), 'train/grad_norm': 50.0 if step == 40 else 1.0})\n")
    lab("launch", "hx_001", "--no-commit", "--", sys.executable, "-c", code)
    metrics = Store(repo).attempt_dir("hx_001", 1) / "metrics.jsonl"
    with open(metrics, "a") as stream:  # later evidence: two more spikes, a larger one
        for step, norm in ((60, 1.0), (61, 80.0), (62, 1.0), (63, 60.0)):
            stream.write(json.dumps({"step": step, "train/loss": 1 / (step + 1), "train/grad_norm": norm}) + "\n")
    doctor = lab("doctor", "hx_001").stdout
    assert "3 such spikes, max 80" in doctor
    lab("report", "hx_001")
    lab("log", "--all")
    report = (repo / "logs/reports/hx_001.md").read_text()
    daily = next((repo / "logs/daily").glob("*.md")).read_text()
    for page in (report, daily):
        assert page.count("`grad_explosion`") == 1 and "3 such spikes, max 80" in page
    assert "- Health findings: 1" in report


def test_the_readme_example_script_runs_under_the_lab(lab, repo):
    example = Path(__file__).resolve().parents[2] / "examples" / "my_train.py"
    lab("new-run", "toy_001", "--hypothesis", "grad accumulation lowers the loss faster")
    result = lab("launch", "toy_001", "--no-commit", "--", sys.executable, str(example), "--accum", "16")
    assert result.stdout.startswith("done: final loss")
    config = json.loads((Store(repo).attempt_dir("toy_001", 1) / "config.json").read_text())
    assert config == {"accum": 16, "lr": 0.0002, "steps": 100}
    lab("report", "toy_001")
    assert "val/loss" in (repo / "logs/reports/toy_001.md").read_text()


def test_the_demo_echoes_commands_that_paste(capsys, monkeypatch):
    from lab import demo

    monkeypatch.setattr(demo.subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(args, 0))
    demo.lab("note", "dia_009", "--findings", "Accumulating 16 batches helps", cwd=Path("."))
    assert "$ lab note dia_009 --findings 'Accumulating 16 batches helps'" in capsys.readouterr().out


def test_a_scripts_command_line_is_its_config_when_it_reports_none(lab, repo):
    (repo / "plain.py").write_text("import sys\nprint(sys.argv[1:])\n")
    lab("new-run", "arg_001", "--hypothesis", "h")
    lab("launch", "arg_001", "--no-commit", "--", sys.executable, "plain.py", "--lr", "2e-4", "--accum=16", "--fast")
    config = json.loads((Store(repo).attempt_dir("arg_001", 1) / "config.json").read_text())
    assert config == {"lr": 0.0002, "accum": 16, "fast": True}
    lab("new-run", "arg_002", "--from", "arg_001", "--hypothesis", "h", "--set", "accum=32")
    lab("launch", "arg_002", "--no-commit", "--", sys.executable, "plain.py", "--lr", "2e-4", "--accum=32", "--fast")
    lab("log", "--all")
    daily = next((repo / "logs/daily").glob("*.md")).read_text()
    assert "`accum`: 16 → 32" in daily


def test_plots_mark_each_stage_boundary_in_every_panel(tmp_path):
    panels = [("loss", {"train/loss": ([10, 20, 30, 40], [2.0, 0.5, 0.9, 0.4])}),
              ("learning rate", {"train/lr": ([10, 40], [0.1, 0.2])})]
    path = plots.plot_panels(tmp_path / "curves.svg", panels, [(14, "margin ramp 0 -> 0.2"), (99, "after the end")])
    svg = path.read_text()
    assert svg.count('stroke-dasharray="4 3"') == 2 and svg.count(">margin ramp 0 -&gt; 0.2 (step 14)</text>") == 2
    assert "after the end" not in svg  # outside the steps drawn
    plots.plot_panels(path, panels)
    assert "margin ramp" not in path.read_text(), "other stages are drawn again"


def test_plots_are_svg_with_round_ticks_and_log_axes(tmp_path):
    assert plots.nice_ticks(0, 1000) == [0, 250, 500, 750, 1000]
    assert plots.nice_ticks(0.013, 0.05) == pytest.approx([0.02, 0.03, 0.04, 0.05])
    path = plots.plot_panels(tmp_path / "curves.svg", [
        ("loss", {"train/loss": ([1, 2, 3], [2.0, 0.5, 0.1]), "val/loss": ([3], [0.2])}),
        ("learning rate", {"train/lr": ([1, 2, 3], [0.1, 0.2, 0.3])})])
    svg = path.read_text()
    assert svg.startswith("<svg ") and svg.count("<polyline") == 3
    assert "loss (log)" in svg and "learning rate (log)" not in svg and ">val/loss</text>" in svg
    written = path.stat().st_mtime_ns
    plots.plot_panels(path, [("loss", {"train/loss": ([1, 2, 3], [2.0, 0.5, 0.1]), "val/loss": ([3], [0.2])}),
                             ("learning rate", {"train/lr": ([1, 2, 3], [0.1, 0.2, 0.3])})])
    assert path.stat().st_mtime_ns == written, "the same data is not drawn again"
