"""Pages beyond the daily log: training reports, baseline changelogs and ablation comparisons, from records of known
situations and from wrapped scripts' runs."""

import json
import math
import os
import re
import sys
from pathlib import Path

import pytest

from lab.health import diagnosis
from lab.pages import changelogs, comparisons, reports
from lab.records.config import apply_overrides, to_dict
from lab.records.files import append_jsonl, write_json
from lab.records.store import Store
from trainers.neural_decoder.config import baseline


def add_run(store, run_id, overrides=(), rows=None, parent=None, group=None, conclusion=None, base=None):
    config = apply_overrides(store.runs.config(parent) if parent else base or to_dict(baseline()), list(overrides))
    store.runs.create(run_id, hypothesis=f"hypothesis of {run_id}", family="neural_decoder", preset="baseline",
                     baseline="cffan_baseline", parent=parent, group=group, config=config)
    if rows is not None:
        folder = store.attempts.begin(run_id, command=["python", "-m", "trainers"], pid=os.getpid(),
                                     builtin_trainer=True, overrides=[],
                                     git={"sha": "0123456789abcdef", "branch": "main", "committed": True},
                                     checkpoints={"last": {"path": "/artefacts/last.pt", "step": rows[-1]["step"]}})
        write_json(folder / "config.json", config)
        for row in rows:
            append_jsonl(folder / "metrics.jsonl", row)
        write_json(folder / "summary.json", {"param_count": 12345, "steps": rows[-1]["step"], "samples_per_s": 100.0,
                                             "wall_s": 60.0, "peak_mem_mb": 512.0})
        store.attempts.end(folder, exit_code=0, status="finished")
    if conclusion:
        store.events.add(run_id, "note", field="conclusion", text=conclusion)


def curve(steps, start, end, eval_every=10, val_offset=0.1, val_rise_after=None, train_key="train/loss", rate=10):
    """Metric rows: train loss decaying from start to end (settled by the last evaluations unless `rate` is
    small), an evaluation every `eval_every` steps."""
    rows = []
    for step in range(1, steps + 1):
        loss = end + (start - end) * math.exp(-rate * step / steps)
        rows.append({"step": step, "time": 1000.0 + step, train_key: loss, "train/grad_norm": 1.0, "train/lr": 1e-3})
        if step % eval_every == 0:
            rising = val_rise_after and step > val_rise_after
            val = loss + val_offset + (0.02 * (step - val_rise_after) if rising else 0)
            rows.append({"step": step, "time": 1000.5 + step, "val/loss": val, "val/per": val / 4})
    return rows


@pytest.fixture
def story(tmp_path):
    """nsd_001 reproduces the baseline, nsd_002 lowers the LR (better), nsd_003 adds noise (worse)."""
    store = Store.init(tmp_path)
    store.baselines.save("cffan_baseline", {"repository": "https://github.com/cffan/neural_seq_decoder",
                                           "config_file": "config.yaml"}, to_dict(baseline()))
    add_run(store, "nsd_001", rows=curve(100, 3.0, 1.2))
    add_run(store, "nsd_002", ["optim.lr=0.0015", "train.grad_clip=1.0"], curve(100, 3.0, 0.6), parent="nsd_001",
            group="noise", conclusion="Lower LR trains better")
    add_run(store, "nsd_003", ["data.white_noise_sd=1.5"], curve(100, 3.0, 0.9), parent="nsd_002", group="noise",
            conclusion="More noise hurts")
    return store


def test_changelog_tracks_changes_results_and_status(story):
    page = changelogs.changelog(story, "cffan_baseline").read_text()
    assert page.startswith("# Changelog: Modifications from cffan_baseline")
    assert "**Baseline Repository**: https://github.com/cffan/neural_seq_decoder (`config.yaml`)" in page
    assert re.search(r"\*\*Best val/per\*\*: 0\.1[0-9]* at step 100 \(nsd_002, Run #2\)", page)
    assert "Against the baseline's own result" in page and "better" in page
    sections = re.findall(r"^## \d+\. (\w+)", page, re.M)
    assert sections == ["Schedule", "Clipping", "Augmentation"]
    schedule = page.split("## 1. Schedule")[1].split("## 2.")[0]
    assert "- `optim.lr`: 0.02" in schedule
    assert "**Run #2 (nsd_002)**: `optim.lr`: 0.02 → 0.0015" in schedule and "✅ supported: val/per" in schedule \
        and "for nsd_001:1, 46.1% lower (better)" in schedule
    assert re.findall(r"^### Run #(\d): (nsd_\d+)", page, re.M) == [
        ("1", "nsd_001"), ("2", "nsd_002"), ("3", "nsd_003")]
    table = page.split("## Baseline Comparison Table")[1]
    assert "Current (Run #2)" in table, "the best run, not the latest ablation arm"
    assert "| `optim.lr` | 0.02 | 0.0015 | ✅ improved (Run #2), confounded |" in table  # two keys in one run
    assert "white_noise_sd" not in table
    changelogs.set_current(story, "cffan_baseline", "nsd_003")
    picked = changelogs.changelog(story, "cffan_baseline").read_text()
    picked_table = picked.split("## Baseline Comparison Table")[1]
    assert "| `data.white_noise_sd` | 0.8 | 1.5 | ❌ worse (Run #3) |" in picked_table
    works = page.split("## What Works")[1].split("## What Doesn't Work")[0]
    fails = page.split("## What Doesn't Work")[1].split("---")[0]
    assert "`train.grad_clip`: 0.0 → 1.0" in works and "white_noise_sd" not in works
    assert "`data.white_noise_sd`: 0.8 → 1.5" in fails

    changelogs.set_status_override(story, "cffan_baseline", "train.grad_clip=✅ critical fix")
    table = changelogs.changelog(story, "cffan_baseline").read_text().split("## Baseline Comparison Table")[1]
    assert "| `train.grad_clip` | 0.0 | 1.0 | ✅ critical fix |" in table


def test_ablation_compares_only_differing_keys_with_deltas_and_plots(story):
    path = comparisons.compare(story, ["nsd_002", "nsd_003"], "noise")
    page = path.read_text()
    config_table = page.split("## Config Differences")[1].split("## Results")[0]
    assert "| `data.white_noise_sd` | 0.8 | 1.5 |" in config_table
    assert config_table.count("| `") == 1, "only the keys that differ"
    per = page.split("### val/per")[1].split("###")[0]
    assert re.search(r"\| nsd_003:1 \| [0-9.]+ \| 100 \| [0-9.]+ \| 100 \| [0-9.]+ \| \+0\.0[0-9]+ ❌ \|", per)
    assert "![val/per](noise/val_per.svg)" in per
    assert (path.parent / "noise" / "val_per.svg").read_text().startswith("<svg ")
    assert "- **nsd_003:1**: More noise hurts" in page
    with pytest.raises(reports.LabError, match="at least two"):
        comparisons.compare(story, ["nsd_002"])


def test_report_has_evaluation_table_plots_resources_and_reproduce(story):
    add_run(story, "nsd_004", ["model.dropout=0.0"], curve(100, 3.0, 0.2, val_offset=0.05, val_rise_after=40),
            parent="nsd_002")
    diagnosis.doctor(story, "nsd_004")
    path = reports.report(story, "nsd_004")
    page = path.read_text()
    assert page.startswith("# Training Report: nsd_004")
    assert "- **Parameters**: 12,345" in page
    table = page.split("## Training Metrics")[1].split("##")[0]
    lines = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(lines) == 10
    assert lines[0].endswith("| best so far |")
    assert any("gap widening" in line for line in lines[5:])
    curves = (path.parent / "nsd_004" / "curves.svg").read_text()
    assert curves.startswith("<svg ") and curves.count("<polyline") >= 3 and "loss (log)" in curves
    assert "(nsd_004/curves.svg)" in page
    assert "lab launch nsd_004 --resume" in page and "git checkout 0123456" in page
    health = page.split("## Health Findings")[1]
    assert "`gap_widening`" in health


def test_doctor_records_each_finding_once_and_render_is_byte_stable(story):
    rows = curve(100, 3.0, 1.0)
    rows[60]["train/loss"] = "nan"
    nan_step = rows[60]["step"]
    add_run(story, "nsd_005", rows=rows, parent="nsd_001")
    first = diagnosis.doctor(story, "nsd_005")
    assert "non_finite" in {f.rule for f in first}
    diagnosis.doctor(story, "nsd_005")
    events = [e for e in story.events.of("nsd_005") if e["kind"] == "health"]
    assert sorted(e["rule"] for e in events) == sorted(f.rule for f in first)
    assert diagnosis.doctor(story, "nsd_002", record=False) == []

    paths = reports.render_all(story)
    names = {p.relative_to(story.logs_dir).as_posix() for p in paths}
    assert {"changelogs/cffan_baseline.md", "ablations/noise.md", "reports/nsd_005.md"} <= names
    assert any(name.startswith("daily/") for name in names)
    before = {p: p.read_bytes() for p in story.logs_dir.rglob("*") if p.suffix in (".md", ".svg")}
    reports.render_all(story)
    after = {p: p.read_bytes() for p in story.logs_dir.rglob("*") if p.suffix in (".md", ".svg")}
    assert before == after
    daily = next(p for p in paths if "daily" in str(p)).read_text()
    assert f"`non_finite` at step {nan_step}" in daily.split("### nsd_005")[1]


def test_doctor_lists_findings_recorded_live(story):
    add_run(story, "nsd_006", rows=curve(100, 3.0, 1.0), parent="nsd_001")
    story.events.add("nsd_006", "health", attempt=1, rule="ctc_blank_collapse", severity="warning", step=60,
                    message="val/blank_frac above 0.9", evidence={"step": 60}, suggestion="Lower the LR")
    findings = diagnosis.doctor(story, "nsd_006", record=False)
    assert "ctc_blank_collapse" in {finding.rule for finding in findings}
    assert diagnosis.doctor(story, "nsd_002", record=False) == []


def test_best_column_follows_metric_directions(story):
    rows = curve(20, 3.0, 1.0, eval_every=10)
    for index, row in enumerate(rows):
        if "train/loss" in row:
            row.update({"train/samples_per_s": 100.0 + index, "train/lr": 1e-3 * (1 + index)})
    add_run(story, "nsd_007", rows=rows, parent="nsd_001")
    page = reports.report(story, "nsd_007").read_text()
    table = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[3:6]]
             for line in page.split("### Final and Best Values")[1].split("###")[0].splitlines()[4:]
             if line.startswith("| ")}
    assert "train/samples_per_s" not in table  # a throughput has no "best": it is in the bookkeeping table
    detail = page.split("### Bookkeeping")[1].split("\n---\n")[0]
    assert "| train/samples_per_s | " in detail and "Own best" not in detail
    assert table["train/lr"][1:] == ["-", "-"] and table["train/grad_norm"][1:] == ["-", "-"]  # no "best" LR
    assert table["train/loss"][2] == "20" and table["val/per"][1] != "-"


def test_a_failed_attempts_report_says_why(story):
    add_run(story, "nsd_008", rows=curve(20, 3.0, 1.0), parent="nsd_001")
    folder = story.attempt_dir("nsd_008", 1)
    (folder / "stdout.log").write_text("step 1 ok\n" + "noise\n" * 30 + "Traceback (most recent call last):\n"
                                       "RuntimeError: CUDA out of memory\n")
    record = json.loads((folder / "attempt.json").read_text())
    record.update(status="failed", exit_code=1)
    (folder / "attempt.json").write_text(json.dumps(record))
    page = reports.report(story, "nsd_008").read_text()
    why = page.split("### Why it failed")[1].split("---")[0]
    assert "RuntimeError: CUDA out of memory" in why and "step 1 ok" not in why
    assert reports.report(story, "nsd_001").read_text().count("Why it") == 0


def test_ablation_pages_show_cost_and_reports_link_samples(story):
    rows = curve(20, 3.0, 1.0)
    for row in rows:
        if "train/loss" in row:
            row.update({"train/samples_per_s": 250.0, "train/peak_mem_mb": 900.0})
    add_run(story, "nsd_009", rows=rows, parent="nsd_001")
    write_json(story.attempt_dir("nsd_009", 1) / "summary.json", {"samples_per_s": 250.0, "peak_mem_mb": 900.0})
    page = comparisons.compare(story, ["nsd_001", "nsd_009"]).read_text()
    assert "### Cost" in page and "| nsd_009:1 | 250 | 900 MiB | not profiled |" in page  # overall rate, process peak
    append_jsonl(story.attempt_dir("nsd_009", 1) / "media.jsonl",
                 {"step": 20, "name": "samples/conditional", "path": "/artefacts/s.wav", "kind": "audio"})
    report = reports.report(story, "nsd_009").read_text()
    assert "## Samples" in report and "step 20, samples/conditional (audio): `/artefacts/s.wav`" in report


@pytest.mark.light
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


@pytest.mark.light
def test_a_constant_learning_rate_gets_no_panel(script_lab, repo):
    lab = script_lab
    (repo / "lr.py").write_text("from lab import tracker\nfor step in range(1, 11):\n"
                                "    tracker.log(step, **{'train/loss': 1 / step, 'train/lr': 0.001})\n")
    lab("new-run", "sin_006", "--hypothesis", "h")
    lab("launch", "sin_006", "--no-commit", "--", sys.executable, "lr.py")
    lab("report", "sin_006")
    assert "learning rate" not in (repo / "logs/reports/sin_006.md").read_text()


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
def script_story(lab):
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


@pytest.mark.light
def test_the_changelog_flags_confounded_changes_and_wins_over_a_weak_parent(script_story):
    script_story("changelog", "sine_base")
    page = (script_story.repo / "logs/changelogs/sine_base.md").read_text()
    assert "**Baseline Repository**: https://github.com/me/sine" in page
    assert "### Current Status (Run #2: sin_002, the best run)" in page
    works = page.split("## What Works")[1].split("## What Doesn't Work")[0]
    assert "`lr`: 0.01 → 0.03 (Run #2" in works and "confounded" in works
    assert "Run #4 (sin_004)" in works.split("weaker parent only")[1] and "✅ `hidden`: 32 → 64 (Run #4" not in works
    assert "code (training): checkpoint on the actual metric" in page
    script_story("changelog", "sine_base", "--current", "sin_004")
    page = (script_story.repo / "logs/changelogs/sine_base.md").read_text()
    assert "### Current Status (Run #4: sin_004, your pick)" in page


@pytest.mark.light
def test_the_report_tells_the_story(script_story):
    script_story("report", "sin_002")
    page = (script_story.repo / "logs/reports/sin_002.md").read_text()
    assert re.search(r"\*\*Verdict\*\*: supported: val/loss 0\.422 at step 200 vs 0\.53\d* for sin_001:1, "
                     r"2\d\.\d% lower \(better\); evaluation size not logged", page)
    assert "- **Findings**: both changes together help" in page and "- **Conclusion**: keep them" in page
    assert "Changes against parent sin_001:\n- `lr`: 0.01 → 0.03\n- `hidden`: 32 → 64" in page
    assert "Changes against baseline sine_base:" in page
    assert re.search(r"- Wall time: \d+s", page)
    script_story("report", "sin_003")
    assert "**Verdict**: not supported: val/loss" in (script_story.repo / "logs/reports/sin_003.md").read_text()


@pytest.mark.light
def test_the_ablation_page_has_its_reference_marks_and_a_winner(script_story):
    for run_id in ("sin_002", "sin_003"):
        script_story("new-run", run_id.replace("sin", "abl"), "--from", "sin_001", "--group", "lr", "--hypothesis", "h")
    script_story("launch", "abl_002", "--no-commit", "--", sys.executable, "train.py", "--lr", "0.03")
    script_story("launch", "abl_003", "--no-commit", "--", sys.executable, "train.py", "--lr", "0.001")
    script_story("compare", "--group", "lr")
    page = (script_story.repo / "logs/ablations/lr.md").read_text()
    assert "| sin_001:1 (reference) |" in page
    assert re.search(r"\| abl_002:1 \| [^|]+ \| 200 \| [^|]+ \| [^|]+ \| [^|]+ \| -[\d.]+ ✅ \|", page)
    assert re.search(r"\| abl_003:1 \| [^|]+ \| 200 \| [^|]+ \| [^|]+ \| [^|]+ \| \+[\d.]+ ❌ \|", page)
    assert "### val/zero" not in page and "Not compared: val/zero (all zero)." in page  # named, not dropped
    assert "**abl_002:1** wins on val/loss" in page


@pytest.mark.light
def test_render_rebuilds_comparison_pages(script_story):
    script_story("compare", "sin_002", "sin_003")
    page = script_story.repo / "logs/ablations/sin_002_vs_sin_003.md"
    page.unlink()
    script_story("render")
    assert page.exists()


@pytest.mark.light
def test_a_baseline_needs_one_config_and_is_never_replaced(script_story):
    both = script_story("baseline", "add", "other", "--config", "base.json", "--from-run", "sin_001", check=False)
    assert both.returncode == 2 and "one of them" in both.stderr
    again = script_story("baseline", "add", "sine_base", "--from-run", "sin_002", check=False)
    assert again.returncode == 2 and "exists" in again.stderr
    script_story("baseline", "add", "wide_base", "--from-run", "sin_002")
    script_story("new-run", "sin_009", "--baseline", "wide_base", "--hypothesis", "h")
    assert json.loads((script_story.repo / "logs/runs/sin_009/config.json").read_text()) == {"hidden": 64, "lr": 0.03}


def test_a_changelog_without_results_names_no_best_run(lab, repo):
    (repo / "base.json").write_text(json.dumps({"lr": 0.1}))
    lab("baseline", "add", "orig", "--config", "base.json")
    lab("new-run", "c_003", "--baseline", "orig", "--hypothesis", "h", "--set", "lr=0.2")
    page = Path(lab("changelog", "orig").stdout.strip()).read_text()
    assert "the best run" not in page and "the latest run: no run has a result yet" in page


@pytest.mark.light
def test_a_scripts_report_says_only_what_was_recorded(lab, repo):
    lab("new-run", "sc_001", "--hypothesis", "a script of my own")
    code = ("from lab import tracker\nfor step in range(1, 41):\n"
            "    tracker.log(step, **{'train/loss': 2.0 / step})\n"
            "    if step % 10 == 0:\n"
            "        tracker.log(step, **{'val/loss': 2.5 / step, 'val/loss_se': 0.01, 'val/utterances': 64,\n"
            "                             'train/ctc_infeasible_frac': 0.0})\n")
    lab("launch", "sc_001", "--no-commit", "--", sys.executable, "-c", code)
    lab("report", "sc_001")
    page = (repo / "logs/reports/sc_001.md").read_text()
    assert "- Best val/loss: **0.0625** at step 40 (every table reads its metrics there; no checkpoint was " \
           "recorded at this step)" in page
    assert "kept checkpoint" not in page  # the script saved none
    assert "| Step | Train Loss (mean since last eval) | Val Loss | Gap | Status |" in page  # val/loss once
    for empty in ("Samples/s: -", "Peak memory: -", "Time between evaluations: - s"):
        assert empty not in page
    main = page.split("### Final and Best Values")[1].split("### Bookkeeping")[0]
    detail = page.split("### Bookkeeping")[1].split("\n---\n")[0]
    for bookkeeping in ("val/loss_se", "val/utterances", "train/ctc_infeasible_frac"):
        assert f"| {bookkeeping} |" in detail and f"| {bookkeeping} |" not in main
    assert "| val/loss |" in main and "| train/loss |" in main

    code += "tracker.checkpoint('best', 'best.pt', 40)\n"
    lab("launch", "sc_001", "--no-commit", "--", sys.executable, "-c", code)
    lab("report", "sc_001", "--attempt", "2")
    page = (repo / "logs/reports/sc_001.md").read_text()
    assert "at step 40 (the kept checkpoint; every table reads its metrics there)" in page
    assert page.count("kept checkpoint") == 2  # the summary line and the evaluation row at step 40


def test_memory_has_one_unit_everywhere(story):
    add_run(story, "nsd_010", rows=curve(20, 3.0, 1.0), parent="nsd_001")
    folder = story.attempt_dir("nsd_010", 1)
    story.attempts.update(folder, merge=lambda record: {"memory_plan": {
        "total": 18_500_000, "weights": 4_600_000, "gradients": 4_600_000, "optimizer": 9_300_000,
        "activations": None, "parallel": "ddp", "processes": 1, "optimizer_name": "adam"}})
    write_json(folder / "summary.json", {"peak_mem_mb": 1536.0, "data": {"mean_frames": 112.64453125, "days": 4}})
    page = reports.report(story, "nsd_010").read_text()
    assert "- Memory plan: 17.64 MiB per device (ddp x1, adam): weights 4.387 MiB, gradients 4.387 MiB, " \
           "optimizer 8.869 MiB, activations unknown" in page
    assert "- Peak memory: 1,536 MiB (process peak)" in page and " MB" not in page
    assert "- **Data mean_frames**: 112.6" in page and "- **Data days**: 4" in page


def test_new_run_states_its_memory_plan_in_mib(lab):
    created = lab("new-run", "nsd_001", "--preset", "tiny", "--hypothesis", "the tiny preset").stdout
    plan = next(line for line in created.splitlines() if "memory plan per device" in line)
    assert re.search(r"weights [\d.]+ MiB, gradients [\d.]+ MiB, optimizer [\d.]+ MiB, .*; total [\d.]+ MiB of "
                     r"[\d,]+ MiB \(", plan) and " MB" not in plan and " GB" not in plan


@pytest.mark.light
def test_a_command_change_beside_a_config_change_is_confounded(script_story):
    lab = script_story
    (lab.repo / "fast.py").write_text(STORY_SCRIPT)
    lab("new-run", "sin_005", "--hypothesis", "h", "--from", "sin_001", "--set", "lr=0.03")
    lab("launch", "sin_005", "--no-commit", "--", sys.executable, "fast.py", "--lr", "0.03")
    lab("changelog", "sine_base", "--current", "sin_005")
    page = (lab.repo / "logs/changelogs/sine_base.md").read_text()
    assert "- command: added `fast.py`; removed `train.py`" in page.split("### Run #5")[1]
    ours = page.split("### Our Changes")[1].split("## Runs")[0]
    lines = [line for line in ours.splitlines() if line.strip()]
    results_of = {line.split("**")[1]: result for line, result in zip(lines, lines[1:]) if line.startswith("- **Run")}
    assert "confounded: the run changed 2 things at once" in results_of["Run #5 (sin_005)"]
    assert "confounded" not in results_of["Run #3 (sin_003)"]  # its flag only sets the changed key
