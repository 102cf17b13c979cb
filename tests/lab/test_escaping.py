"""User text (hypotheses, notes, metric names, branch names, media names) is escaped for where it lands on a page: it
cannot add headings, sections, table columns or HTML."""

import subprocess
import sys
from pathlib import Path




HOSTILE = {
    "hypothesis": "Warmup helps\n## Injected heading\n<script>alert(1)</script>",
    "title": "A title that is long enough to be cut right inside the tag <img src=x onerror=alert(1)>",
    "note": "batch 4\n### exp_999: fake run\n```\nrm -rf /\n```",
    "insight": "Clipping matters\n## Commits\n- `fake` [`0000000`] **main**: forged",
}


def outside_code(page: str) -> list[str]:
    """The page's lines outside fenced code blocks (a fence closes on a line of at least as many backticks)."""
    lines, fence = [], None
    for line in page.splitlines():
        ticks = len(line) - len(line.lstrip("`"))
        if fence is None and ticks >= 3:
            fence = ticks
        elif fence is not None and ticks >= fence and not line.strip("`"):
            fence = None
        elif fence is None:
            lines.append(line)
    return lines


def test_user_text_cannot_add_headings_sections_columns_or_html(lab, repo):
    lab("new-run", "e_001", "--hypothesis", HOSTILE["hypothesis"], "--title", HOSTILE["title"])
    code = ("from lab import tracker\ntracker.log(1, **{'top1|top5': 0.5, 'val\\nloss': 0.25, 'x<b>': 1.0})\n")
    lab("launch", "e_001", "--note", HOSTILE["note"], "--", sys.executable, "-c", code)
    lab("note", "e_001", "--findings", "a | b\n### exp_998: fake too")
    lab("note", "--insight", HOSTILE["insight"])
    page = Path(lab("log").stdout.strip()).read_text()
    headings = [line for line in outside_code(page) if line.startswith("#")]
    assert headings == [headings[0], "## Overview", "## Experiments", headings[3], "## Key Insights", "## Commits"]
    assert headings[3].startswith("### e_001: A title") and "<img" not in page and "<script" not in page
    assert page.count("`0000000`") == 1 and "\\## Commits" in page  # the insight's line is text, not a section
    assert "\\```" in page  # the note's fence is text on the daily page, which holds no code block
    assert not [line for line in page.splitlines() if line.startswith("```")]
    report = Path(lab("report", "e_001").stdout.strip().splitlines()[-1]).read_text()
    assert not [line for line in outside_code(report) if line.startswith(("## Injected", "### exp_99"))]
    fences = [line for line in report.splitlines() if line.startswith("```")]
    assert fences[0] == "````bash" and fences[-1] == "````"  # Reproduce: longer than the note's own fence inside it
    rows = [line for line in report.splitlines() if line.startswith("| ") and "0." in line]
    # | Metric | At kept step | Final | Own best | Own best step |: no judged metric was logged, so no kept step
    assert sorted(rows) == ["| top1\\|top5 | - | 0.5 | - | - |", "| val loss | - | 0.25 | - | - |"]
    assert "| x&lt;b> | - | 1 | - | - |" in report
    assert "<script" not in report and "<img" not in report and "| top1\\|top5 |" in report


def test_media_names_branches_and_stop_reasons_are_text_on_the_report(lab, repo):
    subprocess.run(["git", "checkout", "-q", "-b", "x/<img-src=y>#1"], cwd=repo, check=True)
    lab("new-run", "e_002", "--hypothesis", "h")
    (repo / "clip.wav").write_bytes(b"RIFF")
    code = ("from lab import tracker\n"
            "tracker.log(1, **{'val/loss': 0.5})\n"
            "tracker.media('sample\\n## Injected <b>x</b>', 'clip.wav', 1, kind='audio')\n")
    lab("launch", "e_002", "--", sys.executable, "-c", code)
    report = Path(lab("report", "e_002").stdout.strip().splitlines()[-1]).read_text()
    assert not [line for line in outside_code(report) if line.startswith("## Injected")]
    text = "\n".join(outside_code(report))  # the Reproduce block holds the command as it is, fenced
    assert "<b>" not in text and "<img" not in text
    assert "- step 1, sample ## Injected &lt;b>x&lt;/b> (audio): `" in report
    assert "on x/&lt;img-src=y>#1" in report
