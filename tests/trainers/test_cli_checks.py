"""The CLI around the families checks what it can before torch and before an attempt exists (issue 21)."""

import subprocess
import sys

import lab_testing


def test_a_family_command_on_an_unknown_run_answers_before_importing_torch(family_lab):
    lab = family_lab("dia", "dia")
    probe = (
        "import sys\n"
        "from lab.cli import main\n"
        "codes = [main(argv) for argv in (['generate', 'nope_999'], ['profile', 'nope_999'],"
        " ['embed', 'nope_999', '--audio', 'a.wav'])]\n"
        "print('CODES', codes, 'TORCH', 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=lab.repo, capture_output=True, text=True,
                            env=lab_testing.lab_env(), timeout=120)
    assert "CODES [2, 2, 2] TORCH False" in result.stdout, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"lab: error: no run nope_999 in {lab.repo / 'logs' / 'runs'}"] * 3
