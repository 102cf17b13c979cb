"""The HTML site (`lab site`), opened from `file://` in headless Chromium as a reader would: charts draw, a run
toggles, a table sorts, nothing is asked of another host, and no text a user typed runs as script."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lab_testing import git
from site_browser import open_page, pixels

HOSTILE = '<script>alert(1)</script>"; alert(1); "'
SCRIPT = ("from lab import tracker\n"
          "for step in range(1, 21):\n"
          "    tracker.log(step, **{'train/loss': SCALE / step, NAME: step / 20 / SCALE})\n")


def launch(lab, run_id: str, metric: str = "val/acc", *args: str) -> None:
    code = SCRIPT.replace("NAME", repr(metric)).replace("SCALE", str(int(run_id[-1]) + 1))  # each run its curves
    lab("launch", run_id, *args, "--", sys.executable, "-c", code)


def site_pages(lab) -> dict[str, Path]:
    lab("site")
    folder = lab.repo / "logs" / "site"
    return {path.relative_to(folder).as_posix(): path for path in sorted(folder.rglob("*.html"))}


@pytest.mark.light
def test_site_lists_every_kind_of_page_and_links_them(lab):
    for run_id in ("x_001", "x_002"):
        lab("new-run", run_id, "--hypothesis", f"h {run_id}", "--group", "lr")
        launch(lab, run_id, "val/acc", "--no-commit")
    lab("compare", "x_001", "x_002", "--name", "pair")
    pages = site_pages(lab)
    today = json.loads(lab("runs", "--format", "jsonl").stdout.splitlines()[0])["created"][:10]
    assert sorted(pages) == ["ablations/pair.html", f"days/{today}.html", "groups/lr.html", "index.html",
                             "runs/x_001.html", "runs/x_002.html"]
    index = pages["index.html"].read_text()
    for target in ("runs/x_001.html", "groups/lr.html", "ablations/pair.html"):
        assert f'href="{target}"' in index
    run_page = pages["runs/x_001.html"].read_text()
    assert 'href="../groups/lr.html"' in run_page and 'href="../ablations/pair.html"' in run_page
    assert "http://" not in run_page and "https://" not in run_page
    assert "logs/site/" in (lab.repo / ".gitignore").read_text().splitlines()


@pytest.mark.light
def test_same_records_give_the_same_bytes_and_a_removed_run_loses_its_page(lab):
    lab("new-run", "x_001", "--hypothesis", "h")
    launch(lab, "x_001", "val/acc", "--no-commit")
    lab("new-run", "x_002", "--hypothesis", "h2")
    first = {name: path.read_bytes() for name, path in site_pages(lab).items()}
    out = lab.repo.parent / "elsewhere"
    lab("site", "--out", str(out))
    assert {path.relative_to(out).as_posix(): path.read_bytes() for path in out.rglob("*.html")} == first
    lab("rm", "x_002", "--yes")
    assert "runs/x_002.html" not in site_pages(lab) and "runs/x_002.html" in first


def test_charts_draw_toggle_a_run_and_tables_sort_from_file_with_no_request_elsewhere(lab, browser):
    for run_id in ("x_001", "x_002"):
        lab("new-run", run_id, "--hypothesis", f"h {run_id}", "--group", "lr")
        launch(lab, run_id, "val/acc", "--no-commit")
    pages = site_pages(lab)
    with open_page(browser, pages["groups/lr.html"]) as view:
        panels = view.page.evaluate("labCharts.map(u => [u.labPanel, u.series.slice(1).map(s => s.label)])")
        assert panels == [["loss", ["x_001 train/loss", "x_002 train/loss"]],
                          ["val/acc", ["x_001 val/acc", "x_002 val/acc"]]]
        drawn = pixels(view.page, 0)
        assert drawn > 200  # the two curves and the axes are on the canvas
        view.page.locator(".panel").first.locator(".u-legend .u-series").nth(2).click()  # x_002's entry
        assert view.page.evaluate("labCharts[0].series[2].show") is False
        assert pixels(view.page, 0) < drawn
        assert view.page.evaluate("labCharts[1].series[2].show") is False  # x_002 hidden in every panel
        view.page.select_option(".x-axis", "time")
        assert view.page.evaluate("labCharts[0].series[2].show") is False  # hidden stays hidden on redraw
        assert view.page.evaluate("labCharts[0].scales.x.time") is True
        view.page.check(".log-y")
        assert view.page.evaluate("labCharts[0].scales.y.distr") == 3
        view.page.select_option(".x-axis", "step")
        view.page.check(".log-x")
        assert view.page.evaluate("labCharts[0].scales.x.distr") == 3
        raw = view.page.evaluate("labCharts[0].data[1].slice(0, 3)")
        view.page.fill(".smoothing", "0.9")
        smoothed = view.page.evaluate("labCharts[0].data[1].slice(0, 3)")
        assert smoothed[0] == pytest.approx(raw[0]) and smoothed[2] > raw[2]  # a falling loss: the mean lags
    with open_page(browser, pages["index.html"]) as view:
        ids = "Array.from(document.querySelectorAll('table.runs tbody tr td:first-child')).map(c => c.textContent)"
        assert view.page.evaluate(ids) == ["x_001", "x_002"]
        view.page.click("table.runs th:text-is('id')")
        view.page.click("table.runs th:text-is('id')")
        assert view.page.evaluate(ids) == ["x_002", "x_001"]
        with view.page.expect_navigation():
            view.page.click("a[href='runs/x_002.html']")
        view.page.wait_for_function("window.labChartsDrawn !== undefined")
        assert view.page.evaluate("labCharts.length") == 2 and pixels(view.page, 1) > 200
    assert view.requests and all(url.startswith("file://") for url in view.requests)


def test_every_text_a_user_typed_is_text_in_the_browser(lab, browser, repo):
    (repo / "train.py").write_text("print('x')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", HOSTILE)
    lab("new-run", "x_001", "--hypothesis", HOSTILE, "--title", HOSTILE, "--group", HOSTILE)
    lab("new-run", "x_002", "--hypothesis", "h", "--group", HOSTILE, "--from", "x_001")
    launch(lab, "x_001", HOSTILE, "--note", HOSTILE)
    launch(lab, "x_002", HOSTILE, "--no-commit")
    for field in ("--findings", "--observations", "--conclusion", "--next"):
        lab("note", "x_001", field, HOSTILE)
    lab("note", "x_001", "--attempt", "1", "--result", HOSTILE)
    lab("note", "--insight", HOSTILE)
    lab("note", "--overview", HOSTILE)
    lab("compare", "x_001", "x_002", "--name", "pair")
    pages = site_pages(lab)
    for name, path in pages.items():
        with open_page(browser, path) as view:
            text = view.page.inner_text("main")
            assert view.page.evaluate("document.scripts.length") == 3 + view.page.evaluate(
                "document.querySelectorAll('script.chart-data').length"), name
        assert not view.dialogs and not view.errors, name
        assert HOSTILE.replace('"', "") in text.replace('"', "") or name == "index.html", name
    run_page = pages["runs/x_001.html"].read_text()
    assert "<script>alert" not in run_page and "</script>\"" not in run_page
    legends = "labCharts.flatMap(u => u.series.slice(1).map(s => s.label))"
    with open_page(browser, pages["runs/x_001.html"]) as view:
        assert f"Test 1 {HOSTILE}" in view.page.evaluate(legends)
    assert not view.dialogs


def test_a_commit_message_and_config_value_are_text_on_the_day_and_run_pages(lab, browser, repo):
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", HOSTILE], cwd=repo, check=True)
    lab("new-run", "x_001", "--hypothesis", "h")
    launch(lab, "x_001", "val/acc", "--no-commit", "--set", f"lr={HOSTILE}")
    pages = site_pages(lab)
    day = next(path for name, path in pages.items() if name.startswith("days/"))
    with open_page(browser, day) as view:
        assert HOSTILE in view.page.inner_text("main")
    assert not view.dialogs and not view.errors
    with open_page(browser, pages["runs/x_001.html"]) as view:
        assert f"lr\t{HOSTILE}" in view.page.inner_text("main")
    assert not view.dialogs and not view.errors


@pytest.mark.light
def test_site_branch_commits_the_pages_without_touching_the_work_tree_and_git_push_carries_it(lab, repo):
    remote = repo.parent / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "commit", "-q", "--allow-empty", "-m", "start")
    lab("init")  # sets this clone's push refspecs, lab-pages among them
    lab("new-run", "x_001", "--hypothesis", "h")
    launch(lab, "x_001", "val/acc", "--no-commit")
    status = git(repo, "status", "--porcelain")
    lab("site", "--branch")
    assert git(repo, "status", "--porcelain") == status and git(repo, "branch", "--show-current").strip() == "main"
    files = git(repo, "ls-tree", "-r", "--name-only", "lab-pages").split()
    assert {"index.html", "runs/x_001.html", "static/uPlot.iife.min.js", "static/LICENSE.uPlot"} <= set(files)
    first = git(repo, "rev-parse", "lab-pages")
    lab("site", "--branch")
    assert git(repo, "rev-parse", "lab-pages") == first  # the same records: the same tree, no new commit
    git(repo, "push", "-q")
    clone = repo.parent / "colleague"
    subprocess.run(["git", "clone", "-q", "--branch", "lab-pages", str(remote), str(clone)], check=True)
    page = (clone / "runs" / "x_001.html").read_text()
    assert page == (repo / "logs" / "site" / "runs" / "x_001.html").read_text() and "<h1>x_001: h</h1>" in page


@pytest.mark.light
def test_site_out_into_a_folder_of_other_files_removes_only_pages_it_wrote_and_publishes_only_them(lab, repo):
    lab("new-run", "x_001", "--hypothesis", "h")
    lab("new-run", "x_002", "--hypothesis", "h2")
    out = repo.parent / "docs"
    (out / "sub").mkdir(parents=True)
    (out / "notes.html").write_text("mine")
    (out / "sub" / "paper.html").write_text("mine too")
    (out / "runs").mkdir()
    (out / "runs" / "draft.html").write_text("a draft beside the lab's run pages")
    git(repo, "commit", "-q", "--allow-empty", "-m", "start")
    lab("site", "--out", str(out), "--branch")
    assert (out / "runs" / "x_002.html").exists()
    published = set(git(repo, "ls-tree", "-r", "--name-only", "lab-pages").split())
    assert "runs/x_001.html" in published and not {"notes.html", "sub/paper.html", "runs/draft.html"} & published
    lab("rm", "x_002", "--yes")
    lab("site", "--out", str(out))
    assert not (out / "runs" / "x_002.html").exists() and (out / "runs" / "x_001.html").exists()
    assert [(out / name).read_text() for name in ("notes.html", "sub/paper.html", "runs/draft.html")] == [
        "mine", "mine too", "a draft beside the lab's run pages"]


@pytest.mark.light
def test_site_branch_with_a_relative_out_from_a_subfolder(lab, repo):
    lab("new-run", "x_001", "--hypothesis", "h")
    git(repo, "commit", "-q", "--allow-empty", "-m", "start")
    (repo / "sub").mkdir()
    lab("site", "--branch", "--out", "rel", cwd=repo / "sub")
    assert (repo / "sub" / "rel" / "runs" / "x_001.html").exists()
    assert "runs/x_001.html" in git(repo, "ls-tree", "-r", "--name-only", "lab-pages").split()


SPIKY = ("from lab import tracker\n"
         "for step in range(10_000):\n"
         "    tracker.log(step, **{f'm{k:02d}': (100.0 if step == 5003 and k == 0 else 1.0)\n"
         "                         for k in range(30) if step % (k + 1) == 0})\n")


def test_a_chart_of_series_with_different_steps_keeps_a_spike(lab, browser, monkeypatch):
    from lab.site import charts

    monkeypatch.setattr(charts, "PANELS", [*charts.PANELS])
    charts.register_panel("spiky", ("m*",))  # 30 series of different steps in one panel: the browser thins them
    lab("new-run", "x_001", "--hypothesis", "h")
    lab("launch", "x_001", "--no-commit", "--", sys.executable, "-c", SPIKY)
    pages = site_pages(lab)
    with open_page(browser, pages["runs/x_001.html"]) as view:
        kept = view.page.evaluate("""() => {
            const u = labCharts.find(u => u.labPanel === 'spiky');
            const k = u.series.findIndex(s => s.label === 'Test 1 m00');
            const ys = u.data[k].filter(y => y !== null && y !== undefined);
            return [ys.length, Math.max(...ys)];
        }""")
    assert kept[0] < 10_000 and kept[1] == 100.0


def test_durations_sort_by_length_and_numbers_before_text(lab, browser):
    lab("new-run", "x_001", "--hypothesis", "h")
    pages = site_pages(lab)
    with open_page(browser, pages["runs/x_001.html"]) as view:
        view.page.evaluate("""() => {
            const body = document.querySelector('table.sortable tbody');
            body.innerHTML = '';
            for (const text of ['1h 0m', '10', '5x', '9', '3m 12s', '59s', 'abc']) {
                body.insertRow().insertCell().textContent = text;
            }
        }""")
        view.page.locator("table.sortable").first.locator("th").first.click()
        cells = view.page.evaluate("Array.from(document.querySelector('table.sortable tbody').rows)"
                                   ".map(r => r.cells[0].textContent)")
    assert cells == ["9", "10", "59s", "3m 12s", "1h 0m", "5x", "abc"]


@pytest.mark.light
def test_site_branch_sets_the_push_of_a_remote_added_after_init_and_only_for_its_own_branch(lab, repo):
    remote = repo.parent / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(repo, "commit", "-q", "--allow-empty", "-m", "start")
    git(repo, "branch", "lab-pages-redesign")  # the user's own branch, never pushed by the lab
    lab("new-run", "x_001", "--hypothesis", "h")
    said = lab("site", "--branch").stdout
    assert "no remote yet" in said and "git push REMOTE lab-pages" in said
    git(repo, "remote", "add", "origin", str(remote))  # after lab init
    said = lab("site", "--branch").stdout
    assert "already holds these pages" in said and "git push carries it to origin; set now for origin" in said
    git(repo, "push", "-q")  # a plain push, as the user makes anyway
    heads = git(repo, "ls-remote", "--heads", str(remote)).split()
    assert "refs/heads/lab-pages" in heads and "refs/heads/main" in heads
    assert "refs/heads/lab-pages-redesign" not in heads
    assert "+refs/heads/lab-pages:refs/heads/lab-pages" in git(repo, "config", "--get-all", "remote.origin.push")


@pytest.mark.light
def test_a_baseline_page_says_where_the_baseline_comes_from(lab):
    lab("new-run", "x_001", "--hypothesis", "h")
    launch(lab, "x_001", "val/acc", "--no-commit")
    lab("baseline", "add", "base1", "--from-run", "x_001", "--repo", "https://example.org/base.git",
        "--reference", "Smith et al. <2024>")
    lab("baseline", "attach", "base1", "x_001")
    page = site_pages(lab)["baselines/base1.html"].read_text()
    assert "<strong>Repository:</strong> https://example.org/base.git" in page
    assert "<strong>Reference:</strong> Smith et al. &lt;2024&gt;" in page
    assert "<strong>From run:</strong> x_001" in page


@pytest.mark.light
def test_groups_whose_names_differ_only_in_replaced_characters_get_their_own_pages(lab):
    for run_id, group in (("x_001", "a b"), ("x_002", "a_b"), ("x_003", "a/b")):
        lab("new-run", run_id, "--hypothesis", f"h {run_id}", "--group", group)
    pages = site_pages(lab)
    groups = sorted(name for name in pages if name.startswith("groups/"))
    assert len(groups) == 3 and "groups/a_b.html" in groups
    headings = {pages[name].read_text().split("<h1>")[1].split("</h1>")[0] for name in groups}
    assert headings == {"Group: a b", "Group: a_b", "Group: a/b"}
    index = pages["index.html"].read_text()
    assert all(f'href="{name}"' in index for name in groups)


@pytest.mark.light
def test_the_lab_s_own_site_folder_built_before_manifests_loses_its_stale_pages(lab):
    lab("new-run", "x_001", "--hypothesis", "h")
    folder = lab.repo / "logs" / "site"
    site_pages(lab)
    (folder / ".lab-site-files").unlink()  # as an earlier lab left it
    (folder / "runs" / "x_009.html").write_text("a removed run's page")
    assert "runs/x_009.html" not in site_pages(lab) and "runs/x_001.html" in site_pages(lab)
