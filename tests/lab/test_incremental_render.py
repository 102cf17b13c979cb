"""`lab render` rewrites only the pages whose inputs changed (`lab.pages.incremental`): a note on one run renders
that run's report, the day's page and its group's page again (written only where their bytes changed) and
leaves every other page alone; an edited
template or a deleted page is rendered again; the bytes are those of a render without the derived index."""

import sys

import pytest

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test

@pytest.fixture
def rendered(script_lab):
    """Three launched runs (exp_001 and exp_002 in group lr, exp_003 alone), rendered once; `lab.before` holds
    every page's mtime then."""
    lab = script_lab
    lab("new-run", "exp_001", "--hypothesis", "a baseline LR", "--group", "lr")
    lab("launch", "exp_001", "--no-commit", "--", sys.executable, "train.py")
    lab("new-run", "exp_002", "--from", "exp_001", "--hypothesis", "a higher LR", "--group", "lr")
    lab("launch", "exp_002", "--no-commit", "--", sys.executable, "train.py", "--lr", "0.5")
    lab("new-run", "exp_003", "--hypothesis", "a wider model")
    lab("launch", "exp_003", "--no-commit", "--", sys.executable, "train.py", "--hidden", "64")
    lab("render")
    lab.before = {path: path.stat().st_mtime_ns for path in page_files(lab.repo)}
    return lab


def page_files(repo) -> list:
    return sorted(path for path in (repo / "logs").rglob("*") if path.is_file() and path.suffix in (".md", ".svg"))


def rewritten(lab) -> set[str]:
    """The pages written (or made) since `rendered`'s render."""
    return {str(path.relative_to(lab.repo / "logs")) for path in page_files(lab.repo)
            if lab.before.get(path) != path.stat().st_mtime_ns}


@pytest.fixture
def made(monkeypatch) -> list[str]:
    """The pages rendered from here on, as `template:what` (the run, the day or the comparison's name): jinja2's
    own Template.render, watched and called through."""
    import jinja2

    seen: list[str] = []
    original = jinja2.Template.render

    def watched(self, *args, **context):
        what = context.get("day") or context.get("name") or context["run"]["id"]
        seen.append(f"{self.name}:{what}")
        return original(self, *args, **context)

    monkeypatch.setattr(jinja2.Template, "render", watched)
    return seen


def test_a_second_render_renders_nothing(rendered, made):
    listed = rendered("render").stdout.split()
    assert made == [] and rewritten(rendered) == set()
    assert str(rendered.repo / "logs/reports/exp_003.md") in listed and len(listed) >= 5


def test_a_note_on_one_run_renders_its_report_its_day_and_its_group_again(rendered, made):
    repo = rendered.repo
    rendered("note", "exp_002", "--findings", "the higher LR diverged late")
    made.clear()
    rendered("render")
    day = next((repo / "logs/daily").iterdir()).stem
    assert sorted(made) == ["ablation.md.j2:lr", f"daily.md.j2:{day}", "report.md.j2:exp_002"]
    assert rewritten(rendered) == {"reports/exp_002.md", f"daily/{day}.md"}  # lr.md shows no notes: same bytes
    assert "the higher LR diverged late" in (repo / "logs/reports/exp_002.md").read_text()


def test_an_edited_template_or_a_deleted_page_is_rendered_again(rendered, made):
    repo = rendered.repo
    (repo / "logs/reports/exp_001.md").unlink()
    rendered("render")
    assert made == ["report.md.j2:exp_001"] and rewritten(rendered) == {"reports/exp_001.md"}
    (repo / "templates").mkdir(exist_ok=True)
    (repo / "templates/report.md.j2").write_text("# {{ run.id }} by the lab's own template\n")
    rendered("render")
    assert (repo / "logs/reports/exp_003.md").read_text() == "# exp_003 by the lab's own template\n"


def test_pages_rendered_incrementally_are_the_bytes_of_a_render_without_the_index(rendered):
    repo = rendered.repo
    rendered("note", "exp_001", "--conclusion", "kept as the baseline")
    rendered("render")
    incremental = {str(path): path.read_bytes() for path in page_files(repo)}
    (repo / ".git/lab/derived.sqlite").unlink()
    for path in page_files(repo):
        path.unlink()
    rendered("render")
    assert {str(path): path.read_bytes() for path in page_files(repo)} == incremental
