"""Metric tables from an attempt's metrics.jsonl (pandas): final and best values per metric."""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Iterable, Iterator

from lab.records.files import open_record, read_jsonl_lines

LOWER_IS_BETTER = {"loss", "per", "wer", "cer", "error", "err", "perplexity", "ppl", "eer"}
HIGHER_IS_BETTER = {"acc", "accuracy", "f1", "bleu", "auc", "precision", "recall", "sdr", "snr", "pesq",
                    "map"}
NOT_METRICS = ("step", "time")
# The engine's own metrics: a rate, a learning rate, a gradient norm or a memory figure has no "best" (None).
ENGINE_DIRECTIONS = {
    "train/loss": "min", "train/samples_per_s": None, "train/tokens_per_s": None, "train/lr": None,
    "train/grad_norm": None, "train/skipped_steps": None, "train/peak_mem_mb": None,
}
RATE_SUFFIXES = ("_per_s", "_per_sec", "_per_second")


def metric_words(metric: str) -> set[str]:
    """The words of a metric name: 'val/top1_acc' -> {'val', 'top1', 'acc'}."""
    return set(re.split(r"[/_.\-]", metric.lower()))


def load(attempt_dir: Path):
    """The attempt's metric rows as a DataFrame indexed by row, with numeric columns (non-finite as NaN).

    Cached while the file is unchanged; callers must not modify the frame.
    """
    path = Path(attempt_dir) / "metrics.jsonl"
    return _load(path, *file_version(path))


def file_version(path: Path) -> tuple[int, int]:
    """(mtime, size) of a file, the key under which what was read from it is cached; (0, 0) when absent."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0, 0
    return stat.st_mtime_ns, stat.st_size


NON_FINITE_TEXT = ("nan", "inf", "-inf")  # how the tracker writes a non-finite value
BLOCK_BYTES = 2 << 20  # metrics.jsonl is parsed in blocks of whole lines of about this size (bigger: more memory)


@functools.lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int, size: int):
    """Parse metrics.jsonl block by block into float columns (NaN where a row lacks the metric).

    Each block goes through pyarrow's JSON reader; a block it refuses (a torn line, bytes that are not UTF-8,
    a line that is not an object) is parsed line by line with the same skipping rules as `read_jsonl`. Columns
    are allocated once at the file's line count, so peak memory is the columns plus one block.
    """
    import numpy as np
    import pandas as pd

    capacity = count_lines(path)  # rows can be no more than lines: columns are allocated once, at full size
    columns: dict[str, np.ndarray] = {}  # (capacity,) float64 each, NaN where a row lacks the metric
    non_finite: dict[str, list[int]] = {}  # column -> rows where a non-finite value was logged ("nan", "inf")
    rows = 0
    for block in line_blocks(path, BLOCK_BYTES):
        frame = parse_block(block).iloc[:capacity - rows]  # lines appended since the count wait for next time
        for column in frame.columns:
            if column not in columns:
                columns[column] = np.full(capacity, np.nan)
            columns[column][rows:rows + len(frame)] = numeric(frame[column])
            if frame[column].dtype == object:
                marked = frame[column].map(lambda value: isinstance(value, str) and value in NON_FINITE_TEXT)
                non_finite.setdefault(column, []).extend((rows + np.flatnonzero(marked.to_numpy())).tolist())
        rows += len(frame)
    columns = {column: values[:rows] for column, values in columns.items()}
    frame = pd.DataFrame(columns, copy=False)
    frame.attrs["non_finite"] = {column: marked for column, marked in non_finite.items() if marked}
    return one_row_per_step(frame)


def one_row_per_step(frame):
    """Consecutive rows logged at the same step (train and val in separate calls, a corrected value) merged into
    one: per metric the last value logged at that step wins. A step that goes back (a restart from an earlier
    checkpoint) is not merged: its rows stay, and start a new segment of the stream."""
    if "step" not in frame.columns or frame["step"].isna().any() or not frame["step"].duplicated().any():
        return frame
    segment = (frame["step"] != frame["step"].shift()).cumsum().to_numpy() - 1  # (rows,) index of the merged row
    if segment[-1] == len(frame) - 1:
        return frame
    marks = frame.attrs.get("non_finite", {})
    merged = frame.groupby(segment, sort=False).last().reset_index(drop=True)[frame.columns]
    merged.attrs["non_finite"] = {column: sorted({int(segment[row]) for row in rows}) for column, rows in marks.items()}
    return merged


def count_lines(path: Path) -> int:
    """Newlines in a file, plus one for an unterminated last line; 0 when there is no file."""
    stream = open_record(path)
    if stream is None:
        return 0
    count, last = 0, b"\n"
    with stream:
        while chunk := stream.read(BLOCK_BYTES):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def line_blocks(path: Path, size: int) -> Iterator[bytes]:
    """The bytes of a file in blocks of about `size` that end at a line end (the last may not)."""
    stream = open_record(path)
    if stream is None:
        return
    with stream:
        pending = b""
        while chunk := stream.read(size):
            pending += chunk
            end = pending.rfind(b"\n") + 1
            if end:
                yield pending[:end]
                pending = pending[end:]
        if pending:
            yield pending


def parse_block(block: bytes):
    """One block of JSONL as a DataFrame (columns as read)."""
    import pandas as pd
    import pyarrow
    import pyarrow.json

    try:
        return pyarrow.json.read_json(io.BytesIO(block)).to_pandas()
    except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError):
        return pd.DataFrame(list(read_jsonl_lines(block.splitlines())))


def numeric(column):
    """A column as float64: numbers as they are, text read as a number ("inf", "1.5"), anything else (lists,
    objects, true/false, other text) NaN."""
    import numpy as np
    import pandas as pd

    if column.dtype.kind in "iuf":
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    as_numbers = column.map(lambda value: value if isinstance(value, (int, float, str)) and
                            not isinstance(value, bool) else None)
    return pd.to_numeric(as_numbers, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def rows(attempt_dir: Path) -> "StreamRows | list":
    """The rows of an attempt's metrics.jsonl that have a numeric step, as the health rules read them; [] when it
    logged nothing (no file, or an empty one), without importing pandas: a launch that logs nothing costs nothing
    at its end."""
    if file_version(Path(attempt_dir) / "metrics.jsonl")[1] == 0:
        return []
    return StreamRows(load(attempt_dir))


class StreamRows:
    """A metric table seen as the health rules' list of rows, without a dict per row held in memory (a million
    rows would take a gigabyte): iterating builds each row as it goes, with its logged keys only (a value logged
    non-finite reads "nan"), and `points(key)` gives a column's finite (step, value) pairs at once."""

    CHUNK = 65536  # rows turned into Python values at a time while iterating

    def __init__(self, frame):
        import numpy as np
        import pandas as pd

        if "step" not in frame:  # no metrics (or none with a step): no rows
            frame = pd.DataFrame({"step": np.empty(0)})
        steps = frame["step"].to_numpy()
        finite = np.isfinite(steps)
        self.frame = frame if finite.all() else frame[finite]  # a copy only when some step is not a number
        self.non_finite = {column: set(indices) for column, indices in frame.attrs.get("non_finite", {}).items()}

    def __len__(self) -> int:
        return len(self.frame)

    def narrowed(self, keys: Iterable[str]) -> "StreamRows":
        """The same rows with only `keys` (and the step): what a rule that walks every row reads."""
        narrowed = StreamRows.__new__(StreamRows)
        narrowed.frame = self.frame[["step", *(key for key in dict.fromkeys(keys) if key in self.frame
                                               and key != "step")]]
        narrowed.non_finite = {key: rows for key, rows in self.non_finite.items() if key in narrowed.frame}
        return narrowed

    def __iter__(self) -> Iterator[dict]:
        columns = [column for column in self.frame.columns if column != "step"]
        origins = self.frame.index.to_numpy()  # row numbers in the file, for the non-finite marks
        for start in range(0, len(self.frame), self.CHUNK):
            chunk = self.frame.iloc[start:start + self.CHUNK]
            steps = chunk["step"].astype("int64").tolist()
            values = [chunk[column].tolist() for column in columns]
            for offset, row_values in enumerate(zip(*values)):
                row = {column: value for column, value in zip(columns, row_values) if value == value}
                row["step"] = steps[offset]
                if self.non_finite:
                    origin = int(origins[start + offset])
                    row.update({column: "nan" for column, rows in self.non_finite.items() if origin in rows})
                yield row

    def points(self, key: str) -> "Points | list":
        """The finite (step, value) pairs of one metric."""
        if key not in self.frame:
            return []
        import numpy as np

        values = self.frame[key].to_numpy()
        finite = np.isfinite(values)
        return Points(self.frame["step"].to_numpy()[finite].astype(np.int64), values[finite])


class Points(Sequence):
    """(step, value) pairs kept as two arrays; an item or an iteration gives Python numbers."""

    def __init__(self, steps, values):
        self.steps, self.values = steps, values  # (N,) int64, (N,) float64

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Points(self.steps[index], self.values[index])
        return int(self.steps[index]), float(self.values[index])

    def __iter__(self) -> Iterator[tuple[int, float]]:
        for start in range(0, len(self.steps), StreamRows.CHUNK):
            yield from zip(self.steps[start:start + StreamRows.CHUNK].tolist(),
                           self.values[start:start + StreamRows.CHUNK].tolist())


def series(frame, column: str, max_points: int | None = None) -> tuple[list[float], list[float]] | None:
    """(steps, values) of one metric column without its missing rows, or None when it has none.

    With `max_points`, a longer series keeps the lowest and highest point of each of `max_points / 2` equal
    runs of rows, so a plot of a million rows still shows every spike.
    """
    import numpy as np

    if column not in frame or "step" not in frame:
        return None
    steps, values = frame["step"].to_numpy(), frame[column].to_numpy()  # (rows,) each
    keep = ~(np.isnan(steps) | np.isnan(values))
    if not keep.any():
        return None
    steps, values = steps[keep], values[keep]
    if max_points and len(values) > max_points:
        buckets = np.arange(len(values)) * (max_points // 2) // len(values)  # (points,) bucket of each point
        import pandas as pd

        grouped = pd.Series(values).groupby(buckets)
        chosen = np.union1d(grouped.idxmin().to_numpy(), grouped.idxmax().to_numpy())
        steps, values = steps[chosen], values[chosen]
    return steps.tolist(), values.tolist()


def format_number(value: float | None) -> str:
    """Numbers as researchers write them in notes: 4 significant digits."""
    if value is None:
        return "-"
    return f"{value:.4g}"


def figure_text(value) -> str:
    """A recorded figure (a number, or anything else) as a page shows it: a float to 4 significant digits
    (`format_number`), an int whole, anything else as text."""
    if isinstance(value, float):
        return format_number(value)
    return str(value)


MIB = 2 ** 20  # bytes


def memory_text(byte_count: float | None) -> str:
    """Memory in the one unit every page and command uses, MiB (2**20 bytes), to 4 significant digits and whole
    from 1,000 MiB on: 18_500_000 -> "17.64 MiB", 26e9 -> "24,796 MiB"; "-" for None."""
    if byte_count is None:
        return "-"
    mib = byte_count / MIB
    return f"{mib:,.0f} MiB" if abs(mib) >= 1000 else f"{mib:.4g} MiB"


