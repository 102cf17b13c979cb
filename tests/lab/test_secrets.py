"""Secrets: the detector's rules and its fast redaction, files that are never committed, a lab's own patterns, and keys
redacted wherever the lab records them."""

import base64
import json
import random
import sys
from pathlib import Path

import pytest
from lab_testing import git

from lab.launcher import vcs
from lab.launcher.output import OutputLog
from lab.errors import LabError
from lab.records import secrets
from lab.records.secrets import SecretDetector
from lab.records.store import Store


H64 = "0123456789abcdef" * 4


KEY_KINDS = ("DSA ", "EC ", "OPENSSH ", "", "RSA ", "SSH2 ENCRYPTED ")


MIXED = "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9cF2hJ4kL6nP8rS0uX2zA4" * 2


SECRETS = [  # at least one for every rule of the detector, at the shortest length each rule takes
    "AKIAIOSFODNN7EXAMPLE", 'aws_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "aws_secret_access_key = "
    + MIXED[:40], "artifactory AKCp5abcdef12 ok", "artifactory AP6abcdefgh ok", "AccountKey=" + ("a1B2+/c3D4" * 9)[:88],
    "https://user:pw@example.org/repo", f'cloudant_password = "{H64}"', 'cl_key: "abcdefghijklmnopqrstuvwx"',
    f"https://acct:{H64}@acct.cloudant.com", "https://acct:abcdefghijklmnopqrstuvwx@acct.cloudant.com",
    "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs", "ghp_" + MIXED[:36], "glpat-" + MIXED[:20],
    "GR1348941" + MIXED[:20], "glcbt-" + MIXED[:20], "glimt-" + MIXED[:25], "glptt-" + MIXED[:40],
    "glagent-" + MIXED[:50], "gloas-" + MIXED[:64], f'cos_hmac_secret_access_key = "{H64[:48]}"',
    f'ibm_cloud_iam_api_key = "{MIXED[:44]}"', "eyJa.eyJb.c", "0123456789abcdefghijklmnopqrstuv-us12",
    "//registry.npmjs.org/:_authToken=npm_abc", "sk-" + MIXED[:20] + "T3BlbkFJ" + MIXED[:20],
    *(f"-----BEGIN {kind}PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END {kind}PRIVATE KEY-----"
      for kind in KEY_KINDS), "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
    "PuTTY-User-Key-File-2: ssh-rsa", "pypi-AgEIcHlwaS5vcmc" + MIXED[:70], "pypi-AgENdGVzdC5weXBpLm9yZw" + MIXED[:70],
    "SG." + MIXED[:22] + "." + MIXED[:43], "xoxb-1-a", "https://hooks.slack.com/services/T0/B0/x",
    f'softlayer_api_key = "{H64}"', f"https://api.softlayer.com/soap/v3/{H64}", "sq0csp-" + MIXED[:43],
    "sk_live_" + MIXED[:24], "123456789:" + MIXED[:35], "AC" + H64[:32], "SK" + H64[:32], "github_pat_" + MIXED[:22],
    "AIza" + MIXED[:35], "hf_" + MIXED[:30], "sk-proj-" + MIXED[:20], "machine a\nlogin b\npassword c",
    "WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567", "secret = 'aB3+dE5/gH7+jK9/mN1+pQ3/sT5+vW7/yZ9'",
    # the keyword rules' names and separators in every shape they take: spaces alone, a name and its value on
    # different lines, many blanks, `:=`
    "cloudant_password   abcdefghijklmnopqrstuvwx", f"sl_pwd  {H64}", "password\n= 'Xk9mQ2vL7pR4wZ8nB3cF6hJ1tY5uE0aZ'",
    "WANDB_API_KEY" + " " * 40 + "= 0123456789abcdef0123456789abcdef01234567", f'cl_key:= "{H64}"',
    "[\"cl_pw\"] abcdefghijklmnopqrstuvwx", "api_token: +" + MIXED[:40],
]


def test_every_rule_of_the_detector_has_a_secret_here():
    uncovered = [name for name, pattern, _ in SecretDetector().rules if not any(pattern.search(s) for s in SECRETS)]
    assert not uncovered  # a rule added to the detector needs its shortest secret in SECRETS


def test_the_rules_kept_in_the_cache_are_detect_secrets_own(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    expected = [(name, text, flags) for name, detector, text, flags in secrets.detect_secrets_rules()
                if detector not in secrets.LEFT_OUT_DETECTORS]
    damaged = {"corrupt": '[["AWS Access Key", "AWSKeyDetector", "(unclosed", 0]]', "empty": "[]",
               "not rules": '{"rules": []}', "rows of another shape": '[["AWS Access Key"]]'}
    for state in ("missing", "written", *damaged):
        if state in damaged:  # a cache that lost its rules would redact nothing: it is rebuilt, never trusted
            secrets.rules_cache().write_text(damaged[state])
        secrets.maintained_rules.cache_clear()
        rules = secrets.maintained_rules()
        assert [(name, pattern.pattern, pattern.flags) for name, pattern in rules] == expected, state
        assert secrets.rules_cache().is_file()
    secrets.maintained_rules.cache_clear()


def test_a_relative_cache_home_is_ignored_so_the_cache_never_lands_in_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", ".cache")
    assert secrets.rules_cache().parent == tmp_path / "home" / ".cache" / "lab"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert secrets.rules_cache().parent == tmp_path / "xdg" / "lab"


NOISE = "step 12/1000 | loss 0.512 | lr 3.00e-04 | saved /data/ckpt/model_12.pt\n" * 4


@pytest.mark.parametrize("secret", SECRETS)
def test_the_fast_redaction_finds_what_the_full_detector_finds(secret):
    detector = SecretDetector()
    text = f"{NOISE}prefix {secret} suffix\n{NOISE}"
    full = detector.redact_all(text)
    assert "[redacted]" in full and detector.redact_lines(text.encode()) == full.encode()
    assert detector.redact(text) == full


def test_ordinary_output_passes_the_fast_path_byte_for_byte():
    data = NOISE.encode() + "naïve ünïcode \xff bytes\n".encode("latin-1")
    assert SecretDetector().redact_lines(data) == data


WANDB_KEY = "0123456789abcdef0123456789abcdef01234567"


SHAPES = {  # output that looks random or repetitive, as benchmarks/bench_output.py prints it
    "one character": "step {i} tokens/s 123456 " + "x" * 60,
    "hex": "step {i} saved ckpt " + "3f2a9c0d1e4b5f6a7b8c9d0e1f2a3b4c5d6e7f80",
    "base64": "step {i} blob aB3dE5gH7jK9mN1pQ3sT5vW7yZ9cF2hJ4kL6nP8rS0uX2zA4+/==",
    "long line": "step {i} " + "0123456789abcdef" * 5000,
    "ordinary": "step {i}/1000 | loss 0.512 | lr 3.00e-04 | grad_norm 1.23 | 12.3 it/s",
    "a repeated name": "step {i} " + "pw" * 500,
    "URL-safe base64": "step {i} " + base64.urlsafe_b64encode(random.Random(1).randbytes(3000)).decode(),
}
KEYS = {"keyword": f"WANDB_API_KEY={WANDB_KEY}", "token": "ghp_" + MIXED[:36], "AWS key id": "AKIAIOSFODNN7EXAMPLE",
        "bot token": "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs"}


@pytest.mark.parametrize("key", sorted(KEYS))
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_key_among_random_looking_output_is_redacted_and_the_rest_kept(shape, key):
    lines = [SHAPES[shape].format(i=i) for i in range(200)]
    lines[120] = f"{lines[120]} {KEYS[key]}"
    data = "".join(f"{line}\n" for line in lines).encode()
    kept = SecretDetector().redact_lines(data).decode().splitlines()
    assert KEYS[key] not in kept[120] and "[redacted]" in kept[120]
    assert kept[:120] + kept[121:] == lines[:120] + lines[121:]


def test_every_key_on_a_very_long_line_is_redacted():
    line = " ".join(["0123456789abcdef" * 4] * 3000)  # about 200 KB
    data = f"{line} {KEYS['token']} {line} {KEYS['keyword']} {line} {KEYS['AWS key id']}\n".encode()
    kept = SecretDetector().redact_lines(data).decode()
    assert kept == f"{line} [redacted] {line} WANDB_API_KEY=[redacted] {line} [redacted]\n"


def test_a_private_key_printed_whole_is_redacted_to_its_last_line():
    body = [MIXED[index:index + 64] for index in range(0, 30)]
    block = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *body, "-----END RSA PRIVATE KEY-----"])
    data = f"{NOISE}loaded\n{block}\n{NOISE}".encode()
    kept = SecretDetector().redact_lines(data).decode()
    assert not any(line in kept for line in body) and kept == f"{NOISE}loaded\n[redacted]\n{NOISE}"


def test_a_key_in_a_progress_bar_redrawn_with_carriage_returns_is_redacted(tmp_path):
    log = OutputLog(tmp_path / "stdout.log", SecretDetector().redact_lines, head_bytes=1000, tail_bytes=2000)
    for i in range(2000):
        log.feed(f"\r{i // 20:3d}%|#####     | {i}/2000 [00:01<00:02, 5.0it/s]".encode())
        if i == 1500:
            log.feed(f"\nlogged in with {KEYS['keyword']}\n".encode())
    log.close()
    text = (tmp_path / "stdout.log").read_text()
    assert WANDB_KEY not in text and "logged in with WANDB_API_KEY=[redacted]" in text and "99%|" in text


SECRET_FILES = {
    "cfg.py": f'import os\nos.environ["WANDB_API_KEY"] = "{WANDB_KEY}"\n',
    "login.py": f'import wandb\nwandb.login(key="{WANDB_KEY}")\n',
    "defaults.py": f'import os\nos.environ.setdefault("WANDB_API_KEY", "{WANDB_KEY}")\n',
    "explore.ipynb": json.dumps({"cells": [{"cell_type": "code", "source": [
        f'os.environ["WANDB_API_KEY"] = "{WANDB_KEY}"\n']}]}),
    "aws.sh": "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    ".aws/credentials": "[default]\nregion = eu-west-1\n",
    "gh.txt": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN\n",
    "oauth.txt": "gho_16C7e42F292c6912E7710c838347Ae178B4a\n",
    "slack.txt": "SLACK_BOT=xoxb-2410212019-2410212027-kKVqZwFFsSFH1tZJdjyPvYZv\n",
    "maps.js": "const key = 'AIzaSyD-1234567890abcdefghijklmnopqrstu';\n",
    "hosts.cfg": "machine api.wandb.ai\n  login user\n  password s3cr3tpassw0rd\n",
    "prod.env": "MODE=prod\n",
    "id_ecdsa": "not shown\n",
    "deploy.ppk": "not shown\n",
}


@pytest.mark.parametrize("name", sorted(SECRET_FILES))
def test_a_secret_is_never_committed(project, name):
    path = project / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SECRET_FILES[name])
    head = git(project, "rev-parse", "HEAD")
    with pytest.raises(LabError, match=rf"^refusing to commit: {name} \((secret file name|contains what looks like)"):
        vcs.commit_working_tree(project, "leak")
    assert git(project, "rev-parse", "HEAD") == head and git(project, "diff", "--cached") == ""


def test_ordinary_code_and_hashes_are_not_secrets(project):
    (project / "model.py").write_text(
        'model_key = "encoder_decoder_attention_weights_v2"\nsha = "0c61a2f3e4b5a6978d9e0f1a2b3c4d5e6f708192"\n'
        'checkpoint = "artefacts/nsd_001/1/checkpoints/last.pt"\nlr, hidden = 0.0015, 256\n')
    assert vcs.commit_working_tree(project, "model")["committed"]


def test_a_lab_adds_its_own_patterns_and_names(project):
    settings = {"secrets": {"patterns": [r"corp-[0-9]{6}"], "names": ["*.vault"]}}
    policy = vcs.CapturePolicy.from_settings(settings)
    (project / "notes.txt").write_text("ticket corp-123456\n")
    with pytest.raises(LabError, match=r"notes.txt \(contains what looks like a secret: lab.json pattern 1\)"):
        vcs.commit_working_tree(project, "x", policy=policy)
    (project / "notes.txt").unlink()
    (project / "team.vault").write_text("x\n")
    with pytest.raises(LabError, match=r"team.vault \(secret file name\)"):
        vcs.commit_working_tree(project, "x", policy=policy)
    with pytest.raises(LabError, match="is not a regular expression"):
        vcs.CapturePolicy.from_settings({"secrets": {"patterns": ["("]}})


def test_a_labs_own_pattern_is_redacted_in_output_around_other_text():
    detector = SecretDetector.from_settings({"secrets": {"patterns": [r"corp-[0-9]{6}"]}})
    lines = [f"épreuve {i} ünïcode " + "x" * 60 for i in range(50)]
    lines[10] += " ticket corp-123456"
    lines[40] += f" and {KEYS['token']}"
    kept = detector.redact_lines("".join(f"{line}\n" for line in lines).encode()).decode().splitlines()
    assert kept[10].endswith("ticket [redacted]") and kept[40].endswith("and [redacted]")
    assert [line for index, line in enumerate(kept) if index not in (10, 40)] == \
        [line for index, line in enumerate(lines) if index not in (10, 40)]


def test_dirty_diff_redacts_every_kind_of_secret(project):
    (project / "train.py").write_text("".join(SECRET_FILES[name] for name in ("cfg.py", "login.py", "slack.txt")))
    _, diff = vcs.dirty_state(project)
    assert WANDB_KEY not in diff and "xoxb-2410212019" not in diff and diff.count("[redacted]") == 3


def folder_of(repo: Path, run_id: str, number: int) -> Path:
    """Test `number`'s folder: logs/runs/<id>/attempts/<start>-<clone>/ once ended, in .git/lab while running."""
    return Store(repo).attempt_dir(run_id, number)


def test_secrets_are_redacted_where_they_are_recorded(lab):
    key = f"WANDB_API_KEY={WANDB_KEY}"
    lab("new-run", "s_001", "--hypothesis", f"logging in with {key} works")
    script = lab.repo / "ok.py"
    script.write_text(  # the script holds no key itself; it prints them whole
        "print('using', 'xoxb-' + '2410212019-2410212027-kKVqZwFFsSFH1tZJdjyPvYZv')\n"
        f"print('WANDB_API_KEY=' + '{WANDB_KEY[:20]}' + '{WANDB_KEY[20:]}')\n")
    lab("launch", "s_001", "--note", f"with token {key}", "--", sys.executable, "ok.py", f"--token={WANDB_KEY}")
    lab("note", "s_001", "--findings", f"the key was {key}")
    records = lab.repo / "logs" / "runs" / "s_001"
    for path in records.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert WANDB_KEY not in text and "kKVqZwFFsSFH1" not in text, path
    assert "using [redacted]" in (folder_of(lab.repo, "s_001", 1) / "stdout.log").read_text()
    lab("launch", "s_001", "--", sys.executable, "-c", "print(3)")  # no recorded key blocks a later launch
    assert WANDB_KEY not in git(lab.repo, "log", "-p")


def test_a_child_that_prints_a_key_in_pieces_is_still_redacted(lab, repo):
    lab("new-run", "s_002", "--hypothesis", "h")
    code = ("import sys, time\nfor part in ('token gho_16C7e42F292c', '6912E7710c838347Ae178B4a', ' done\\n'):\n"
            "    sys.stdout.write(part); sys.stdout.flush(); time.sleep(0.05)\n")
    lab("launch", "s_002", "--no-commit", "--", sys.executable, "-c", code)
    log = (folder_of(repo, "s_002", 1) / "stdout.log").read_text()
    assert log == "token [redacted] done\n"


BLOCK_LINES = [  # output with a secret on many lines, among lines whose anchors hold no secret
    f"token {KEYS['token']}", "step 1 loss 0.5", f"WANDB_API_KEY={WANDB_KEY}", "step 2 loss 0.4",
    '{', '  "tokenizer": "abcdefghijklmnopqrstuvwxyz",', f'  "api_key": "{WANDB_KEY}",', '  "steps": 3', '}',
    f"aws {KEYS['AWS key id']} step 3", "step 4", f"bot {KEYS['bot token']}", "step 5 password reset", "step 6",
]


def test_secrets_at_any_block_boundary_of_the_output_are_redacted_and_nothing_else_changes(tmp_path):
    detector = SecretDetector()
    data = "".join(f"{line}\n" for line in BLOCK_LINES * 3).encode()
    expected = detector.redact_all(data.decode()).encode()
    assert expected.count(b"[redacted]") == 15 and expected.count(b"\n") == data.count(b"\n")
    starts = [0] + [index + 1 for index, byte in enumerate(data) if byte == 0x0A]  # where each line begins
    generator = random.Random(30)
    for trial in range(200):
        first = starts[trial % len(starts)]  # every line is line 1 of a block, and line 2 (the block before)
        cuts = sorted({first, *(generator.randrange(len(data)) for _ in range(generator.randrange(1, 8)))})
        path = tmp_path / f"stdout-{trial}.log"
        log = OutputLog(path, detector.redact_lines)
        for start, end in zip([0, *cuts], [*cuts, len(data)]):
            log.feed(data[start:end])
        log.close()
        kept = path.read_bytes()
        assert not any(secret.encode() in kept for secret in (WANDB_KEY, *KEYS.values())), cuts
        assert kept == expected, cuts


def test_a_record_whose_first_lines_hold_an_anchor_is_rewritten_only_where_a_secret_is(tmp_path):
    record = tmp_path / "config.json"
    text = json.dumps({"tokenizer": "abcdefghijklmnopqrstuvwxyz", "vocab": 32000, "note": "ok"}, indent=2) + "\n"
    record.write_text(text)
    assert not vcs.redact_file(record, SecretDetector()) and record.read_text() == text
    record.write_text(f"token {KEYS['token']}\nstep 1\nstep 2\n")
    assert vcs.redact_file(record, SecretDetector()) and record.read_text() == "token [redacted]\nstep 1\nstep 2\n"


@pytest.mark.parametrize("gap", [4000, 4021, 4040, 4059, 4100])
def test_a_second_key_a_window_away_on_a_long_line_is_redacted(tmp_path, gap):
    token = KEYS["token"]
    line = "x" * 10000 + token + " " * gap + token + " " + "y" * 10000
    log = OutputLog(tmp_path / "stdout.log", SecretDetector().redact_lines)
    log.feed(f"{line}\nstep 1\n".encode())
    log.close()
    assert (tmp_path / "stdout.log").read_text() == line.replace(token, "[redacted]") + "\nstep 1\n"
