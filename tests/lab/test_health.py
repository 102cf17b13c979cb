"""Health rules on synthetic metric streams: each known failure fires its rule, a healthy run fires nothing, and a
finding tells one story on every page."""

import json
import math
import random
import subprocess
import sys

import pytest

from lab.families import registry
from lab.health import rules as health
from lab.health.diagnosis import rules_for
from lab.health.rules import Finding, LiveMonitor, RULES, check, structural_findings
from lab.records.store import Store


CONFIG = {
    "optim": {"lr": 1e-3, "warmup_steps": 100, "schedule": "cosine"},
    "train": {"best_metric": "val/per", "best_mode": "min", "grad_clip": 1.0, "max_steps": 2000},
    "model": {"d_model": 256, "n_heads": 4, "head_dim": 64},
}


def decaying(step):
    return 0.5 + 4.0 * math.exp(-step / 300)


def make_rows(
    train=decaying,
    val=lambda step: decaying(step) + 0.1,
    per=lambda step: 0.2 + 0.7 * math.exp(-step / 400),
    blank=lambda step: min(1.0, 1.5 * math.exp(-step / 300)),
    grad=lambda step: 1.0,
    seed=0,
    steps=2000,
):
    """A metric stream: a train row every 10 steps (5% loss noise), an evaluation row every 100 (1% noise)."""
    rng = random.Random(seed)
    rows = []
    for step in range(10, steps + 1, 10):
        rows.append({
            "step": step, "time": 1000.0 + step / 10, "train/loss": train(step) * (1 + rng.gauss(0, 0.05)),
            "train/grad_norm": grad(step) * math.exp(rng.gauss(0, 0.3)), "train/lr": 1e-3, "train/skipped_steps": 0,
        })
        if step % 100 == 0:
            rows.append({
                "step": step, "time": 1000.5 + step / 10, "val/loss": val(step) * (1 + rng.gauss(0, 0.01)),
                "val/per": per(step) * (1 + rng.gauss(0, 0.01)), "val/blank_frac": blank(step),
            })
    return rows


@pytest.mark.parametrize("seed", range(10))
def test_healthy_run_triggers_nothing(seed):
    assert check(make_rows(seed=seed), CONFIG) == []


@pytest.mark.parametrize("seed", range(3))
def test_healthy_run_triggers_nothing_live(seed):
    monitor = LiveMonitor(CONFIG, stop_on=list(RULES), every=5)
    assert [finding for row in make_rows(seed=seed) for finding in monitor.observe(row)] == []
    assert not monitor.should_stop


def fired(findings):
    return {finding.rule: finding for finding in findings}


def with_nan_at(rows, bad_step):
    """Loss and grad norm non-finite (as JSON stores them) at `bad_step`, one update skipped from then on."""
    for row in rows:
        if "train/loss" in row and row["step"] >= bad_step:
            row["train/skipped_steps"] = 1
            if row["step"] == bad_step:
                row["train/loss"], row["train/grad_norm"] = "nan", "inf"
    return rows


def test_injected_nan():
    found = fired(check(with_nan_at(make_rows(), 700), CONFIG))
    assert set(found) == {"non_finite"}
    finding = found["non_finite"]
    assert finding.severity == "error" and finding.step == 700
    assert finding.evidence == {"first_step": 700, "count": 1, "skipped_steps": 1}


def test_skipped_steps_alone_count_as_non_finite():
    rows = make_rows()
    for row in rows:
        if "train/loss" in row:
            row["train/skipped_steps"] = 3 if row["step"] >= 1500 else 0
    assert fired(check(rows, CONFIG))["non_finite"].evidence == {"first_step": 1500, "count": 1, "skipped_steps": 3}


def test_exploding_grad_norm():
    found = fired(check(make_rows(grad=lambda step: 80.0 if step == 1200 else 1.0), CONFIG))
    assert set(found) == {"grad_explosion"}
    evidence = found["grad_explosion"].evidence
    assert found["grad_explosion"].step == 1200 == evidence["step"]
    assert evidence["value"] > 10 * evidence["median"] and evidence["max"] == evidence["value"]


def test_grad_explosion_needs_history():
    assert check(make_rows(grad=lambda step: 80.0 if step == 100 else 1.0), CONFIG) == []


def overfitting_rows(seed=0):
    """Train loss keeps falling; val loss bottoms out near step 1000 and climbs."""
    return make_rows(
        train=lambda step: 0.1 + 4.0 * math.exp(-step / 300),
        val=lambda step: 1.0 + 3.5 * math.exp(-step / 300) + 0.0004 * max(0, step - 800),
        seed=seed,
    )


def test_widening_gap():
    config = {**CONFIG, "train": {**CONFIG["train"], "best_metric": "val/loss"}}
    found = fired(check(overfitting_rows(), config))
    assert set(found) == {"gap_widening", "metric_degrading"}
    gap = found["gap_widening"]
    assert 900 <= gap.evidence["best_step"] <= 1200 and gap.step > gap.evidence["best_step"]
    assert gap.evidence["last_gap"] > gap.evidence["best_gap"] and gap.evidence["last_step"] == 2000


def test_gap_compares_val_loss_with_the_train_losses_since_the_previous_evaluation():
    rows = [{"step": step, "train/loss": 1.0 - step / 1000} for step in range(10, 1001, 10)]
    rows += [{"step": step, "val/loss": 1.0 + step / 2000} for step in (200, 400, 600, 800, 1000)]
    rows.sort(key=lambda row: (row["step"], "val/loss" in row))
    gap = fired(check(rows))["gap_widening"]
    assert gap.evidence["best_gap"] == pytest.approx(1.1 - (1.0 - 0.105))
    assert gap.evidence["last_gap"] == pytest.approx(1.5 - (1.0 - 0.905))


def test_flat_loss():
    found = fired(check(make_rows(train=lambda step: 2.3, val=lambda step: 2.4), CONFIG))
    assert set(found) == {"loss_not_decreasing"}
    evidence = found["loss_not_decreasing"].evidence
    assert evidence["first_mean"] == pytest.approx(2.3, rel=0.03)
    assert evidence["last_mean"] == pytest.approx(2.3, rel=0.03)
    assert found["loss_not_decreasing"].step == 2000


def test_flat_loss_is_not_judged_during_warmup():
    config = {**CONFIG, "optim": {"warmup_steps": 5000}}
    assert check(make_rows(train=lambda step: 2.3, val=lambda step: 2.4), config) == []


def diverging_loss(step):
    """Falls from 5 to 2 by step 300 (warmup ends at 200), climbs to 6 by step 400 and stays there."""
    if step <= 300:
        return 5.0 - 3.0 * step / 300
    return min(6.0, 2.0 + 4.0 * (step - 300) / 100)


def test_divergence_after_warmup():
    config = {**CONFIG, "optim": {"lr": 3e-3, "warmup_steps": 200}}
    found = fired(check(make_rows(train=diverging_loss, val=diverging_loss), config))
    assert "divergence_after_warmup" in found
    finding = found["divergence_after_warmup"]
    assert finding.severity == "error" and 300 < finding.step <= 450
    assert finding.evidence["min"] == pytest.approx(2.0, rel=0.1) and finding.evidence["final"] > 5.5


def test_divergence_without_warmup_setting_uses_the_first_rows():
    found = fired(check(make_rows(train=diverging_loss, val=diverging_loss), {}))
    assert 300 < found["divergence_after_warmup"].step <= 450


def test_a_run_from_trained_weights_is_judged_against_its_first_losses_mean():
    """An init_from run restarts its LR warmup on weights that already fit: its batch losses scatter around a
    low mean, and one lucky first batch is no untrained model's loss to measure a blow-up against."""
    def fine_tuning(step):
        return 0.02 if step == 10 else 0.3  # the first batch fits almost perfectly, the rest as usual

    config = {**CONFIG, "optim": {"lr": 1e-3, "warmup_steps": 0}}
    rows = make_rows(train=fine_tuning, val=fine_tuning, steps=400)
    assert "divergence_after_warmup" in fired(check(rows, config))  # measured from that one batch: "blew up"
    started = {**config, "train": {**config["train"], "init_from": "runs/nsd_001/best.pt"}}
    assert "divergence_after_warmup" not in fired(check(rows, started))
    blowing_up = make_rows(train=lambda step: 0.3 if step <= 200 else 2.0, val=fine_tuning, steps=400)
    finding = fired(check(blowing_up, started))["divergence_after_warmup"]
    assert finding.step == 210 and finding.evidence["start"] == pytest.approx(0.3, rel=0.05)
    assert "(mean of steps 10-50)" in finding.message


def test_recovered_spike_is_not_divergence():
    rows = make_rows(train=lambda step: 6.0 if 800 <= step < 900 else decaying(step))
    assert "divergence_after_warmup" not in fired(check(rows, CONFIG))


def test_degrading_best_metric():
    found = fired(check(make_rows(per=lambda step: 0.2 + 0.7 * math.exp(-step / 400) + 1e-4 * max(0, step - 1200)),
                        CONFIG))
    assert set(found) == {"metric_degrading"}
    finding = found["metric_degrading"]
    assert 1200 < finding.step <= 1700
    assert 1000 <= finding.evidence["best_step"] <= 1400 and finding.evidence["final_step"] == 2000
    assert finding.evidence["final"] > finding.evidence["best"] * 1.05 and finding.evidence["metric"] == "val/per"


def test_degrading_metric_respects_max_mode():
    rows = make_rows(per=lambda step: 0.9 - 0.7 * math.exp(-step / 300))  # rising, like an accuracy
    config = {"train": {"best_metric": "val/per", "best_mode": "max"}}
    assert check(rows, config) == []
    assert check(rows, {"train": {"best_metric": "val/per", "best_mode": "min"}})[0].rule == "metric_degrading"


DECODER_RULES = rules_for(registry.get("neural_decoder"))  # the global rules and ctc_blank_collapse


def test_blank_collapse_after_learning():
    rows = make_rows(blank=lambda step: 0.98 if step > 1500 else min(1.0, 1.5 * math.exp(-step / 300)))
    assert "ctc_blank_collapse" not in fired(check(rows, CONFIG))  # a family rule, not a global one
    found = fired(check(rows, CONFIG, DECODER_RULES))
    assert set(found) == {"ctc_blank_collapse"}
    assert found["ctc_blank_collapse"].step == 1600 and found["ctc_blank_collapse"].evidence["after_learning"]


def test_blank_phase_at_start_needs_several_evaluations():
    all_blank = make_rows(blank=lambda step: 1.0)
    assert fired(check(all_blank, CONFIG, DECODER_RULES))["ctc_blank_collapse"].evidence["evaluations"] == 20
    early = [row for row in all_blank if row["step"] <= 400]
    assert "ctc_blank_collapse" not in fired(check(early, CONFIG, DECODER_RULES))


def test_check_is_sorted_and_deterministic():
    rows = with_nan_at(overfitting_rows(), 1500)
    findings = check(rows, {})
    assert findings == check(rows, {})
    assert findings == sorted(findings, key=lambda finding: (finding.step, finding.rule))
    assert {"non_finite", "gap_widening", "metric_degrading"} <= set(fired(findings))


@pytest.mark.parametrize("config", [{}, None, {"optim": None, "train": "x"}, {"train": {"best_metric": 3}}])
def test_missing_or_odd_config_keys_do_not_crash(config):
    check(make_rows(), config)


def test_rules_ignore_rows_without_their_keys():
    assert check([{"step": 1, "time": 0.0}, {"step": 2, "other": "text"}], {}) == []
    assert check([], {}) == []


def test_live_monitor_stops_at_the_nan_and_reports_once():
    monitor = LiveMonitor(CONFIG, stop_on=["non_finite"])
    stopped_at, reported = None, []
    for row in with_nan_at(make_rows(), 700):
        reported += monitor.observe(row)
        if monitor.should_stop and stopped_at is None:
            stopped_at = row["step"]
    assert stopped_at == 700
    assert [finding.rule for finding in reported] == ["non_finite"] and monitor.findings == reported


def test_live_monitor_reports_each_rule_once_and_stops_only_on_stop_on():
    monitor = LiveMonitor({}, stop_on=["non_finite"], every=10)
    reported = [finding for row in overfitting_rows() for finding in monitor.observe(row)]
    rules = [finding.rule for finding in reported]
    assert sorted(rules) == ["gap_widening", "metric_degrading"]
    assert not monitor.should_stop


def test_live_monitor_catches_explosion_within_its_interval():
    monitor = LiveMonitor(CONFIG, stop_on=["grad_explosion"], every=20)
    rows = make_rows(grad=lambda step: 80.0 if step == 1200 else 1.0)
    stopped_at = next(row["step"] for row in rows if monitor.observe(row) and monitor.should_stop)
    assert 1200 <= stopped_at <= 1200 + 20 * 10
    assert monitor.findings[0].step == 1200


def test_live_monitor_rejects_unknown_rules():
    with pytest.raises(ValueError, match="known rules"):
        LiveMonitor({}, stop_on=["nan_loss"])


def test_finding_round_trips_through_json():
    finding = check(with_nan_at(make_rows(), 700), CONFIG)[0]
    assert Finding.from_dict(json.loads(json.dumps(finding.to_dict()))) == finding


def test_attention_narrower_than_model():
    found = fired(structural_findings({"model": {"d_model": 512, "n_heads": 4, "head_dim": 64}}))
    assert found["attention_width"].evidence["attention_width"] == 256
    assert found["attention_width"].evidence["model_width"] == 512 and found["attention_width"].step == 0
    assert structural_findings({"model": {"d_model": 512, "n_heads": 4, "head_dim": 128}}) == []


def test_attention_pairs_heads_and_head_dims_by_prefix_in_nested_sections():
    decoder = {"n_embd": 1024, "gqa_query_heads": 8, "kv_heads": 4, "gqa_head_dim": 64,
               "cross_query_heads": 16, "cross_head_dim": 64}
    findings = structural_findings({"model": {"encoder": {"n_embd": 512, "n_head": 8, "head_dim": 64},
                                              "decoder": decoder}})
    assert [(f.rule, f.evidence["section"], f.evidence["attention_width"]) for f in findings] == [
        ("attention_width", "model.decoder", 512)
    ]


def test_model_far_smaller_than_baseline():
    assert fired(structural_findings({}, param_count=1_000_000, baseline_param_count=5_000_000))["model_too_small"]
    assert structural_findings({}, param_count=2_000_000, baseline_param_count=5_000_000) == []
    assert structural_findings({}, param_count=1_000_000) == []


def test_no_clipping_at_high_lr():
    config = {"optim": {"lr": 0.02}, "train": {"grad_clip": 0.0}}
    assert fired(structural_findings(config))["no_clipping_high_lr"].evidence == {"lr": 0.02, "grad_clip": 0.0}
    assert structural_findings({"optim": {"lr": 0.02}, "train": {"grad_clip": 1.0}}) == []
    assert structural_findings({"optim": {"lr": 1e-3}, "train": {"grad_clip": 0.0}}) == []
    assert structural_findings({"optim": {"lr": 0.02}}) == []


def test_warmup_covering_the_run_and_best_mode_mismatch():
    config = {"optim": {"warmup_steps": 500}, "train": {"max_steps": 300, "best_metric": "val/per", "best_mode": "max"}}
    assert set(fired(structural_findings(config))) == {"warmup_covers_run", "best_mode_mismatch"}
    assert fired(structural_findings({"train": {"best_metric": "val/accuracy", "best_mode": "min"}}))
    assert structural_findings({"train": {"best_metric": "val/accuracy", "best_mode": "max"}}) == []


@pytest.mark.parametrize("config", [CONFIG, {}, {"model": None}, {"model": {"d_model": "wide", "n_heads": 0}}])
def test_sane_or_odd_configs_have_no_structural_findings(config):
    assert structural_findings(config) == []


def test_imports_no_heavy_libraries():
    code = "import sys, lab.health.rules; print(sorted({'torch', 'numpy', 'pandas'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.light
def test_a_tiny_healthy_gradient_is_no_explosion():
    rows = [{"step": step, "train/grad_norm": 0.0004} for step in range(40)]
    rows.append({"step": 40, "train/grad_norm": 0.05})
    assert health.grad_explosion(rows, {}) == []
    rows.append({"step": 41, "train/grad_norm": 5.0})
    assert [finding.step for finding in health.grad_explosion(rows, {})] == [41]


@pytest.mark.light
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


def stream(train, val, *, steps=2000, every=100, train_noise=0.05, val_noise=0.01, se=False, grad=lambda s: 1.0,
           per=None, seed=0):
    """A metric stream with chosen curves and noise: a train row every 10 steps, an evaluation every `every` steps
    (val/loss, val/per when `per` is given, and their `_se` when `se`: the noise's own standard deviation)."""
    rng = random.Random(seed)
    rows = []
    for step in range(10, steps + 1, 10):
        rows.append({"step": step, "train/loss": train(step) * (1 + rng.gauss(0, train_noise)),
                     "train/grad_norm": grad(step) * math.exp(rng.gauss(0, 0.2))})
        if step % every == 0:
            row = {"step": step, "val/loss": val(step) * (1 + rng.gauss(0, val_noise))}
            if per is not None:
                row["val/per"] = per(step) * (1 + rng.gauss(0, val_noise))
            if se:
                row.update({"val/loss_se": val(step) * val_noise, "val/per_se": (per or val)(step) * val_noise})
            rows.append(row)
    return rows


PLATEAU = {"train": {"best_metric": "val/per", "best_mode": "min"}}
DROPOUT = {"model": {"dropout": 0.3}, "train": {"best_metric": "val/loss"}}
HEALTHY = {  # name: (rows, config)
    "noisy evaluations, se logged": (stream(decaying, lambda s: decaying(s) + 0.1, val_noise=0.04, se=True,
                                            per=lambda s: 0.2 + 0.7 * math.exp(-s / 400)), PLATEAU),
    "noisy evaluations, no se": (stream(decaying, lambda s: decaying(s) + 0.1, val_noise=0.04,
                                        per=lambda s: 0.2 + 0.7 * math.exp(-s / 400)), PLATEAU),
    "long noisy plateau": (stream(lambda s: 0.5 + 4.0 * math.exp(-s / 50), lambda s: 0.6 + 4.0 * math.exp(-s / 50),
                                  steps=4000, val_noise=0.03, per=lambda s: 0.3 + 0.6 * math.exp(-s / 50)), PLATEAU),
    "dropout, val below train": (stream(lambda s: 1.2 + 3 * math.exp(-s / 300), lambda s: 1.19 + 3 * math.exp(-s / 300),
                                        val_noise=0.01), DROPOUT),
    "val equal to train at a plateau": (stream(lambda s: 1.38 + 2 * math.exp(-s / 200),
                                               lambda s: 1.38 + 2 * math.exp(-s / 200), val_noise=0.01), DROPOUT),
    "3 evaluations": (stream(decaying, lambda s: decaying(s) + 0.1, steps=300, val_noise=0.03), {}),
    "5 evaluations ending on a noisy one": (stream(lambda s: 1.38 + 2 * math.exp(-s / 60),
                                                   lambda s: 1.38 + 2 * math.exp(-s / 60), steps=500,
                                                   val_noise=0.01, seed=3), {}),
    "warmup bump": (stream(lambda s: decaying(s) * (1 + 0.4 * math.sin(math.pi * s / 200) * (s < 200)),
                           lambda s: decaying(s) + 0.1, grad=lambda s: 3.0 if s < 200 else 1.0),
                    {"optim": {"warmup_steps": 200}}),
    "cosine schedule's end": (stream(lambda s: 0.3 + 3 * math.exp(-s / 400) - 0.05 * (s / 2000) ** 4,
                                     lambda s: 0.4 + 3 * math.exp(-s / 400), grad=lambda s: 1 + 2 * s / 2000),
                              {"optim": {"schedule": "cosine", "warmup_steps": 50}}),
}


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_no_rule_fires_on_a_healthy_stream(name):
    rows, config = HEALTHY[name]
    for family in (None, "neural_decoder", "redimnet", "sashimi", "dia"):
        assert check(rows, config, rules_for(family)) == [], (name, family)
        monitor = LiveMonitor(config, every=5, rules=rules_for(family))
        assert [finding for row in rows for finding in monitor.observe(row)] == [], (name, family)


def overfitting(val_noise=0.03, se=True, config=DROPOUT):
    """Train loss keeps falling; val loss bottoms out near step 900 and climbs well past its noise."""
    rows = stream(lambda s: 0.1 + 4.0 * math.exp(-s / 300),
                  lambda s: 1.0 + 3.5 * math.exp(-s / 300) + 0.0008 * max(0, s - 800), val_noise=val_noise, se=se)
    return check(rows, config)


FAILING = {  # rule: the findings of a stream that has that failure under realistic noise
    "non_finite": lambda: check(with_nan_at(stream(decaying, decaying, val_noise=0.03), 700), {}),
    "grad_explosion": lambda: check(stream(decaying, decaying, grad=lambda s: 60.0 if s == 900 else 1.0), {}),
    "loss_not_decreasing": lambda: check(stream(lambda s: 2.3, lambda s: 2.4, val_noise=0.03), {}),
    "divergence_after_warmup": lambda: check(stream(diverging_loss, lambda s: 2.0, val_noise=0.03), {}),
    "gap_widening": overfitting,
    "metric_degrading": lambda: check(stream(decaying, decaying, val_noise=0.03, se=True,
                                             per=lambda s: 0.2 + 0.7 * math.exp(-s / 400) + 2e-4 * max(0, s - 1000)),
                                      PLATEAU),
}


@pytest.mark.parametrize("rule", sorted(FAILING))
def test_each_rule_fires_on_its_failure_despite_noise(rule):
    assert rule in fired(FAILING[rule]())
    assert set(FAILING) == set(RULES)


@pytest.mark.parametrize("se", [True, False])
def test_overfitting_is_found_from_the_logged_se_or_the_streams_own_scatter(se):
    gap = fired(overfitting(se=se))["gap_widening"]
    assert 800 <= gap.evidence["best_step"] <= 1200 and gap.evidence["last_gap"] > gap.evidence["best_gap"] > -1
    assert 0.005 < gap.evidence["noise"] < 0.1  # about 3% of a val loss near 1.5


def test_overfitting_suggestion_fits_the_config():
    with_dropout = fired(overfitting(config=DROPOUT))["gap_widening"].suggestion
    assert "add dropout" not in with_dropout and "model.dropout=0.3" in with_dropout
    assert "add weight decay" in with_dropout and "early_stop_patience" in with_dropout
    plain = fired(overfitting(config={"optim": {"weight_decay": 0.01}}))["gap_widening"].suggestion
    assert "add dropout" in plain and "raise weight decay (optim.weight_decay=0.01)" in plain


def test_a_change_within_the_logged_noise_is_no_degradation():
    per = [0.30, 0.25, 0.22, 0.21, 0.205, 0.2, 0.2, 0.21, 0.22]  # the last two 5-10% above the best ...
    rows = [{"step": 100 * (i + 1), "val/per": value, "val/per_se": 0.01} for i, value in enumerate(per)]
    assert check(rows, PLATEAU) == []  # ... within 3 x sqrt(2) x 0.01 of it
    rows += [{"step": 1000, "val/per": 0.3, "val/per_se": 0.01}, {"step": 1100, "val/per": 0.31, "val/per_se": 0.01}]
    assert fired(check(rows, PLATEAU))["metric_degrading"].evidence["noise"] == 0.01


def test_doctor_report_and_daily_page_show_one_set_of_findings(lab, repo):
    lab("new-run", "nsd_001", "--preset", "tiny", "--set", "optim.lr=0.5", "--set", "train.grad_clip=0",
        "--hypothesis", "a far too high LR")
    code = ("from lab import tracker\nfor step in range(80):\n"
            "    tracker.log(step, **{'train/loss': 1.0 if step < 20 else 5.0, 'train/grad_norm': 1.0})\n")
    lab("launch", "nsd_001", "--no-commit", "--", sys.executable, "-c", code)
    doctor = lab("doctor", "nsd_001").stdout.splitlines()
    shown = sorted(line.split(" at step")[0].replace("[", "").replace("]", "") for line in doctor
                   if line.startswith("["))
    assert "error divergence_after_warmup" in shown and "warning no_clipping_high_lr" in shown
    assert all(line.startswith("    suggestion: ") for line in doctor[1::2])
    lab("report", "nsd_001")
    lab("log", "--all")
    report = (repo / "logs/reports/nsd_001.md").read_text()
    daily = next((repo / "logs/daily").glob("*.md")).read_text()
    assert daily.count("**Health") == 1 and f"- Health findings: {len(shown)}" in report
    for page in (report, daily):
        lines = [line for line in page.splitlines() if line.startswith(("- ❌ error `", "- ⚠️ warning `"))]
        on_page = sorted(line[2:].split(" at step")[0].split(" ", 1)[1].replace("`", "") for line in lines)
        assert on_page == shown
        assert page.count("  - Suggestion: ") == len(shown)
