"""The listening pages: samples a script or `lab generate` recorded (samples.jsonl), shown by step in Markdown and
in the HTML site with players that play from `file://`, linked from the run's report and page and the day's page."""

import json
import sys

import pytest
from site_browser import open_page

from lab.records.store import Store

SCRIPT = """
import io, math, struct, wave
from lab import tracker

def tone(pitch, seconds=0.5, rate=16000):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as sound:
        sound.setnchannels(1); sound.setsampwidth(2); sound.setframerate(rate)
        sound.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(pitch * i / rate)))
                                   for i in range(int(seconds * rate))))
    return buffer.getvalue()

for step in STEPS:
    tracker.log(step, **{"train/loss": 1.0 / step})
    tracker.sample("samples/tone <b>", tone(440 * step), step, suffix=".wav", sample_rate=16000, seconds=0.5,
                   settings={"temperature": 0.9})
"""


def launch_with_samples(lab, run_id: str, steps: tuple[int, ...]) -> None:
    lab("new-run", run_id, "--hypothesis", f"tones of {run_id}")
    lab("launch", run_id, "--no-commit", "--", sys.executable, "-c", SCRIPT.replace("STEPS", repr(steps)))


@pytest.mark.light
def test_markdown_listening_pages_by_step_and_across_runs(lab):
    launch_with_samples(lab, "x_001", (10, 20))
    launch_with_samples(lab, "x_002", (20,))
    lab("render")
    logs = lab.repo / "logs"
    page = (logs / "listen" / "x_001.md").read_text()
    assert page.index("## Step 10") < page.index("## Step 20")
    row = next(line for line in page.splitlines() if line.startswith("| samples/tone"))
    assert row.startswith("| samples/tone &lt;b> | ") and "<b>" not in row  # the name a script gave is escaped
    assert "training, Test 1" in row and "temperature 0.9" in row and "0.50 s" in row
    link = row.rsplit("](<", 1)[1].split(">)", 1)[0]
    assert (logs / "listen" / link).resolve().is_file() and "/runs/x_001/attempts/" in link
    assert link.endswith("/samples_tone__b_001_step10.wav")
    shared = (logs / "listen" / "step-20.md").read_text()
    assert shared.startswith("# Samples at step 20: x_001, x_002") and "## x_002" in shared
    assert not (logs / "listen" / "step-10.md").exists()  # only x_001 has step 10
    report = (logs / "reports" / "x_001.md").read_text()
    assert "2 samples across the run's checkpoints" in report and "(../listen/x_001.md)" in report
    day = next((logs / "daily").glob("*.md")).read_text()
    assert "Samples: 2 made this day; listen beside the others: [x_001 samples](../listen/x_001.md)" in day
    assert "logs/listen/" in (lab.repo / ".gitignore").read_text().splitlines()


@pytest.mark.light
def test_a_sample_over_the_size_limit_stays_local_and_the_pages_say_so(lab):
    settings = json.loads((lab.repo / "lab.json").read_text())
    (lab.repo / "lab.json").write_text(json.dumps({**settings, "samples": {"max_mb": 0.001}}))
    launch_with_samples(lab, "x_001", (5,))
    store = Store(lab.repo)
    line = json.loads((store.attempt_dir("x_001", 1) / "samples.jsonl").read_text())
    assert line["stored"] == "local" and line["bytes"] > 1000 and line["file"].startswith("artefacts/x_001/")
    assert (lab.repo / line["file"]).is_file() and not (store.attempt_dir("x_001", 1) / "samples").exists()
    (lab.repo / line["file"]).unlink()  # as on a colleague's clone: the records came, the file did not
    lab("render")
    page = (lab.repo / "logs" / "listen" / "x_001.md").read_text()
    assert f"kept on the machine that made it (sha256 {line['sha256'][:12]}..., {line['bytes']} bytes)" in page
    (lab.repo / "lab.json").write_text(json.dumps({**settings, "samples": {"max_mb": "big"}}))
    refused = lab("render", check=False)
    assert refused.returncode != 0 and 'lab: error: lab.json "samples.max_mb" must be a number >= 0' in refused.stderr


def test_the_listening_page_plays_a_sample_from_file_and_is_linked_from_the_run_and_day(lab, browser):
    launch_with_samples(lab, "x_001", (10, 20))
    lab("site")
    site = lab.repo / "logs" / "site"
    run_page = (site / "runs" / "x_001.html").read_text()
    assert 'href="../listen/x_001.html"' in run_page
    day = next((site / "days").glob("*.html")).read_text()
    assert 'href="../listen/x_001.html"' in day
    with open_page(browser, site / "listen" / "x_001.html") as view:
        assert view.page.locator("audio").count() == 2
        assert "samples/tone <b>" in view.page.locator("figcaption").first.inner_text()
        played = view.page.evaluate("""async () => {
            const audio = document.querySelector('audio');
            await audio.play();
            const start = performance.now();
            while (audio.currentTime === 0 && performance.now() - start < 5000) {
                await new Promise(r => setTimeout(r, 50));
            }
            return {time: audio.currentTime, ready: audio.readyState, duration: audio.duration, src: audio.currentSrc};
        }""")
        assert played["time"] > 0 and played["ready"] == 4 and abs(played["duration"] - 0.5) < 0.01, played
        assert played["src"].startswith("file://") and "/logs/site/media/x_001/" in played["src"]
        assert not view.errors
