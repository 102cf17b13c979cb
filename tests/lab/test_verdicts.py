"""Verdicts a researcher would sign (issue 21), from synthetic records: checkable expectations, one best per run read
at the kept checkpoint on every page, a resumed attempt continuing its parent's stream, one gap definition, noise
and convergence."""

import os
import re
import sys
from pathlib import Path

import pytest

from lab.health import diagnosis
from lab.pages import changelogs, comparisons, context, reports
from lab.records.files import append_jsonl, write_json
from lab.records.store import Store


EER_CONFIG = {"train": {"best_metric": "val/eer_64", "best_mode": "min"}}


@pytest.fixture
def store(tmp_path):
    return Store.init(tmp_path)


def add_run(store, run_id, rows, config=None, parent=None, expect=None, resume_from=None, artefacts=None,
            baseline=None):
    """A run (created if new) with one more attempt that logged `rows`; returns the ended attempt's folder."""
    config = config or {"train": {"best_metric": "val/loss", "best_mode": "min"}}
    if not store.exists(run_id):
        store.runs.create(run_id, hypothesis=f"hypothesis of {run_id}", parent=parent, config=config,
                         baseline=baseline, **({"expect": expect} if expect else {}))
    fields = {"checkpoints": {"last": {"path": f"{artefacts}/last.pt", "step": rows[-1]["step"]}}} if artefacts else {}
    folder = store.attempts.begin(run_id, command=["python", "train.py"], pid=os.getpid(), resume_from=resume_from,
                                 **fields)
    if artefacts:
        store.attempts.update(folder, artefacts=artefacts)
    write_json(folder / "config.json", config)
    for row in rows:
        append_jsonl(folder / "metrics.jsonl", row)
    store.attempts.end(folder, exit_code=0, status="finished")
    return store.attempt_dir(run_id, store.attempts.numbers(run_id)[-1])  # where the ended attempt now lies


def eer_rows():
    """16-d EER best at step 80 (0.20), 64-d best at step 160 (0.20) where the 16-d one is 0.276."""
    eer_16 = {40: 0.30, 80: 0.20, 120: 0.25, 160: 0.276, 200: 0.28}
    eer_64 = {40: 0.35, 80: 0.30, 120: 0.24, 160: 0.20, 200: 0.22}
    return [{"step": step, "val/eer_16": eer_16[step], "val/eer_64": eer_64[step], "val/trials": 480,
             "val/speakers": 8} for step in eer_16]


def verdict_line(store, run_id):
    page = reports.report(store, run_id).read_text()
    return re.search(r"^\*\*Verdict\*\*: (.*)$", page, re.M).group(1)


@pytest.mark.light
def test_an_expectation_on_per_dim_eer_is_checked_at_the_kept_checkpoint(store):
    add_run(store, "spk_001", eer_rows(), EER_CONFIG, expect="val/eer_16 <= 1.2 * val/eer_64")
    verdict = verdict_line(store, "spk_001")
    # at step 160 (the kept 64-d best) the 16-d EER is 0.276 > 1.2 * 0.20, though its own best (0.20) is not
    assert verdict.startswith("not supported: val/eer_16 <= 1.2 * val/eer_64: 0.276 > 1.2 * val/eer_64 = 0.24")
    assert "val/eer_16 0.276 (step 160 of spk_001:1)" in verdict and "val/eer_64 0.2 (step 160 of spk_001:1)" in verdict
    assert verdict.endswith("evaluated on 480 trials, 8 speakers")

    page = reports.report(store, "spk_001").read_text()
    dims = page.split("### Verification per Embedding Dimension")[1]
    assert "At the kept checkpoint (step 160)" in dims
    assert "| 16 | 27.60% | 38.0% higher (worse) | - | 20.00% | 80 | 28.00% |" in dims
    assert "| 64 | 20.00% | - | - | 20.00% | 160 | 22.00% |" in dims
    values = page.split("### Final and Best Values")[1]
    assert "| Metric | At kept step 160 | Final | Own best | Own best step |" in values
    assert "| val/eer_16 | 0.276 | 0.28 | 0.2 | 80 |" in values
    assert "| val/trials | 480 | 480 |" in values.split("### Bookkeeping")[1]  # a size has no best


@pytest.mark.light
def test_a_supported_and_a_noisy_expectation(store):
    add_run(store, "spk_002", eer_rows(), EER_CONFIG, expect="val/eer_16 <= 1.5 * val/eer_64")
    assert verdict_line(store, "spk_002").startswith("supported: val/eer_16 <= 1.5 * val/eer_64: 0.276 <= ")
    noisy = [{**row, "val/eer_16_se": 0.03, "val/eer_64_se": 0.03} for row in eer_rows()]
    add_run(store, "spk_003", noisy, EER_CONFIG, expect="val/eer_16 <= 1.2 * val/eer_64")
    verdict = verdict_line(store, "spk_003")
    assert verdict.startswith("inconclusive: ") and "(within ±" in verdict
    assert "val/eer_16 0.276 ± 0.03" in verdict and "inside the noise (2 standard errors)" in verdict


@pytest.mark.light
def test_an_expectation_against_another_run(store):
    add_run(store, "nsd_001", [{"step": 100, "val/per": 0.40}, {"step": 200, "val/per": 0.36},
                               {"step": 300, "val/per": 0.37}], {"train": {"best_metric": "val/per"}})
    add_run(store, "nsd_002", [{"step": 100, "val/per": 0.34}, {"step": 200, "val/per": 0.35}],
            {"train": {"best_metric": "val/per"}}, expect="val/per < nsd_001")
    verdict = verdict_line(store, "nsd_002")
    assert verdict.startswith("supported: val/per < nsd_001: 0.34 < 0.36; ")
    assert "nsd_001:val/per 0.36 (step 200 of nsd_001:1)" in verdict
    assert "val/per 0.34 (step 100 of nsd_002:1)" in verdict
    day = context.daily_log(store, context.active_days(store)[-1]).read_text()
    block = day.split("### nsd_002")[1]
    assert "**Verdict:** supported: val/per < nsd_001: 0.34 < 0.36" in block
    assert "**Test 1** (finished, exit 0, 0s): val/per 0.34 at step 100\n" in block


@pytest.mark.light
def test_new_run_checks_an_expectation_before_creating_anything(lab):
    lab("new-run", "exp_001", "--hypothesis", "reference")
    good = lab("new-run", "exp_002", "--hypothesis", "lower PER", "--expect", "val/per < exp_001 - 0.01")
    assert good.returncode == 0
    assert "expect: val/per < exp_001 - 0.01" in lab("show", "exp_002").stdout
    for text, message in [("__import__('os').system('true') < 1", "only metrics, numbers, run ids"),
                          ("val/per < exp_099", "names exp_099, which is no run"),
                          ("val/per", "compares nothing"),
                          ("exp_001 < 0.5", "name the metric, like exp_001:val/loss"),
                          ("val/per <", "is not a comparison")]:
        bad = lab("new-run", "exp_003", "--hypothesis", "h", "--expect", text, check=False)
        assert bad.returncode == 2 and bad.stderr.startswith("lab: error: --expect") and message in bad.stderr, \
            (text, bad.stderr)
        assert bad.stderr.count("\n") == 1
    assert not (lab.repo / "logs/runs/exp_003").exists()


@pytest.mark.light
def test_a_resumed_attempt_continues_its_parents_stream_on_every_page(store, tmp_path):
    config = {"train": {"best_metric": "val/per", "best_mode": "min"}}
    store.baselines.save("base", {"repository": "https://example.org/nsd"}, config)
    first = [{"step": step, "val/per": per} for step, per in [(50, 0.50), (150, 0.40), (250, 0.3541)]]
    add_run(store, "nsd_001", first, config, artefacts=str(tmp_path / "artefacts/nsd_001/1"), baseline="base")
    later = [{"step": step, "val/per": per} for step, per in [(300, 0.37), (350, 0.365), (400, 0.3602)]]
    add_run(store, "nsd_001", later, config, resume_from=str(tmp_path / "artefacts/nsd_001/1/last.pt"))

    day = context.daily_log(store, context.active_days(store)[-1]).read_text()
    assert "(finished, exit 0, 0s, resumed from Test 1 at step 250): val/per 0.3541 at step 250\n" in day
    page = reports.report(store, "nsd_001").read_text()
    assert "- Best val/per: **0.3541** at step 250" in page
    assert "- Resumed: this stream continues Test 1" in page
    assert "| 250 | - | - | - | 0.3541 | best so far, kept checkpoint |" in page
    assert "| 400 | - | - | - | 0.3602 | - |" in page
    changelog = changelogs.changelog(store, "base").read_text()
    assert "val/per 0.3541 at step 250" in changelog and "0.3602 at step 400" not in changelog


def gap_rows():
    """A run that overfits: val loss bottoms at step 40 and rises while the train loss keeps falling; the train
    loss is noisy between evaluations, so its mean and its last value differ."""
    rows, val = [], {10: 1.6, 20: 1.4, 30: 1.3, 40: 1.25, 50: 1.3, 60: 1.38, 70: 1.45, 80: 1.55}
    for step in range(1, 81):
        rows.append({"step": step, "train/loss": 2.0 - step * 0.015 + (0.1 if step % 2 else -0.1)})
        if step in val:
            rows.append({"step": step, "val/loss": val[step]})
    return rows


@pytest.mark.light
def test_the_gap_is_one_definition_for_the_rule_and_the_table(store):
    add_run(store, "gap_001", gap_rows())
    finding = next(f for f in diagnosis.doctor(store, "gap_001") if f.rule == "gap_widening")
    page = reports.report(store, "gap_001").read_text()
    table = page.split("## Training Metrics")[1].split("###")[0]
    best_row = next(line for line in table.splitlines() if line.startswith(f"| {finding.evidence['best_step']} |"))
    last_row = next(line for line in table.splitlines() if line.startswith(f"| {finding.evidence['last_step']} |"))
    assert f"| {finding.evidence['best_gap']:.4g} |" in best_row
    assert f"| {finding.evidence['last_gap']:.4g} |" in last_row
    assert "best so far" in best_row and "gap widening" in last_row  # no checkpoint recorded: none "kept"


@pytest.mark.light
def test_no_gap_is_marked_where_no_rule_fired(store):
    rows = [row for row in gap_rows() if row["step"] <= 50]
    rows[-1]["val/loss"] = 1.26  # the gap widens, but val loss is within 1% of its minimum: no overfitting
    add_run(store, "gap_002", rows)
    assert not [f for f in diagnosis.doctor(store, "gap_002") if f.rule == "gap_widening"]
    page = reports.report(store, "gap_002").read_text()
    assert "gap widening" not in page and "No health rule fired." in page


@pytest.mark.light
def test_a_difference_inside_its_noise_is_inconclusive_and_sizes_are_stated(store):
    size = {"val/clips": 3, "val/tokens": 1234}
    add_run(store, "dia_001", [{"step": 10, "val/loss": 2.0, "val/loss_se": 0.05, **size},
                               {"step": 20, "val/loss": 1.90, "val/loss_se": 0.05, **size},
                               {"step": 30, "val/loss": 1.90, "val/loss_se": 0.05, **size}])
    add_run(store, "dia_002", [{"step": 10, "val/loss": 1.95, "val/loss_se": 0.05, **size},
                               {"step": 20, "val/loss": 1.85, "val/loss_se": 0.05, **size},
                               {"step": 30, "val/loss": 1.86, "val/loss_se": 0.05, **size}], parent="dia_001")
    verdict = verdict_line(store, "dia_002")
    assert verdict == ("inconclusive: val/loss 1.85 at step 20 vs 1.9 for dia_001:1, 2.6% lower, the "
                       "difference 0.05 is within the noise (±0.1414, 2 standard errors); evaluated on 3 clips, "
                       "1,234 tokens")
    add_run(store, "dia_003", [{"step": 10, "val/loss": 2.2, "val/loss_se": 0.01, **size},
                               {"step": 20, "val/loss": 2.071, "val/loss_se": 0.01, **size},
                               {"step": 30, "val/loss": 2.08, "val/loss_se": 0.01, **size}], parent="dia_001")
    assert verdict_line(store, "dia_003").startswith(
        "not supported: val/loss 2.071 at step 20 vs 1.9 for dia_001:1, 9.0% higher (worse); evaluated on 3 clips")
    add_run(store, "dia_004", [{"step": 10, "val/loss": 1.9002, "val/loss_se": 0.05, **size}], parent="dia_001")
    assert verdict_line(store, "dia_004").startswith(  # never '0.0% higher (worse)' for a change inside the noise
        "inconclusive: val/loss 1.9 at step 10 vs 1.9 for dia_001:1, 0.011% higher, the difference 0.0002 is within")
    compare = comparisons.compare(store, ["dia_001", "dia_002"]).read_text()
    assert re.search(r"\| dia_002:1 \| 1\.85 \| 20 \| .* \| -0\.05 〰️ \(the difference 0\.05 is within the noise",
                     compare)
    assert "No clear winner on val/loss: **dia_002:1** reads val/loss 1.85 at step 20 vs 1.9 for dia_001:1" in compare


@pytest.mark.light
def test_a_run_still_improving_fast_enough_to_close_the_gap_is_inconclusive(store):
    add_run(store, "sash_001", [{"step": 100, "val/loss": 2.0}, {"step": 200, "val/loss": 1.5},
                                {"step": 300, "val/loss": 1.5}])
    add_run(store, "sash_002", [{"step": 100, "val/loss": 2.4}, {"step": 200, "val/loss": 2.0},
                                {"step": 300, "val/loss": 1.7}], parent="sash_001")
    verdict = verdict_line(store, "sash_002")
    assert verdict == ("inconclusive: val/loss 1.7 at step 300 vs 1.5 for sash_001:1, 13.3% higher (worse), at its "
                       "last trend of -0.35 per 100 steps it would need about 57 more steps to close the 0.2 gap; "
                       "evaluation size not logged")
    page = reports.report(store, "sash_002").read_text()
    assert "; still improving at its last evaluation" in page
    compare = comparisons.compare(store, ["sash_001", "sash_002"]).read_text()
    assert re.search(r"^\| sash_002:1 \| 1\.7 \| .* \| \+0\.2 〰️ \(at its last trend of -0\.35 per 100 steps it would "
                     r"need about 57 more steps to close the 0\.2 gap\) \|$", compare, re.M), compare


@pytest.mark.light
def test_the_changelog_marks_say_their_evaluation_size_and_noise(store):
    base = {"train": {"best_metric": "val/loss", "best_mode": "min"}, "optim": {"lr": 0.01}}
    store.baselines.save("base", {"repository": "https://example.org/dia"}, base)
    size = {"val/clips": 3, "val/tokens": 1234}

    def rows(*losses, se=0.01):
        return [{"step": 10 * (index + 1), "val/loss": loss, "val/loss_se": se, **size}
                for index, loss in enumerate(losses)]

    add_run(store, "dia_001", rows(2.0, 1.9, 1.9), base, baseline="base")
    add_run(store, "dia_002", rows(2.0, 1.88, 1.89, se=0.05), {**base, "optim": {"lr": 0.02}}, parent="dia_001",
            baseline="base")
    add_run(store, "dia_003", rows(2.2, 2.071, 2.08), {**base, "optim": {"lr": 0.005}}, parent="dia_001",
            baseline="base")
    page = changelogs.changelog(store, "base").read_text()
    fails = page.split("## What Doesn't Work")[1]
    assert "- ❌ `optim.lr`: 0.01 → 0.005 (Run #3, 1.9 → 2.071, 9% worse; evaluated on 3 clips, 1,234 tokens)" in fails
    assert "0.02" not in page.split("## What Works")[1].split("## What Doesn't Work")[0]
    assert ("- **Result**: 〰️ inconclusive: val/loss 1.88 at step 20 vs 1.9 for dia_001:1, 1.1% lower, the "
            "difference 0.02 is within the noise (±0.102, 2 standard errors); evaluated on 3 clips, "
            "1,234 tokens") in page


@pytest.mark.light
def test_a_run_with_several_seeds_is_judged_on_their_mean_and_spread(store):
    def seeded(seed):
        return {"train": {"best_metric": "val/loss", "best_mode": "min", "seed": seed}}

    for seed, loss in enumerate([1.50, 1.52, 1.48]):
        add_run(store, "sash_001", [{"step": 10, "val/loss": loss + 0.2}, {"step": 20, "val/loss": loss},
                                    {"step": 30, "val/loss": loss + 0.01}], seeded(seed))
    for seed, loss in enumerate([1.40, 1.60, 1.35]):  # one lucky seed would call it a win; the spread does not
        add_run(store, "sash_002", [{"step": 10, "val/loss": loss + 0.2}, {"step": 20, "val/loss": loss},
                                    {"step": 30, "val/loss": loss + 0.01}], seeded(seed), parent="sash_001")
    verdict = verdict_line(store, "sash_002")
    assert verdict.startswith("inconclusive: val/loss 1.45 (mean of 3 seeds, sd 0.1323) vs 1.5 (mean of 3 seeds, "
                              "sd 0.02) for sash_001, 3.3% lower, the difference 0.05 is within the noise")


@pytest.mark.light
def test_why_a_run_failed_is_on_every_page_that_lists_it(store):
    base = {"train": {"best_metric": "val/loss", "best_mode": "min"}, "optim": {"lr": 0.01}}
    store.baselines.save("base", {"repository": "https://example.org/dia"}, base)
    add_run(store, "dia_001", [{"step": 10, "val/loss": 2.0, "val/zero": 0.0}], base, baseline="base")
    store.runs.create("dia_002", hypothesis="h", parent="dia_001", baseline="base",
                     config={**base, "optim": {"lr": 0.1}})
    folder = store.attempts.begin("dia_002", command=["python", "train.py"], pid=os.getpid())
    (folder / "stdout.log").write_text("step 1\nTraceback (most recent call last):\nRuntimeError: CUDA out of memory\n")
    store.attempts.end(folder, exit_code=1, status="failed")
    why = "Test 1 failed (exit 1): RuntimeError: CUDA out of memory"
    day = context.daily_log(store, context.active_days(store)[-1]).read_text()
    stopped = "**Test 1** (failed, exit 1, 0s): stopped: RuntimeError: CUDA out of memory\n"
    assert stopped in day.split("### dia_002")[1]
    changelog = changelogs.changelog(store, "base").read_text()
    assert f"**Result**: {why}\n" in changelog and "no result yet" not in changelog
    add_run(store, "dia_003", [{"step": 10, "val/loss": 1.9, "val/zero": 0.0}], base, parent="dia_001")
    compare = comparisons.compare(store, ["dia_001", "dia_003"]).read_text()
    assert "Not compared: val/zero (all zero)." in compare and "None" not in compare


@pytest.mark.light
def test_a_preset_switch_is_one_change_and_bookkeeping_is_never_judged(store):
    from lab.families import registry

    spec = registry.get("neural_decoder")
    base, tiny = spec.preset("baseline"), spec.preset("tiny")
    store.baselines.save("cffan", {"repository": "https://github.com/cffan/neural_seq_decoder"}, base)
    rows = [{"step": 10, "val/per": 0.5}, {"step": 20, "val/per": 0.45}, {"step": 30, "val/per": 0.45}]
    store.runs.create("nsd_001", hypothesis="tiny", family="neural_decoder", preset="tiny", baseline="cffan",
                     config=tiny)
    add_run(store, "nsd_001", rows, tiny)
    longer = {**tiny, "train": {**tiny["train"], "max_steps": 999, "eval_every": 7}}
    store.runs.create("nsd_002", hypothesis="longer", family="neural_decoder", preset="tiny", baseline="cffan",
                     parent="nsd_001", config=longer)
    add_run(store, "nsd_002", [{**row, "val/per": row["val/per"] + 0.1} for row in rows], longer)
    page = changelogs.changelog(store, "cffan").read_text()
    run_1 = page.split("### Run #1: nsd_001")[1].split("### Run #2")[0]
    assert "- preset `baseline` → `tiny` (15 keys, counted as one change)" in run_1
    assert "`optim.lr`" not in run_1 and "confounded" not in run_1
    fails = page.split("## What Doesn't Work")[1].split("---")[0]
    assert "- Nothing has made a result worse yet." in fails, "a longer run with a new cadence tests nothing"
    assert re.search(r"^## \d+\. Bookkeeping", page, re.M)
    table = page.split("## Baseline Comparison Table")[1]
    assert "| `train.max_steps` | 10000 | 300 | bookkeeping (not judged) |" in table
    assert re.search(r"\| `optim.lr` \| [^|]+ \| [^|]+ \| preset `tiny` \(Run #1\) \|", table)


@pytest.mark.light
def test_comparisons_cost_overall_rates_and_recorded_profiles(store):
    for run_id, peak_rate, overall, mib in (("sash_001", 900.0, 100.0, 802.0), ("sash_002", 400.0, 120.0, 749.0)):
        rows = [{"step": 1, "train/loss": 2.0, "train/samples_per_s": peak_rate},
                {"step": 2, "train/loss": 1.5, "train/samples_per_s": 50.0}, {"step": 2, "val/loss": 1.6}]
        folder = add_run(store, run_id, rows)
        write_json(folder / "summary.json", {"samples_per_s": overall, "peak_mem_mb": 1000.0})
        store.events.add(run_id, "profile", components={"model": mib, "activations": 12.5})
    page = comparisons.compare(store, ["sash_001", "sash_002"]).read_text()
    assert "### train/samples_per_s" not in page  # the maximum instantaneous rate is no figure to compare
    assert "| sash_001:1 | 100 | 1,000 MiB | activations 12.5 MiB, model 802 MiB |" in page
    assert "| sash_002:1 | 120 | 1,000 MiB | activations 12.5 MiB, model 749 MiB |" in page
    report = reports.report(store, "sash_002").read_text()
    assert "- Peak tensor memory of one training step (`lab profile`): activations 12.5 MiB, model 749 MiB" in report


@pytest.mark.light
def test_an_unfreeze_is_a_stage_not_a_divergence(store):
    from lab.health import rules

    rows = []
    for step in range(1, 101):  # the head learns, the backbone is released at step 50 and the loss jumps, then falls
        loss = 2.0 - step * 0.02 if step < 50 else 2.5 - (step - 50) * 0.005
        rows.append({"step": step, "train/loss": loss})
        if step % 10 == 0:
            rows.append({"step": step, "val/loss": loss + 0.1})
    staged = {"train": {"best_metric": "val/loss", "best_mode": "min", "frozen": ["backbone"], "unfreeze_step": 50}}
    assert "divergence_after_warmup" in [f.rule for f in rules.check(rows, {"train": {}})]  # without the stage
    assert "divergence_after_warmup" not in [f.rule for f in rules.check(rows, staged)]
    add_run(store, "spk_009", rows, staged)
    page = reports.report(store, "spk_009").read_text()
    assert re.search(r"^\| 50 \| .* \| [^|]*stage: unfroze backbone at step 50 \|$", page, re.M)


@pytest.mark.light
@pytest.mark.parametrize("logged, judged", [
    (["train/loss", "val/loss", "val/acc"], ("val/loss", "min")),
    (["train/loss", "eval/loss", "eval/accuracy"], ("eval/loss", "min")),  # Hugging Face Trainer's names
    (["train/loss_total", "eval/accuracy"], ("eval/accuracy", "max")),
    (["valid_loss", "train_loss"], ("valid_loss", "min")),
    (["loss", "lr", "test/loss"], ("loss", "min")),  # a test-set figure never chooses the checkpoint
    (["lr", "epoch"], ("train/loss", "min")),
    (["train/loss", "eval/throughput", "eval/top1_accuracy"], ("eval/top1_accuracy", "max")),  # speed is no result
    (["val_samples_per_sec", "val_top1_accuracy"], ("val_top1_accuracy", "max")),
    (["train/loss", "train/loss_std_dev"], ("train/loss", "min")),  # a training figure, whatever its words
    (["Loss/train", "Loss/val"], ("Loss/val", "min")),  # TensorBoard's tag order
])
def test_a_script_is_judged_on_its_validation_metric_else_its_training_loss(logged, judged):
    from lab.pages.results import judged_metric

    assert judged_metric({}, logged) == judged
    assert judged_metric({"train": {"best_metric": "lr", "best_mode": "max"}}, logged) == ("lr", "max")


@pytest.mark.light
def test_a_script_logging_only_its_training_loss_has_no_evaluation_rows(store):
    script = {"lr": 0.1}  # a wrapped script's config: no train.best_metric
    add_run(store, "tl_001", [{"step": step, "loss": 3.0 / step} for step in range(1, 301)], config=script)
    page = reports.report(store, "tl_001").read_text()
    assert "| - | - | - | - | - | no evaluation logged |" in page
    assert not re.search(r"^\| \d+ \| .* \| best so far", page, re.M)  # not a row per training step
    add_run(store, "tl_002", [{"step": step, "loss": 3.0 / step, **({"eval/accuracy": step / 400} if step % 100 == 0
                                                                    else {})} for step in range(1, 301)], config=script)
    page = reports.report(store, "tl_002").read_text()
    assert re.findall(r"^\| (\d+) \| .* \| best so far[^|]*\|$", page, re.M) == ["100", "200", "300"]


def test_identical_ablation_arms_are_called_identical(lab):
    code = "from lab import tracker\nfor step in (1, 2):\n    tracker.log(step, **{'val/loss': 0.5 / step})\n"
    for run_id in ("a_001", "a_002"):
        lab("new-run", run_id, "--hypothesis", "h")
        lab("launch", run_id, "--no-commit", "--", sys.executable, "-c", code, "--dropout", "0.1")
    page = Path(lab("compare", "a_001", "a_002").stdout.strip().splitlines()[-1]).read_text()
    assert "No run has logged metrics yet" not in page
    assert "The arms are identical: each logged the same val/loss 0.25." in page
    assert "No winner: every arm logged the same val/loss (0.25); the arms are identical" in page


CURVE = """import argparse, math, sys
from lab import tracker
parser = argparse.ArgumentParser()
parser.add_argument('--lr', type=float, default=0.1)
parser.add_argument('--crash-at', type=int, default=0)
parser.add_argument('--nan-at', type=int, default=0)
parser.add_argument('--tail', type=float, default=0.0)
args = parser.parse_args()
tracker.config(vars(args))
target = 0.35 + (args.lr - 0.1) * 2.5  # lr 0.1 ends near 0.36, lr 0.3 near 0.86, still falling slowly
for step in range(1, 101):
    steep = args.tail * (100 - step) / 100  # --tail 1: still falling by 0.01 a step at step 100
    tracker.log(step, **{'train/loss': float('nan') if step == args.nan_at else target + 1.2 / step + steep})
    if step % 10 == 0:
        tracker.log(step, **{'val/loss': target + 2.0 / step + steep + 0.0002 * math.sin(step * 7.3)})
    if step == args.crash_at:
        print('Traceback (most recent call last):')
        print('RuntimeError: boom at step', step)
        print('cleaning up')
        sys.exit(1)
"""


@pytest.fixture
def curve_lab(lab):
    """A lab with baseline `base` (lr 0.1) and a script whose val/loss falls as target + 1/step, target set by --lr."""
    (lab.repo / "train.py").write_text(CURVE)
    (lab.repo / "base.json").write_text('{"lr": 0.1, "crash_at": 0, "nan_at": 0, "tail": 0.0}')
    lab("baseline", "add", "base", "--config", "base.json")
    return lab


def launch(lab, run_id, *args):
    lab("launch", run_id, "--no-commit", "--", sys.executable, "train.py", *args, check=False)


def page(lab, *parts):
    return lab.repo.joinpath("logs", *parts).read_text()


def test_every_page_says_the_same_for_one_change_and_a_slow_trend_does_not_save_a_worse_run(curve_lab):
    lab = curve_lab
    lab("new-run", "x_001", "--hypothesis", "the baseline as it is", "--baseline", "base")
    launch(lab, "x_001", "--lr", "0.1")
    lab("new-run", "x_002", "--from", "x_001", "--hypothesis", "a higher lr learns faster")
    launch(lab, "x_002", "--lr", "0.3")
    lab("render")
    report = page(lab, "reports", "x_002.md")
    line = re.search(r"^\*\*Verdict\*\*: (.*)$", report, re.M).group(1)
    assert line == ("not supported: val/loss 0.8702 at step 100 vs 0.3702 for x_001:1, 135.1% higher (worse), still "
                    "improving, but at its last trend of -0.033 per 100 steps closing the 0.5 gap would take about "
                    "1,538 more steps, over the 100 steps compared; evaluation size not logged")
    daily = next(lab.repo.joinpath("logs", "daily").glob("*.md")).read_text()
    assert f"**Verdict:** {line}\n" in daily
    changelog = page(lab, "changelogs", "base.md")
    assert changelog.count(f"❌ {line}") == 2  # its component's section and its run's section
    fails = changelog.split("## What Doesn't Work")[1].split("---")[0]
    assert "- ❌ `lr`: 0.1 → 0.3 (Run #2, 0.3702 → 0.8702, 135% worse; evaluation size not logged)" in fails
    assert "| `lr` | 0.1 | 0.3 | ❌ worse (Run #2) |" not in changelog  # the current run is the best one, x_001
    assert "the current run uses the baseline unchanged" in changelog
    compare = Path(lab("compare", "x_001", "x_002").stdout.strip().splitlines()[-1]).read_text()
    assert ("| x_002:1 | 0.8702 | 100 | 0.8702 | 100 | 0.8702 | +0.5 ❌ (still improving, but at its last trend of "
            "-0.033 per 100 steps closing the 0.5 gap would take about 1,538 more steps, over the 100 steps compared) |"
            in compare)  # the verdict's own words, as on the report
    assert "**x_001:1** (the reference) stays best on val/loss" in compare
    rendered = {path: path.read_bytes() for path in lab.repo.joinpath("logs").rglob("*.md")}
    lab("render")
    assert {path: path.read_bytes() for path in lab.repo.joinpath("logs").rglob("*.md")} == rendered


def test_a_first_run_gets_no_filler_verdict_and_a_failed_one_only_why_it_stopped(curve_lab):
    lab = curve_lab
    lab("new-run", "x_001", "--hypothesis", "the baseline as it is", "--baseline", "base")
    launch(lab, "x_001")
    lab("new-run", "x_002", "--from", "x_001", "--hypothesis", "crashes")
    launch(lab, "x_002", "--lr", "0.2", "--crash-at", "35")
    lab("render")
    assert "Verdict" not in page(lab, "reports", "x_001.md").split("---")[0]
    daily = next(lab.repo.joinpath("logs", "daily").glob("*.md")).read_text()
    assert "**Verdict:**" not in daily
    why = "Test 1 failed at step 35 (exit 1): RuntimeError: boom at step 35"
    assert f"**Verdict**: {why}\n" in page(lab, "reports", "x_002.md")
    assert "stopped at step 35: RuntimeError: boom at step 35\n" in daily.split("### x_002")[1]
    assert f"\n**Result**: {why}\n" in page(lab, "changelogs", "base.md")


def test_an_ablation_names_its_reference_and_crowns_only_a_lead_outside_the_noise(curve_lab):
    lab = curve_lab
    lab("new-run", "x_001", "--hypothesis", "the baseline as it is", "--baseline", "base")
    launch(lab, "x_001", "--lr", "0.1")
    for run_id, lr in (("g_001", "0.1"), ("g_002", "0.0999"), ("g_003", "0.05")):
        lab("new-run", run_id, "--from", "x_001", "--group", "lrs", "--hypothesis", f"lr {lr}")
        launch(lab, run_id, "--lr", lr)
    printed = lab("compare", "--group", "lrs").stdout.splitlines()
    assert printed[0] == "reference: x_001, the run the group branched from (added to the group's runs)"
    group = Path(printed[-1]).read_text()
    assert "**Reference: x_001, the run the group branched from (added to the group's runs).**" in group
    assert "g_001:1 runs the same config as the reference x_001:1: it changes nothing against the reference." in group
    assert "g_002:1 runs the same config" not in group
    health = group.split("## Health")[1].split("## Verdict")[0]
    assert [line.split("**")[1] for line in health.splitlines() if line.startswith("**")] == \
        ["x_001:1", "g_001:1", "g_002:1", "g_003:1"]
    verdict = group.split("## Verdict")[1].split("##")[0].strip()
    assert verdict.startswith("**g_003:1** wins on val/loss: val/loss 0.2452 at step 100 vs 0.3702 for x_001:1, "
                              "33.8% lower (better); evaluation size not logged; and holds at the end of the run: ")
    close = Path(lab("compare", "x_001", "g_002").stdout.strip()).read_text()
    verdict = close.split("## Verdict")[1].split("##")[0].strip()
    assert verdict.startswith("No clear winner on val/loss: **g_002:1** reads val/loss 0.3699 at step 100 vs 0.3702 "
                              "for x_001:1, 0.068% lower, but the difference"), verdict
    assert "x the scatter of the last evaluations about their curve)" in verdict


def test_an_arms_findings_on_the_ablation_page_and_the_changelog_are_lab_doctors(curve_lab):
    lab = curve_lab
    lab.repo.joinpath("warm.json").write_text('{"lr": 0.1, "crash_at": 0, "nan_at": 0, "tail": 0.0, '
                                              '"optim": {"warmup_steps": 0}, "train": {"max_steps": 100}}')
    lab("baseline", "add", "warm", "--config", "warm.json")
    lab("new-run", "x_001", "--hypothesis", "the baseline as it is", "--baseline", "warm")
    launch(lab, "x_001")
    lab("new-run", "x_002", "--from", "x_001", "--hypothesis", "a lower lr", "--set", "optim.warmup_steps=500",
        "--set", "train.max_steps=100")  # a finding of the run's config, recorded at new-run
    launch(lab, "x_002", "--lr", "0.05", "--nan-at", "30")  # and one of its test, recorded at launch
    doctor = lab("doctor", "x_002", "--dry-run").stdout.splitlines()
    named = [line for line in doctor if line.startswith("[")]
    assert [line.split(":")[0] for line in named] == ["[warning] warmup_covers_run at step 0",
                                                      "[error] non_finite at step 30"], doctor
    group = Path(lab("compare", "x_001", "x_002").stdout.strip()).read_text()
    arm = group.split("## Health")[1].split("## Verdict")[0].split("**x_002:1**")[1]
    shown = [line for line in arm.splitlines() if line.startswith("- ")]
    assert [re.sub(r"^- (❌ error|⚠️ warning) `(\w+)` at step (\d+): ", r"[\1] \2 at step \3: ", line)
            .replace("❌ ", "").replace("⚠️ ", "") for line in shown] == named
    lab("changelog", "warm")
    issues = page(lab, "changelogs", "warm.md").split("## Current Issues")[1].split("## Recommendations")[0]
    assert "### Issue #1: `warmup_covers_run` (Run #2, x_002)\n- **Severity**: ⚠️ warning\n" in issues
    assert "### Issue #2: `non_finite` (Run #2, x_002)\n- **Severity**: ❌ error\n" in issues
    assert issues.count("### Issue #") == len(named)


@pytest.mark.light
def test_a_lead_at_the_best_step_that_is_lost_by_the_end_is_no_win(store):
    steady = [1.0, 0.8, 0.7, 0.65, 0.62, 0.60, 0.60, 0.60]
    spiky = [1.0, 0.7, 0.55, 0.7, 0.75, 0.78, 0.8, 0.82]  # best early, then degrading
    add_run(store, "s_001", [{"step": 10 * (i + 1), "val/loss": v, "val/loss_se": 0.005} for i, v in enumerate(steady)])
    add_run(store, "s_002", [{"step": 10 * (i + 1), "val/loss": v, "val/loss_se": 0.005} for i, v in enumerate(spiky)])
    page = comparisons.compare(store, ["s_001", "s_002"]).read_text()
    assert ("No clear winner on val/loss: **s_002:1** leads at its best step (val/loss 0.55 at step 30 vs 0.6 for "
            "s_001:1, 8.3% lower (better)) but not at the end of the run: val/loss 0.82 at step 80 vs 0.6 for s_001:1, "
            "36.7% higher (worse).") in page


def test_runs_made_before_a_baseline_can_be_attached_to_it(curve_lab):
    lab = curve_lab
    lab("new-run", "x_001", "--hypothesis", "made before the baseline was meant for it")
    launch(lab, "x_001", "--lr", "0.1")
    lab("new-run", "x_002", "--from", "x_001", "--hypothesis", "a lower lr")
    launch(lab, "x_002", "--lr", "0.05")
    empty = lab("changelog", "base", check=False)
    assert empty.returncode == 2 and empty.stderr.count("\n") == 1
    assert empty.stderr.startswith("lab: error: baseline base: no run uses it yet; attach runs with lab baseline "
                                   "attach base RUN...")
    assert not lab.repo.joinpath("logs", "changelogs", "base.md").exists()
    printed = lab("baseline", "attach", "base", "x_001", "x_002").stdout
    assert printed == "baseline base: x_001, x_002 now use it; lab changelog base renders their changes\n"
    lab("changelog", "base")
    changelog = page(lab, "changelogs", "base.md")
    assert "### Run #1: x_001" in changelog and "### Run #2: x_002" in changelog
    assert "- ✅ `lr`: 0.1 → 0.05 (Run #2, 0.3702 → 0.2452, 34% better; evaluation size not logged)" in changelog
    lab("baseline", "add", "other", "--config", "base.json")
    clash = lab("baseline", "attach", "other", "x_001", check=False)
    assert clash.returncode == 2 and "run x_001 uses baseline base" in clash.stderr
    missing = lab("baseline", "attach", "base", "x_099", check=False)
    assert missing.returncode == 2 and "x_099" in missing.stderr


def test_the_daily_page_tells_the_day_with_every_tests_result_and_what_changed(curve_lab):
    lab = curve_lab
    lab("new-run", "x_001", "--hypothesis", "the baseline", "--baseline", "base")
    launch(lab, "x_001")
    launch(lab, "x_001", "--lr", "0.05")
    lab("new-run", "x_002", "--from", "x_001", "--hypothesis", "higher lr")
    launch(lab, "x_002", "--lr", "0.3", "--crash-at", "45")
    launch(lab, "x_002", "--lr", "0.3")
    lab("log")
    daily = next(lab.repo.joinpath("logs", "daily").glob("*.md")).read_text()
    first, second = daily.split("### x_001")[1].split("### x_002")
    assert re.search(r"\*\*Test 1\*\* \(finished, exit 0, \d+s\): val/loss 0\.3702 at step 100 "
                     r"\(still improving\)\n", first)
    assert re.search(r"\*\*Test 2\*\* \(finished, exit 0, \d+s\): val/loss 0\.2452 at step 100 \(still improving\)\. "
                     r"From Test 1: Decreased lr to 0\.05\n", first)
    assert re.search(r"\*\*Test 1\*\* \(failed, exit 1, \d+s\): stopped at step 45: RuntimeError: boom at step 45\n",
                     second)
    assert "From Test 1: Decreased crash at to 0\n" in second
    assert "Details (every test's command, metric tables, curves): [x_001 report](../reports/x_001.md)" in first
    assert "```" not in daily and "| Metric |" not in daily  # commands and tables live on the reports
    assert len(daily.splitlines()) < 70
    lab("report", "x_001")
    report = page(lab, "reports", "x_001.md")
    assert re.search(r"^\| 2 \(this report\) \| finished \| - \| val/loss 0\.2452 at step 100 \(still improving\) "
                     r"\| \S+ \| `lab launch x_001 --no-commit -- \S+ train\.py --lr 0\.05` \|$", report, re.M)


def test_lab_diff_takes_attempts_and_prints_metric_deltas(curve_lab):
    lab = curve_lab
    lab("new-run", "x_001", "--hypothesis", "the baseline", "--baseline", "base")
    launch(lab, "x_001")
    launch(lab, "x_001", "--lr", "0.05")
    assert lab("diff", "x_001:1", "x_001:2").stdout.splitlines() == [
        "x_001:1 -> x_001:2", "[schedule]", "  lr: 0.1 -> 0.05", "[metrics at each one's kept step]",
        "  val/loss: 0.3702 -> 0.2452 (-0.125, 33.8% lower (better))"]
    bad = lab("diff", "x_001:7", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("lab: error:") and bad.stderr.count("\n") == 1
    bad = lab("diff", "x_001:one", check=False)
    assert bad.returncode == 2 and "write RUN or RUN:TEST, like nsd_004:2" in bad.stderr


def test_the_changelog_has_current_issues_recommendations_and_file_changes(curve_lab):
    lab = curve_lab
    lab("new-run", "x_001", "--hypothesis", "the baseline", "--baseline", "base")
    lab("launch", "x_001", "--", sys.executable, "train.py")
    lab("new-run", "x_002", "--from", "x_001", "--hypothesis", "a lower lr")
    with lab.repo.joinpath("train.py").open("a") as script:
        script.write("# a lower lr needs nothing else\n")
    lab("launch", "x_002", "--", sys.executable, "train.py", "--lr", "0.05", "--nan-at", "30")
    lab("note", "x_002", "--next", "run lr 0.05 again without the NaN", "--findings", "the NaN came from --nan-at")
    lab("new-run", "x_003", "--from", "x_002", "--hypothesis", "no NaN")
    launch(lab, "x_003", "--lr", "0.05", "--crash-at", "20")
    lab("changelog", "base")
    changelog = page(lab, "changelogs", "base.md")
    issues = changelog.split("## Current Issues")[1].split("## Recommendations")[0]
    first = issues.split("### Issue #1: `non_finite` (Run #2, x_002)\n")[1].split("###")[0]
    assert "- **Cause**: the NaN came from --nan-at\n" in first and "- **Fix**: " in first
    assert "- **Status**: **open**" in first  # the only later run has no result
    second = issues.split("### Issue #2: Test 1 of Run #3 (x_003) stopped\n")[1]
    assert "- **Symptom**: Test 1 failed at step 20 (exit 1): RuntimeError: boom at step 20\n" in second
    recommendations = changelog.split("## Recommendations for the Next Run")[1].split("---")[0]
    assert "1. run lr 0.05 again without the NaN (Run #2, x_002)" in recommendations
    files = changelog.split("## File Changes Summary")[1].split("\n---\n")[0]
    assert "| `base.json` | A | Run #1 |" in files and "| `train.py` | A, M | Run #1, Run #2 |" in files
    assert "logs/" not in files and "lab.json" not in files
    launch(lab, "x_003", "--lr", "0.05")
    lab("changelog", "base")
    issues = page(lab, "changelogs", "base.md").split("## Current Issues")[1].split("## Recommendations")[0]
    assert "- **Status**: not seen in Run #3 (x_003)" in issues and "- **Status**: Test 2 finished" in issues


def test_a_better_run_is_better_however_fast_its_reference_was_still_improving(curve_lab):
    lab = curve_lab
    lab.repo.joinpath("steep.json").write_text('{"lr": 0.1, "crash_at": 0, "nan_at": 0, "tail": 1.0}')
    lab("baseline", "add", "steep", "--config", "steep.json")
    lab("new-run", "x_001", "--hypothesis", "the baseline, still falling steeply at its end", "--baseline", "steep")
    launch(lab, "x_001", "--tail", "1")
    lab("new-run", "x_002", "--from", "x_001", "--hypothesis", "a lower lr")
    launch(lab, "x_002", "--tail", "1", "--lr", "0.05")
    lab("render")
    line = re.search(r"^\*\*Verdict\*\*: (.*)$", page(lab, "reports", "x_002.md"), re.M).group(1)
    assert line == ("supported: val/loss 0.2452 at step 100 vs 0.3702 for x_001:1, 33.8% lower (better); evaluation "
                    "size not logged")  # the reference falls 0.01 a step, but x_002 is the better run
    changelog = page(lab, "changelogs", "steep.md")
    works = changelog.split("## What Works")[1].split("## What Doesn't Work")[0]
    assert "- ✅ `lr`: 0.1 → 0.05 (Run #2, 0.3702 → 0.2452, 34% better; evaluation size not logged)" in works
    assert "Nothing has improved" not in changelog and "inconclusive" not in changelog
    assert "| `lr` | 0.1 | 0.05 | ✅ improved (Run #2) |" in changelog.split("## Baseline Comparison Table")[1]
    compare = Path(lab("compare", "x_001", "x_002").stdout.strip().splitlines()[-1]).read_text()
    verdict = compare.split("## Verdict")[1].split("##")[0].strip()
    assert verdict.startswith("**x_002:1** wins on val/loss: val/loss 0.2452 at step 100 vs 0.3702 for x_001:1, 33.8% "
                              "lower (better); evaluation size not logged; and holds at the end of the run")
    marks = re.findall(r"^\| x_002:1 \| .* \| -0\.125 (\S+) \|$", compare, re.M)
    assert marks == ["✅", "✅"], compare  # val/loss and train/loss agree
    assert "〰️" not in compare and "No clear winner" not in compare


@pytest.mark.light
def test_a_reference_of_zero_is_compared_on_the_difference(store):
    accuracy = {"train": {"best_metric": "val/accuracy", "best_mode": "max"}}
    add_run(store, "acc_001", [{"step": 10, "val/accuracy": 0.0}, {"step": 20, "val/accuracy": 0.0}], accuracy)
    add_run(store, "acc_002", [{"step": 10, "val/accuracy": 0.5}, {"step": 20, "val/accuracy": 1.0}], accuracy,
            parent="acc_001")
    assert verdict_line(store, "acc_002") == ("supported: val/accuracy 1 at step 20 vs 0 for acc_001:1, higher "
                                              "(better); evaluation size not logged")
    add_run(store, "acc_003", [{"step": 10, "val/accuracy": 0.0}, {"step": 20, "val/accuracy": 0.0}], accuracy)
    add_run(store, "acc_004", [{"step": 10, "val/accuracy": -0.5}, {"step": 20, "val/accuracy": -0.2}], accuracy,
            parent="acc_003")  # a lower score than a reference of 0 is worse, with no relative change to state
    assert verdict_line(store, "acc_004") == ("not supported: val/accuracy -0.2 at step 20 vs 0 for acc_003:1, lower "
                                              "(worse); evaluation size not logged")


def lr_config(lr):
    return {"train": {"best_metric": "val/loss", "best_mode": "min"}, "optim": {"lr": lr}}


@pytest.mark.light
def test_a_run_never_launched_is_no_reference_for_the_baseline(store):
    store.baselines.save("base", {"repository": "https://example.org/dia"}, lr_config(0.01))
    store.runs.create("z_001", hypothesis="never launched", baseline="base", config=lr_config(0.01))
    add_run(store, "z_002", [{"step": 10, "val/loss": 2.0}, {"step": 20, "val/loss": 1.9}], lr_config(0.02),
            baseline="base")  # no run reproduced the baseline: it has no result of its own
    page = changelogs.changelog(store, "base").read_text()
    assert "z_001 has no" not in page and "inconclusive" not in page
    run_2 = page.split("### Run #2: z_002")[1]
    assert "\n**Result**: val/loss 1.9 at step 20 (still improving) (final 1.9)\n" in run_2
    assert "\n**Result**: no result yet\n" in page.split("### Run #1: z_001")[1].split("### Run #2")[0]


@pytest.mark.light
def test_a_run_never_launched_gets_no_filler_verdict_on_the_changelog(store):
    store.baselines.save("base", {"repository": "https://example.org/dia"}, lr_config(0.01))
    add_run(store, "z_001", [{"step": 10, "val/loss": 2.0}, {"step": 20, "val/loss": 1.9}], lr_config(0.01),
            baseline="base")
    store.runs.create("z_002", hypothesis="not launched yet", parent="z_001", baseline="base",
                     config=lr_config(0.02))
    page = changelogs.changelog(store, "base").read_text()
    assert "\n**Result**: no result yet\n" in page.split("### Run #2: z_002")[1]
    assert "logged no value" not in page and "❔" not in page


def test_a_run_with_an_expectation_has_one_verdict_on_every_page(curve_lab):
    lab = curve_lab
    lab("new-run", "x_001", "--hypothesis", "the baseline as it is", "--baseline", "base")
    launch(lab, "x_001")
    lab("new-run", "x_002", "--from", "x_001", "--hypothesis", "a higher lr overshoots", "--expect",
        "val/loss > x_001")
    launch(lab, "x_002", "--lr", "0.3")
    lab("render")
    line = re.search(r"^\*\*Verdict\*\*: (.*)$", page(lab, "reports", "x_002.md"), re.M).group(1)
    assert line.startswith("supported: val/loss > x_001: 0.8702 > 0.3702"), line
    daily = next(lab.repo.joinpath("logs", "daily").glob("*.md")).read_text()
    assert f"**Verdict:** {line}\n" in daily
    changelog = page(lab, "changelogs", "base.md")
    assert f"\n**Result**: ✅ {line}" in changelog.split("### Run #2: x_002")[1]
    assert "not supported" not in changelog and "135.1% higher" not in changelog


def test_a_missed_expectation_that_improved_on_its_parent_is_no_change_that_does_not_work(curve_lab):
    lab = curve_lab
    lab("new-run", "x_001", "--hypothesis", "the baseline as it is", "--baseline", "base")
    launch(lab, "x_001")
    lab("new-run", "x_002", "--from", "x_001", "--hypothesis", "a lower lr reaches 0.2", "--expect", "val/loss < 0.2")
    launch(lab, "x_002", "--lr", "0.06")
    lab("render")
    line = re.search(r"^\*\*Verdict\*\*: (.*)$", page(lab, "reports", "x_002.md"), re.M).group(1)
    assert line.startswith("not supported: val/loss < 0.2: 0.2702 >= 0.2"), line  # what the figures show
    changelog = page(lab, "changelogs", "base.md")
    assert f"\n**Result**: ❌ {line}" in changelog.split("### Run #2: x_002")[1]  # the run's own verdict
    works = changelog.split("## What Works")[1].split("\n## ")[0]
    fails = changelog.split("## What Doesn't Work")[1].split("\n## ")[0]
    assert "`lr`: 0.1 → 0.06 (Run #2, 0.3702 → 0.2702, 27% better" in works, works
    assert "`lr`" not in fails, fails


@pytest.mark.light
def test_an_ablation_winner_must_lead_the_runner_up_outside_the_noise(store):
    def rows(floor):
        return [{"step": 10 * (i + 1), "val/loss": floor + extra, "val/loss_se": 0.01}
                for i, extra in enumerate([0.5, 0.2, 0.1, 0.0])]

    for run_id, floor in (("r_001", 0.35), ("h_001", 0.30), ("h_002", 0.2999), ("h_003", 0.2998)):
        add_run(store, run_id, rows(floor))
    page = comparisons.compare(store, ["r_001", "h_001", "h_002", "h_003"]).read_text()
    verdict = page.split("## Verdict")[1].split("##")[0].strip()
    assert verdict.startswith("No clear winner on val/loss: **h_003:1**, **h_002:1** and **h_001:1** are tied "
                              "(h_003:1 reads val/loss 0.2998 at step 40 vs 0.2999 for h_002:1, 0.033% lower, "
                              "the difference 0.0001 is within the noise"), verdict
    assert "all of them are better than the reference r_001:1 (0.35)" in verdict and "wins" not in verdict
    add_run(store, "h_004", rows(0.25))  # a lead over the runner-up outside the noise is a win
    page = comparisons.compare(store, ["r_001", "h_001", "h_004"]).read_text()
    assert page.split("## Verdict")[1].strip().startswith("**h_004:1** wins on val/loss: val/loss 0.25 at step 40")


def test_a_test_that_changed_its_config_and_its_command_says_both(curve_lab):
    lab = curve_lab
    lab("new-run", "x_001", "--hypothesis", "the baseline", "--baseline", "base")
    launch(lab, "x_001")
    lab("launch", "x_001", "--no-commit", "--", sys.executable, "-u", "train.py", "--lr", "0.05")
    lab("log")
    daily = next(lab.repo.joinpath("logs", "daily").glob("*.md")).read_text()
    assert re.search(r"\*\*Test 2\*\* .*\. From Test 1: Decreased lr to 0\.05; added `-u`\n", daily), daily


@pytest.mark.light
def test_seeded_arms_are_compared_at_the_end_on_their_seeds_mean(store):
    def seeded(seed):
        return {"train": {"best_metric": "val/loss", "best_mode": "min", "seed": seed}}

    for run_id, bests, finals in (("s_001", [1.50, 1.52, 1.48], [1.60, 1.60, 1.90]),  # the last seed ends badly
                                  ("s_002", [1.20, 1.22, 1.18], [1.25, 1.25, 1.25])):
        for seed, (best, final) in enumerate(zip(bests, finals)):
            add_run(store, run_id, [{"step": 10, "val/loss": best + 0.3}, {"step": 20, "val/loss": best},
                                    {"step": 30, "val/loss": final}], seeded(seed))
    page = comparisons.compare(store, ["s_001", "s_002"]).read_text()
    verdict = page.split("## Verdict")[1].split("##")[0].strip()
    assert verdict.startswith("**s_002:3** wins on val/loss: val/loss 1.2 (mean of 3 seeds, sd 0.02) vs 1.5 (mean of 3 "
                              "seeds, sd 0.02)"), verdict
    assert "at the end of the run: val/loss 1.25 at step 30 vs 1.7 for s_001:3, 26.5% lower (better)." in verdict


@pytest.mark.light
def test_why_a_run_stopped_names_its_error_not_a_metric_print(store):
    store.runs.create("e_001", hypothesis="h", config=lr_config(0.01))
    folder = store.attempts.begin("e_001", command=["python", "train.py"], pid=os.getpid())
    (folder / "stdout.log").write_text("RuntimeError: CUDA out of memory\nval_error 0.3\nstep 3 error_rate 0.2\n")
    store.attempts.end(folder, exit_code=1, status="failed")
    day = context.daily_log(store, context.active_days(store)[-1]).read_text()
    assert "**Test 1** (failed, exit 1, 0s): stopped: RuntimeError: CUDA out of memory\n" in day, day


@pytest.mark.light
def test_attaching_a_run_that_already_uses_the_baseline_says_so(lab):
    (lab.repo / "base.json").write_text('{"lr": 0.1}')
    lab("baseline", "add", "base", "--config", "base.json")
    lab("new-run", "x_001", "--hypothesis", "h")
    lab("new-run", "x_002", "--hypothesis", "h")
    assert lab("baseline", "attach", "base", "x_001").stdout == \
        "baseline base: x_001 now uses it; lab changelog base renders their changes\n"
    assert lab("baseline", "attach", "base", "x_001", "x_002").stdout == (
        "baseline base: x_002 now uses it; lab changelog base renders their changes\n"
        "baseline base: x_001 already uses it\n")
