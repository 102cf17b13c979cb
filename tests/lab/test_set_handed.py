"""`--set` reaches the script a launch wraps: an argparse script runs with the run's values, a Hydra app composes
them as overrides, a script that reads neither finds them in LAB_SET / LAB_CONFIG (and the attempt says they are
not confirmed); a command line that visibly disagrees is refused with one line before the attempt, and nothing
inside the script's process ever ends it: what a parser could not take is named as not confirmed."""

import json
import sys
from pathlib import Path

import pytest

from lab.records.store import Store

ARGPARSE = """import argparse
parser = argparse.ArgumentParser()
parser.add_argument('--lr', type=float, default=0.1)
parser.add_argument('--hidden', type=int, default=32)
parser.add_argument('--act', choices=['relu', 'gelu'], default='relu')
args = parser.parse_args()
print('hidden', repr(args.hidden), 'lr', repr(args.lr), 'act', args.act)
"""


def attempts(repo: Path, run_id: str) -> list[dict]:
    return Store(repo).attempts.of(run_id)


def config_of(repo: Path, run_id: str, number: int = 1) -> dict:
    return json.loads((Store(repo).attempt_dir(run_id, number) / "config.json").read_text())


def error_lines(result) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("lab: error:")]


@pytest.fixture
def sine(lab, repo):
    """sine_001 (train.py run with its defaults) and sine_002, from it, with `--set hidden=16`."""
    (repo / "train.py").write_text(ARGPARSE)
    lab("new-run", "sine_001", "--hypothesis", "a sine fits")
    lab("launch", "sine_001", "--", sys.executable, "train.py")
    lab("new-run", "sine_002", "--from", "sine_001", "--hypothesis", "fewer units fit", "--set", "hidden=16")
    return lab


@pytest.mark.light
def test_an_argparse_script_runs_with_the_runs_set_values_and_the_records_say_so(sine, repo):
    out = sine("launch", "sine_002", "--set", "lr=0.05", "--", sys.executable, "train.py")
    assert "hidden 16 lr 0.05 act relu" in out.stdout  # the parser's type=int and type=float
    assert config_of(repo, "sine_002") == {"hidden": 16, "lr": 0.05, "act": "relu"}
    assert "warning" not in out.stderr
    shown = sine("show", "sine_002").stdout
    assert 'set: hidden=16 lr=0.05 (the script ran with them)' in shown
    assert "`hidden`: 32 → 16" in Path(sine("log").stdout.strip()).read_text()
    sine("new-run", "sine_003", "--from", "sine_002", "--hypothesis", "h", "--set", "act=gelu")
    assert "hidden 16 lr 0.1 act gelu" in sine("launch", "sine_003", "--", sys.executable, "train.py").stdout


@pytest.mark.light
def test_a_flag_typed_against_the_runs_value_is_refused_before_the_attempt(sine, repo):
    result = sine("launch", "sine_002", "--", sys.executable, "train.py", "--hidden", "64", check=False)
    assert result.returncode != 0
    assert error_lines(result) == ["lab: error: the command gives hidden 64 but the run sets hidden=16 (--set); "
                                   "drop one of them (nothing was launched)"]
    assert attempts(repo, "sine_002") == []
    agreed = sine("launch", "sine_002", "--", sys.executable, "train.py", "--hidden=16")
    assert "hidden 16" in agreed.stdout


@pytest.mark.light
def test_a_short_flag_against_the_runs_value_runs_as_typed_and_is_not_confirmed(lab, repo):
    (repo / "short.py").write_text(ARGPARSE.replace("'--hidden'", "'-H', '--hidden'"))
    lab("new-run", "sh_001", "--hypothesis", "h", "--set", "hidden=16")
    result = lab("launch", "sh_001", "--", sys.executable, "short.py", "-H", "8")
    assert "hidden 8" in result.stdout  # the script ran, with what its command line typed
    assert ("lab: warning: the script's config does not confirm hidden=16 (it reported hidden=8; the command line "
            "gives -H 8) (--set) as what it ran with") in result.stderr
    [record] = attempts(repo, "sh_001")
    assert record["status"] == "finished" and record["set_unconfirmed"] == {"hidden": 16}


@pytest.mark.light
def test_a_key_the_script_has_no_option_for_runs_and_is_named_with_its_options(lab, repo):
    (repo / "train.py").write_text(ARGPARSE)
    lab("new-run", "fresh_001", "--hypothesis", "h", "--set", "depth=3")
    result = lab("launch", "fresh_001", "--", sys.executable, "train.py")
    assert "hidden 32" in result.stdout and error_lines(result) == []
    assert ("lab: warning: the script's config does not confirm depth=3 (it reported no depth; the parser of its "
            "command line has no --depth (its options: --act, --hidden, --lr)) (--set) as what it ran with"
            ) in result.stderr
    [record] = attempts(repo, "fresh_001")
    assert record["status"] == "finished" and record["set_unconfirmed"] == {"depth": 3}
    assert "set: depth=3 (not confirmed for depth" in lab("show", "fresh_001").stdout
    lab("new-run", "fresh_002", "--hypothesis", "h", "--set", "act=tanh")
    result = lab("launch", "fresh_002", "--", sys.executable, "train.py")
    assert "act relu" in result.stdout
    assert "act=\"tanh\" (it reported act=\"relu\"; the script's --act refuses 'tanh' (invalid choice" in result.stderr


@pytest.mark.light
def test_other_programs_and_parsers_of_the_command_are_never_refused(lab, repo):
    (repo / "train.py").write_text(ARGPARSE + "import argparse\nq = argparse.ArgumentParser()\n"
                                   "q.add_argument('--vocab')\nprint('vocab', q.parse_args(['--vocab', 'y']).vocab)\n")
    (repo / "prep.py").write_text("import argparse\np = argparse.ArgumentParser()\np.add_argument('--out')\n"
                                  "print('prep', p.parse_args().out)\n")
    lab("new-run", "two_001", "--hypothesis", "h", "--set", "hidden=16")
    result = lab("launch", "two_001", "--", "bash", "-c",
                 f"{sys.executable} prep.py --out o && {sys.executable} train.py")
    assert "prep o" in result.stdout and "hidden 16" in result.stdout and "vocab y" in result.stdout
    assert "warning" not in result.stderr
    [record] = attempts(repo, "two_001")
    assert record["status"] == "finished" and "set_unconfirmed" not in record
    assert "set: hidden=16 (the script ran with it)" in lab("show", "two_001").stdout


@pytest.mark.light
def test_a_script_that_reads_no_config_finds_the_values_in_the_environment_and_they_are_not_confirmed(lab, repo):
    (repo / "env.py").write_text("import json, os\n"
                                 "print('set', json.loads(os.environ['LAB_SET']))\n"
                                 "print('hidden', json.loads(os.environ['LAB_CONFIG'])['hidden'])\n")
    lab("new-run", "env_001", "--hypothesis", "h", "--set", "hidden=8")
    out = lab("launch", "env_001", "--", sys.executable, "env.py")
    assert "set {'hidden': 8}" in out.stdout and "hidden 8" in out.stdout
    assert ("lab: warning: the script read no config the lab could see, so hidden=8 (--set, handed to it in "
            "LAB_SET and LAB_CONFIG) is not confirmed as what it ran with") in out.stderr
    [record] = attempts(repo, "env_001")
    assert record["set_unconfirmed"] == {"hidden": 8}
    assert "set: hidden=8 (not confirmed for hidden" in lab("show", "env_001").stdout
    daily = Path(lab("log").stdout.strip()).read_text()
    assert "**Not confirmed**" in daily and "- `hidden` = 8" in daily


@pytest.mark.wandb
def test_a_hydra_app_composes_the_runs_set_values_as_overrides(lab, repo):
    (repo / "app.py").write_text(
        "import hydra\n\n\n@hydra.main(version_base=None, config_path='conf', config_name='config')\n"
        "def train(cfg):\n    print('optimizer', cfg.optim.name, cfg.optim.lr, cfg.seed)\n\n\n"
        "if __name__ == '__main__':\n    train()\n")
    (repo / "conf").mkdir()
    (repo / "conf" / "config.yaml").write_text("optim:\n  name: adam\n  lr: 0.001\nseed: 0\n")
    lab("new-run", "hy_001", "--hypothesis", "adam trains")
    lab("launch", "hy_001", "--", sys.executable, "app.py")
    lab("new-run", "hy_002", "--from", "hy_001", "--hypothesis", "a larger step", "--set", "optim.lr=0.5")
    out = lab("launch", "hy_002", "--", sys.executable, "app.py", "seed=3")
    assert "optimizer adam 0.5 3" in out.stdout
    assert config_of(repo, "hy_002") == {"optim": {"name": "adam", "lr": 0.5}, "seed": 3}
    assert "set: optim.lr=0.5 (the script ran with it)" in lab("show", "hy_002").stdout
    refused = lab("launch", "hy_002", "--", sys.executable, "app.py", "optim.lr=0.1", check=False)
    assert refused.returncode != 0 and len(error_lines(refused)) == 1
    assert "gives optim.lr 0.1 but the run sets optim.lr=0.5" in error_lines(refused)[0]


@pytest.mark.light
def test_a_value_counts_as_run_only_when_the_script_itself_reported_it(sine, repo):
    (repo / "rep.py").write_text("from lab import tracker\nhidden = 32\ntracker.config({'lr': 0.1})\n"
                                 "print('hidden', hidden)\n")
    out = sine("launch", "sine_002", "--", sys.executable, "rep.py")
    assert ("lab: warning: the script's config does not confirm hidden=16 (it reported no hidden) (--set) as what "
            "it ran with") in out.stderr
    [record] = attempts(repo, "sine_002")
    assert record["set_unconfirmed"] == {"hidden": 16}
    assert "the script ran with it" not in sine("show", "sine_002").stdout


@pytest.mark.light
def test_a_key_parse_known_args_leaves_over_is_not_confirmed(lab, repo):
    (repo / "known.py").write_text("import argparse\np = argparse.ArgumentParser()\n"
                                   "p.add_argument('--hidden', type=int, default=32)\n"
                                   "args, _ = p.parse_known_args()\nprint('hidden', args.hidden)\n")
    lab("new-run", "kn_001", "--hypothesis", "h", "--set", "depth=3")
    out = lab("launch", "kn_001", "--", sys.executable, "known.py")
    assert "hidden 32" in out.stdout
    [record] = attempts(repo, "kn_001")
    assert record["set_unconfirmed"] == {"depth": 3}
    assert "depth=3 (it reported no depth" in out.stderr
    assert "the script ran with it" not in lab("show", "kn_001").stdout


@pytest.mark.light
def test_a_list_option_typed_with_the_runs_values_is_accepted_and_with_others_refused(lab, repo):
    (repo / "lay.py").write_text("import argparse\np = argparse.ArgumentParser()\n"
                                 "p.add_argument('--layers', type=int, nargs='+', default=[1])\n"
                                 "print('layers', p.parse_args().layers)\n")
    lab("new-run", "lay_001", "--hypothesis", "h", "--set", "layers=[3,4,5]")
    out = lab("launch", "lay_001", "--", sys.executable, "lay.py", "--layers", "3", "4", "5")
    assert "layers [3, 4, 5]" in out.stdout and "warning" not in out.stderr
    refused = lab("launch", "lay_001", "--", sys.executable, "lay.py", "--layers", "3", "4", check=False)
    assert refused.returncode != 0
    assert error_lines(refused) == ["lab: error: the command gives layers [3, 4] but the run sets layers=[3, 4, 5] "
                                    "(--set); drop one of them (nothing was launched)"]


@pytest.mark.light
def test_an_abbreviated_option_against_the_runs_value_is_named_as_what_ran(sine, repo):
    out = sine("launch", "sine_002", "--", sys.executable, "train.py", "--hid", "64")
    assert "hidden 64" in out.stdout
    assert ("lab: warning: the script's config does not confirm hidden=16 (it reported hidden=64; the command line "
            "gives --hidden 64) (--set) as what it ran with") in out.stderr
    [record] = attempts(repo, "sine_002")
    assert record["set_unconfirmed"] == {"hidden": 16}


@pytest.mark.light
def test_a_required_option_takes_the_runs_value_and_a_failing_script_is_not_said_to_read_no_config(lab, repo):
    (repo / "req.py").write_text(ARGPARSE.replace("'--hidden', type=int, default=32", "'--hidden', type=int, "
                                                  "required=True"))
    lab("new-run", "req_001", "--hypothesis", "h", "--set", "hidden=16")
    out = lab("launch", "req_001", "--", sys.executable, "req.py")
    assert "hidden 16" in out.stdout and "warning" not in out.stderr
    (repo / "fail.py").write_text("import sys\nsys.exit(3)\n")
    failed = lab("launch", "req_001", "--", sys.executable, "fail.py", check=False)
    assert ("lab: warning: the script ended (exit 3) before it reported a config, so hidden=16 (--set, handed to it "
            "in LAB_SET and LAB_CONFIG) is not confirmed as what it ran with") in failed.stderr


@pytest.mark.light
def test_a_subcommands_option_is_named_as_one(lab, repo):
    (repo / "sub.py").write_text("import argparse\np = argparse.ArgumentParser()\np.add_argument('--seed', default=0)\n"
                                 "s = p.add_subparsers(dest='cmd')\ns.add_parser('train').add_argument('--hidden')\n"
                                 "print('hidden', p.parse_args().hidden)\n")
    lab("new-run", "sub_001", "--hypothesis", "h", "--set", "hidden=16")
    out = lab("launch", "sub_001", "--", sys.executable, "sub.py", "train")
    assert "hidden None" in out.stdout
    assert ("hidden=16 (it reported hidden=null; --hidden is an option of its subcommand train, which the lab does "
            "not set)") in out.stderr
