"""Pages a researcher can trust, built from wrapped scripts' runs: comparisons name their attempts, scripts
report their configs, everyday commands behave (the pages issue)."""

import json
import sys

import pytest

from lab import health, plots

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
    config = json.loads((lab.repo / "logs/runs/sin_003/attempts/1/config.json").read_text())
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
