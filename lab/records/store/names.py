"""The names the store hands out and accepts: run ids and prefixes, baseline names, slugs, attempt folder names,
and the time stamp every record carries."""

from __future__ import annotations

import re
from datetime import datetime

from lab.errors import LabError

RUN_ID = re.compile(r"^[a-z][a-z0-9_]*_[0-9]{3}$")
PREFIX = re.compile(r"^[a-z][a-z0-9_]*$")
BASELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME_LENGTH = 100
ATTEMPT_KEY = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}(-[0-9]+)?$")  # <UTC start>-<clone>[-<n>]
TITLE_STOPWORDS = {
    "a", "an", "the", "to", "of", "and", "or", "is", "are", "be", "will", "for", "on", "in", "with", "that",
    "this", "it", "we", "i", "if", "by", "at", "as", "than", "from", "does", "do", "can", "should",
}


def now_iso() -> str:
    """The current local time as ISO 8601 with its UTC offset, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


# a number kept whole (3e-2, 0.5, 1e+4, 2.5x), else a word of letters and digits
SLUG_WORD = re.compile(r"(?<![a-z0-9])\d+(?:\.\d+)?(?:e[-+]?\d+)?[a-z0-9]*|[a-z0-9]+")


def slugify(text: str, max_words: int = 5) -> str:
    """A short snake_case title from free text, without filler words, its numbers whole:
    "16 units underfit at lr 3e-2" -> "16_units_underfit_lr_3e-2"."""
    words = [word.replace("+", "") for word in SLUG_WORD.findall(text.lower())]
    kept = [word for word in words if word not in TITLE_STOPWORDS] or words
    return "_".join(kept[:max_words]) or "untitled"


def shortened(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, cut at a word boundary and ended with "…" where it was cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if text[limit - 1] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


def check_run_id(run_id: str) -> str:
    """Return `run_id` if it is a valid id (prefix + 3 digits, no path characters), else raise LabError."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id) or len(run_id) > MAX_NAME_LENGTH:
        raise LabError(
            f"invalid run id {run_id!r}: use a lowercase prefix and three digits, like dia_009 or nsd_011, "
            f"at most {MAX_NAME_LENGTH} characters"
        )
    return run_id


def check_prefix(prefix: str) -> str:
    """Return `prefix` if it can start a run id (lowercase letters, digits, underscores), else raise LabError."""
    if not PREFIX.fullmatch(prefix) or len(prefix) > MAX_NAME_LENGTH - 4:
        raise LabError(f"invalid run prefix {prefix!r}: lowercase letters, digits and underscores, at most "
                       f"{MAX_NAME_LENGTH - 4} characters")
    return prefix


def check_baseline_name(name: str) -> str:
    """Return `name` if it can name a baseline file, else raise LabError."""
    if not BASELINE_NAME.match(name or "") or len(name) > MAX_NAME_LENGTH:
        raise LabError(f"invalid baseline name {name!r}: letters, digits, '_', '-' and '.', starting with a "
                       f"letter or digit, at most {MAX_NAME_LENGTH} characters")
    return name


def is_attempt_key(name: str) -> bool:
    """Whether a folder name under attempts/ is an attempt: a number (older labs) or `<UTC start>-<clone>`."""
    return name.isdigit() or bool(ATTEMPT_KEY.fullmatch(name))


def attempt_order(name: str) -> tuple:
    """Sort key of attempt folders: older labs' numbered folders first, by number, then by start time (and
    for two launches of one clone in one second, `-2`, `-3` ... in order)."""
    if name.isdigit():
        return (0, int(name), "", 0)
    start, clone, copy = (name.split("-") + ["1"])[:3]
    return (1, 0, f"{start}-{clone}", int(copy))
