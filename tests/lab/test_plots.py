"""The SVG plots of the pages: round ticks, log axes for losses and gradient norms, stage boundaries."""


import pytest

from lab.pages import plots

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test


def test_losses_and_gradient_norms_are_plotted_on_a_log_axis():
    assert plots.log_scale("loss", {"train/loss": ([1, 2], [2.0, 0.1])})
    assert plots.log_scale("grad norm (pre-clip)", {"train/grad_norm": ([1], [0.3])})
    assert not plots.log_scale("loss", {"train/loss": ([1, 2], [0.5, -0.1])})
    assert not plots.log_scale("val/acc", {"val/acc": ([1], [0.5])})


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
