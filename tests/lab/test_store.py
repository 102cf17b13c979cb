import json
import multiprocessing
import os
import subprocess
import sys

import pytest

from lab.errors import LabError
from lab.records.files import append_jsonl, conflict_sides, read_jsonl, write_json
from lab.records.store import Store
from lab.records.store.names import slugify

pytestmark = pytest.mark.light  # also run in the light install (no torch) by make test


@pytest.fixture
def store(tmp_path):
    return Store.init(tmp_path)


@pytest.mark.parametrize("run_id", ["DIA_009", "dia_9", "dia009", "../dia_009", "dia_009/../../x_001", "", "9ia_001",
                                    "dia_0091", "dia-009"])
def test_invalid_and_escaping_ids_are_refused(store, run_id):
    with pytest.raises(LabError, match="invalid run id"):
        store.runs.create(run_id, hypothesis="h")
    assert not any(store.runs_dir.parent.parent.glob("x_001"))


def test_existing_id_is_refused_and_nothing_is_lost(store):
    store.runs.create("dia_009", hypothesis="first")
    with pytest.raises(LabError, match="already exists"):
        store.runs.create("dia_009", hypothesis="second")
    assert store.runs.load("dia_009")["hypothesis"] == "first"


def test_slug_has_date_id_and_short_title(store):
    record = store.runs.create("dia_009", hypothesis="MusicGen delay needs the full-size decoder")
    assert record["slug"].endswith("_dia_009_musicgen_delay_needs_full_size")
    assert record["slug"][:8].isdigit()
    assert store.runs.create("dia_010", hypothesis="x", title_text="Bottleneck fix")["slug"].endswith("bottleneck_fix")
    assert slugify("The  a of") == "the_a_of"


def _create_next(root):
    return Store(root).runs.create(None, prefix="nsd", hypothesis="parallel")["id"]


def test_next_ids_are_unique_under_concurrency(store):
    store.runs.create("nsd_007", hypothesis="existing")
    with multiprocessing.get_context("fork").Pool(6) as pool:
        ids = pool.map(_create_next, [store.root] * 12)
    assert sorted(ids) == [f"nsd_{n:03d}" for n in range(8, 20)]


def test_attempts_are_numbered_and_a_vanished_process_reads_as_crashed(store):
    store.runs.create("nsd_001", hypothesis="h")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    first = store.attempts.begin("nsd_001", command=["x"], pid=dead.pid)
    second = store.attempts.begin("nsd_001", command=["y"], pid=os.getpid())
    assert [store.attempt_number("nsd_001", folder.name) for folder in (first, second)] == [1, 2]
    assert first.name != second.name and first.name.endswith(store.clone_id[:8])  # no other clone makes these
    assert store.attempts.load("nsd_001", 1)["status"] == "crashed"
    assert store.attempts.load("nsd_001", 2)["status"] == "running"
    kinds = [event["kind"] for event in store.events.of("nsd_001")]
    assert kinds == ["created", "attempt_started", "attempt_started", "attempt_crashed"]


def test_atomic_json_leaves_no_temp_files_and_torn_jsonl_lines_are_skipped(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    write_json(tmp_path / "a.json", {"x": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}
    append_jsonl(tmp_path / "e.jsonl", {"n": 1})
    with open(tmp_path / "e.jsonl", "a") as stream:
        stream.write('{"n": 2, "trunc')
    assert list(read_jsonl(tmp_path / "e.jsonl")) == [{"n": 1}]


def test_baseline_snapshot_is_taken_once(store):
    store.baselines.save("cffan_baseline", {"repository": "r"}, {"optim": {"lr": 0.02}})
    store.baselines.save("cffan_baseline", {"repository": "r"}, {"optim": {"lr": 0.5}})
    assert store.baselines.get("cffan_baseline")["config"] == {"optim": {"lr": 0.02}}


def test_store_is_found_from_a_subfolder_and_missing_lab_is_an_error(store, tmp_path):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    assert Store.find(tmp_path / "deep" / "er").root == store.root
    with pytest.raises(LabError, match="lab init"):
        Store.find(tmp_path.parent / "elsewhere-does-not-exist")


def test_attempts_of_several_clones_read_as_tests_in_start_order(store):
    store.runs.create("nsd_001", hypothesis="h")
    folders = store.run_dir("nsd_001") / "attempts"
    names = ["20261130T101500Z-bbbbbbbb", "2", "20261130T101500Z-aaaaaaaa-10", "1", "20261130T090000Z-bbbbbbbb",
             "20261130T101500Z-aaaaaaaa-2", "20261130T101500Z-aaaaaaaa"]
    for name in names:
        write_json(folders / name / "attempt.json", {"run": "nsd_001", "number": 1, "status": "finished"})
    (folders / "20261130T120000Z-cccccccc").mkdir()  # half-made: no record yet
    assert [folder.name for folder in store.attempt_folders("nsd_001")] == [
        "1", "2", "20261130T090000Z-bbbbbbbb", "20261130T101500Z-aaaaaaaa", "20261130T101500Z-aaaaaaaa-2",
        "20261130T101500Z-aaaaaaaa-10", "20261130T101500Z-bbbbbbbb"]
    assert [store.attempts.load("nsd_001", n)["number"] for n in store.attempts.numbers("nsd_001")] == list(range(1, 8))


def test_conflict_sides_rebuild_both_versions():
    text = "{\n<<<<<<< HEAD\n  \"a\": 1\n||||||| base\n  \"a\": 0\n=======\n  \"a\": 2\n>>>>>>> theirs\n}\n"
    assert conflict_sides(text) == ('{\n  "a": 1\n}\n', '{\n  "a": 2\n}\n')
    assert conflict_sides('{"a": 1}\n') is None


def test_atomic_writes_give_a_new_file_the_usual_mode_and_keep_an_existing_files(tmp_path):
    """A temporary file is created private (0600); the written record must not stay so (lab.json, .gitignore and
    converted weights unreadable to the rest of a shared machine)."""
    from lab.records import files

    files.write_text(tmp_path / "new.json", "{}")
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o666 & ~files.UMASK
    private = tmp_path / "private.json"
    private.write_text("{}")
    private.chmod(0o640)
    files.write_text(private, "[]")
    assert private.stat().st_mode & 0o777 == 0o640 and private.read_text() == "[]"
