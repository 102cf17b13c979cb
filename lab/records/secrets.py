"""What counts as a secret, for git capture and for every record the lab writes.

    detector = SecretDetector.from_settings(store.settings)
    detector.find("WANDB_API_KEY='0123...'")   # -> [Match(rule="keyword with a random value", ...)]
    detector.redact(text)                     # the same text with each secret value replaced by [redacted]
    detector.secret_file_name("keys/prod.env")

The rules are detect-secrets' (Yelp's maintained scanner: AWS, GitHub, GitLab, Slack, Stripe, private keys, JWTs,
PyPI and npm tokens, ...), plus what it lacks here: fine-grained GitHub tokens, Google API keys, Hugging Face
and OpenAI-style keys, PuTTY keys, netrc entries, an unquoted AWS secret key, and any 32+ character random
value (hex or base64-like, checked by entropy) assigned to a name like key, token, secret or password. A lab
adds its own in lab.json: {"secrets": {"patterns": [regex, ...], "names": [glob, ...]}}.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from lab.records.files import cache_home

REDACTED = "[redacted]"

SECRET_FILE_NAMES = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.ppk", "*.jks", "*.keystore", "id_rsa*",
    "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", "_netrc", ".pgpass", ".git-credentials", ".pypirc",
    "credentials", "credentials.json", "*credentials*.json", "service-account*.json", ".htpasswd",
)
SECRET_FOLDERS = (".aws", ".ssh", ".gnupg", ".docker")

# Name-value pairs: a secret-sounding name, then =, : or a comma (call arguments), then a long value. The name's tail
# is bounded: an unbounded run of word characters would be read to the line's end from every name on it (quadratic).
KEYWORD_VALUE = re.compile(
    r"(?i)(?:api|key|token|secret|passw(?:or)?d|pwd|credential|auth)[\w.\-]{0,64}\\?[\"'\]]*\s*(?:[:=]|,|=>)\s*"
    r"\\?[\"']?([A-Za-z0-9+/=_\-]{32,})"
)
HEX_ENTROPY = 3.0  # bits per character; random hex has about 3.7 over 32+ characters
OTHER_ENTROPY = 4.0  # random base64 has about 4.5-5

EXTRA_RULES = {  # a rule with a group marks the secret value with it; otherwise the whole match is the secret
    "private key block": (r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----[\s\S]*?"
                          r"(?:-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)"),
    "GitHub fine-grained token": r"github_pat_[A-Za-z0-9_]{22,}",
    "Google API key": r"AIza[0-9A-Za-z_\-]{35}",
    "Hugging Face token": r"hf_[A-Za-z0-9]{30,}",
    "OpenAI-style key": r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}",
    "PuTTY private key": r"PuTTY-User-Key-File-\d",
    "netrc password": r"machine\s+\S+\s+(?:login\s+\S+\s+)?password\s+(\S+)",
    "AWS secret access key": r"(?i)aws_secret_access_key\s*[=:]\s*[\"']?([A-Za-z0-9/+]{40})",
}
LEFT_OUT_DETECTORS = {"IPPublicDetector"}  # an IP address in code is not a secret

# The fast path of `redact_lines` and `redact`: the rules (about 1 s per MB) run only on the lines where one of them
# could match, found by anchors that cost the same whatever the lines hold (about 0.03 s per MB: a few regular
# expressions that start with a literal or a rare capital, run in C). Each rule has its anchor here: a literal it
# starts with, its token's shape (bot tokens), or, for the keyword rules, a secret-sounding name followed by a
# separator. A long random-looking token alone is no anchor: hashes, ids and base64 data pass untouched.
# tests/lab/test_secrets.py checks every rule against its shortest secret.
NO_URL_PART = rb"[^\s:/?#\[\]@!$&'()*+,;=]+"  # Basic Auth's user and password characters
ANCHORS = (  # searched in the bytes as they are; each starts with a literal, which the regex engine finds fastest
    re.compile(rb"A(?:(?:3T[A-Z0-9]|BIA|CCA|KIA|SIA)[0-9A-Z]{16}|KC[a-zA-Z0-9]{10}|P[0-9A-F][a-zA-Z0-9]{8}"
               rb"|ccountKey=|Iza|C[a-z0-9]{32})"),
    re.compile(rb"g(?:h[pousr]_|l(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-|ithub_pat_)"),
    *(re.compile(text) for text in (
        rb"SK[a-z0-9]{32}", rb"SG\.[\w-]{22}\.", rb"GR1348941", rb"PRIVATE KEY", rb"PuTTY", rb"T3BlbkFJ",
        rb"eyJ[\w=-]+\.", rb"sk-[\w-]{20}", rb"k_live_[0-9a-zA-Z]{24}", rb"pypi-AgE", rb"sq0csp-",
        rb"hf_[A-Za-z0-9]{30}", rb"_authToken", rb"-us[0-9]",
        rb"machine\s+\S+\s+(?:login\s+\S+\s+)?password")),  # a netrc entry, over its lines
    re.compile(rb"://" + NO_URL_PART + rb":" + NO_URL_PART + rb"@"),
)
LOWER_ANCHORS = tuple(  # searched in the lowered bytes (the rules that ignore case): a name and its tail, a separator
    # (=, :, a comma, =>, :=, ::, or spaces after a quote or bracket) with any blanks, quotes or brackets around it,
    # newlines too, and a value as long as the shortest these rules take (Cloudant's 24 letters, the keyword rule's
    # 32 token characters). The runs around the separator are possessive and exclude what follows them, so each
    # name costs the length of its own tail, never the line's.
    [re.compile(name + rb"[\w.\-]{0,64}+(?:[^\w.\-:=,]*+(?:=>|:=|::|[:=,])|[\"'\]]{0,2} ++)[^\w+/=\-]*+"
                rb"(?:[a-z]{24}|[\w+/=\-]{32})")
     for name in (rb"api", rb"key", rb"token", rb"secret", rb"pass", rb"pw", rb"credential", rb"auth")]
    + [re.compile(literal) for literal in (rb"aws", rb"softlayer", rb"xox", rb"hooks\.slack\.com")]
)
TOKEN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
SHAPES = (  # (table, needle, the token's whole shape) in the mapped bytes: Discord's a.b.c bot token (24+ . 6 . 27
    # token bytes), Telegram's (8+ digits, a colon, 35 token bytes); `bytes.find` of the needle costs least
    (bytes(0x61 if byte in TOKEN_BYTES else byte if byte == 0x2E else 0x20 for byte in range(256)),
     b"a" * 24 + b"." + b"a" * 6 + b"." + b"a" * 27, None),
    (bytes(0x64 if 0x30 <= byte <= 0x39 else 0x61 if byte in TOKEN_BYTES else byte if byte == 0x3A else 0x20
           for byte in range(256)), b"d" * 8 + b":", re.compile(rb"d{8}:[ad]{35}")),
)
KEY_BLOCK = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY")  # its span runs to KEY_BLOCK_END (or the end)
KEY_BLOCK_END = re.compile(rb"-----END [A-Z0-9 ]*PRIVATE KEY")
CONTEXT_LINES = 2  # lines before an anchor the rules may need (a netrc entry, a keyword on the previous line)
WINDOW_BYTES = 4096  # of a long line, what the rules read either side of an anchor (a secret is shorter)
SECRET_BYTES = 2048  # longer than any secret the rules take (GitLab's agent token: 1032)
KEY_BLOCK_BYTES = 65536  # how far after its BEGIN line a private key block is read for its END


@dataclass(frozen=True)
class Match:
    """A secret found in a text: the rule that found it and the span of the secret value."""

    rule: str
    start: int
    end: int


def entropy(text: str) -> float:
    """Shannon entropy of `text` in bits per character."""
    counts = Counter(text)
    return -sum(count / len(text) * math.log2(count / len(text)) for count in counts.values())


def looks_random(value: str) -> bool:
    """Whether `value` reads as a generated key: letters and digits mixed, and high entropy for its alphabet."""
    if not (re.search(r"[0-9]", value) and re.search(r"[A-Za-z]", value)):
        return False
    hex_only = re.fullmatch(r"[0-9a-fA-F]+", value) is not None
    return entropy(value) >= (HEX_ENTROPY if hex_only else OTHER_ENTROPY)


@functools.lru_cache(maxsize=1)
def maintained_rules() -> tuple[tuple[str, re.Pattern], ...]:
    """detect-secrets' regex rules (its regex-based detectors' deny lists, without LEFT_OUT_DETECTORS).

    Importing detect-secrets takes about 0.25 s (it loads requests and every plugin), which each launch would
    pay, so its rules are kept in `rules_cache()` (derived, rebuilt silently when missing, unreadable or of
    another detect-secrets version) and compiled from there (about 10 ms).
    """
    try:
        cache = rules_cache()
    except (RuntimeError, ImportError):  # no home folder to cache in; detect-secrets installed without metadata
        cache = None
    if cache is not None:
        with contextlib.suppress(OSError, ValueError, TypeError, re.error):
            return _compiled(_checked(json.loads(cache.read_text(encoding="utf-8"))))
    entries = detect_secrets_rules()
    if cache is not None:
        _write_cache(cache, entries)
    return _compiled(entries)


def _checked(entries: Any) -> list:
    """`entries` read from the cache when they are rules (a non-empty list of [name, detector, regex, flags]),
    else ValueError: a cache that lost its rules is rebuilt, never trusted to redact nothing."""
    if not isinstance(entries, list) or not entries or not all(
            isinstance(entry, list) and len(entry) == 4 and all(isinstance(part, str) for part in entry[:3])
            and isinstance(entry[3], int) for entry in entries):
        raise ValueError("not a rules cache")
    return entries


def _write_cache(cache: Path, entries: list) -> None:
    """Write `entries` to `cache` atomically; a cache that cannot be written costs the next process the import."""
    temporary = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(entries), encoding="utf-8")
        os.replace(temporary, cache)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _compiled(entries: list) -> tuple[tuple[str, re.Pattern], ...]:
    """(name, compiled regex) of `detect_secrets_rules` entries, without LEFT_OUT_DETECTORS."""
    return tuple((name, re.compile(text, flags)) for name, detector, text, flags in entries
                 if detector not in LEFT_OUT_DETECTORS)


def detect_secrets_rules() -> list[tuple[str, str, str, int]]:
    """(secret type, detector class name, regex text, regex flags) of every regex-based detect-secrets detector."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    return [(name, detector.__name__, pattern.pattern, pattern.flags)
            for name, detector in sorted(get_mapping_from_secret_type_to_class().items())
            if issubclass(detector, RegexBasedDetector) for pattern in detector.denylist]


def rules_cache() -> Path:
    """Where `maintained_rules` keeps detect-secrets' rules: `cache_home()`/lab, one file per installed
    detect-secrets version and cache layout."""
    from importlib.metadata import version

    return cache_home() / "lab" / f"detect-secrets-{version('detect-secrets')}-rules-v{RULES_CACHE_FORMAT}.json"


RULES_CACHE_FORMAT = 1  # the layout of a rules cache file: a new layout is a new file


class SecretDetector:
    """Finds and redacts secrets in text and files, and knows secret-looking file names."""

    def __init__(self, patterns: list[str] = (), names: list[str] = ()):
        self.patterns = tuple(patterns)
        self.own_patterns = bool(patterns)
        self.names = SECRET_FILE_NAMES + tuple(names)

    @functools.cached_property
    def rules(self) -> tuple[tuple[str, re.Pattern, bool], ...]:
        """(name, compiled regex, whether its last group marks the secret) of every rule, compiled on first use:
        output with nothing secret-looking in it never needs them (`redact_lines`)."""
        extra = {**EXTRA_RULES, **{f"lab.json pattern {index + 1}": text for index, text in enumerate(self.patterns)}}
        return (tuple((name, pattern, False) for name, pattern in maintained_rules())
                + tuple((name, re.compile(text), True) for name, text in extra.items()))

    @classmethod
    def from_settings(cls, settings: dict) -> SecretDetector:
        """The detector of a lab: the built-in rules and lab.json's `secrets.patterns` and `secrets.names`."""
        from lab.errors import LabError

        section = settings.get("secrets") or {}
        patterns, names = section.get("patterns", []), section.get("names", [])
        if not isinstance(section, dict) or not all(isinstance(item, str) for item in [*patterns, *names]):
            raise LabError('lab.json "secrets" takes {"patterns": [regex, ...], "names": [glob, ...]}')
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise LabError(f"lab.json secrets pattern {pattern!r} is not a regular expression: {error}") from None
        return cls(patterns, names)

    def find(self, text: str) -> list[Match]:
        """Every secret in `text`, by position (overlapping finds merged)."""
        spans = []
        for name, pattern, grouped in self.rules:
            for found in pattern.finditer(text):
                group = (found.lastindex or 0) if grouped else 0
                spans.append(Match(name, found.start(group), found.end(group)))
        for found in KEYWORD_VALUE.finditer(text):
            if looks_random(found.group(1)):
                spans.append(Match("keyword with a random value", found.start(1), found.end(1)))
        merged: list[Match] = []
        for match in sorted(spans, key=lambda match: (match.start, -match.end)):
            if merged and match.start < merged[-1].end:
                last = merged[-1]
                merged[-1] = Match(last.rule, last.start, max(last.end, match.end))
            elif match.end > match.start:
                merged.append(match)
        return merged

    def redact(self, text: str) -> str:
        """`text` with every secret value replaced by [redacted]; text with no anchor of a rule in it (see ANCHORS)
        is returned as it is, without running the rules."""
        if not self.own_patterns and not _spans(text.encode("utf-8", "surrogatepass")):
            return text
        return self.redact_all(text)

    def redact_all(self, text: str) -> str:
        """`text` with every secret value replaced by [redacted], every rule run over all of it."""
        pieces, position = [], 0
        for match in self.find(text):
            pieces += [text[position:match.start], REDACTED]
            position = match.end
        return "".join(pieces) + text[position:]

    def redact_lines(self, data: bytes) -> bytes:
        """Whole lines of output (bytes) with every secret replaced by [redacted], as `redact` would, at a cost per
        byte that does not depend on what the lines hold: the rules run only on the lines around an anchor (see
        ANCHORS) and, for each lab.json pattern (whose text the lab cannot foresee), around its own matches.
        Bytes elsewhere pass through untouched."""
        spans = _spans(data)
        if self.own_patterns:
            spans = _merged(sorted(spans + [_line_span(data, *found) for found in self._own_matches(data)]))
        pieces, position = [], 0
        for start, end in spans:
            text = data[start:end].decode("utf-8", errors="surrogateescape")
            pieces += [data[position:start], self.redact_all(text).encode("utf-8", errors="surrogateescape")]
            position = end
        return b"".join(pieces) + data[position:] if pieces else data

    def _own_matches(self, data: bytes):
        """(start, end) byte offsets of each match of a lab.json pattern in `data` (decoded as UTF-8)."""
        text = data.decode("utf-8", errors="surrogateescape")
        for _, pattern, _ in self.rules[len(self.rules) - len(self.patterns):]:
            characters = position = 0  # a match's byte offset, counted on from the previous one's
            for found in pattern.finditer(text):
                position += len(text[characters:found.start()].encode("utf-8", errors="surrogateescape"))
                characters = found.start()
                yield position, position + len(found.group().encode("utf-8", errors="surrogateescape"))

    def secret_file_name(self, path: str) -> bool:
        """Whether a (repository-relative) path names a secret file: .env, keys, credentials, ~/.aws/..."""
        parts = PurePosixPath(path).parts
        if any(part in SECRET_FOLDERS for part in parts[:-1]):
            return True
        return bool(parts) and any(fnmatch.fnmatch(parts[-1], pattern) for pattern in self.names)


def _spans(data: bytes) -> list[tuple[int, int]]:
    """Sorted, disjoint (start, end) byte spans of `data` that the rules must read: the lines around each anchor
    (`_line_span`), and each private key block whole, from its BEGIN line to its END line (at most
    KEY_BLOCK_BYTES on)."""
    lowered = data.lower()
    spans = [span for text, patterns in ((data, ANCHORS), (lowered, LOWER_ANCHORS)) for pattern in patterns
             for span in _anchor_spans(data, functools.partial(_found, pattern, text))]
    for table, needle, shape in SHAPES:
        spans += _anchor_spans(data, functools.partial(_found_shape, needle, shape, data.translate(table)))
    for block in KEY_BLOCK.finditer(data):
        limit = min(len(data), block.end() + KEY_BLOCK_BYTES)
        ending = KEY_BLOCK_END.search(data, block.end(), limit)
        spans.append((_line_span(data, block.start(), block.end())[0],
                      _line_span(data, ending.start(), ending.end())[1] if ending else limit))
    return _merged(sorted(spans))


def _found(pattern: re.Pattern, text: bytes, position: int) -> tuple[int, int] | None:
    """(start, end) of `pattern`'s next match in `text` at or after `position`, or None."""
    found = pattern.search(text, position)
    return found.span() if found else None


def _found_shape(needle: bytes, shape: re.Pattern | None, text: bytes, position: int) -> tuple[int, int] | None:
    """(start, end) of the next `needle` in `text` at or after `position` that begins `shape` (if given), or None."""
    start = text.find(needle, position)
    while start >= 0 and shape is not None and not shape.match(text, start):
        start = text.find(needle, start + 1)
    return (start, start + len(needle)) if start >= 0 else None


def _anchor_spans(data: bytes, find) -> list[tuple[int, int]]:
    """The `_line_span` of each anchor `find(position)` gives ((start, end) of the next one at or after position,
    or None): the first on each line, and on a line longer than WINDOW_BYTES, one per window (the windows overlap by
    SECRET_BYTES, so a secret across a window's end is read whole)."""
    spans, position = [], 0
    while (found := find(position)) is not None:
        spans.append(_line_span(data, *found))
        resume = found[1] + WINDOW_BYTES - SECRET_BYTES  # an anchor before it lies in this span with its secret
        position = data.find(b"\n", found[1], found[1] + WINDOW_BYTES) + 1 or resume
    return spans


def _line_span(data: bytes, start: int, end: int) -> tuple[int, int]:
    """The line holding data[start:end], with CONTEXT_LINES lines before it and one after, cut to WINDOW_BYTES
    either side of it: the work of the rules per anchor is bounded however long the line."""
    low, high = max(0, start - WINDOW_BYTES), min(len(data), end + WINDOW_BYTES)
    first = data.rfind(b"\n", low, start) + 1 or low
    for _ in range(CONTEXT_LINES):
        first = data.rfind(b"\n", low, max(first - 1, low)) + 1 or low
    last = data.find(b"\n", end, high) + 1 or high
    return first, data.find(b"\n", last, high) + 1 or high


def _merged(spans) -> list[tuple[int, int]]:
    """Sorted (start, end) spans with overlapping or touching ones joined."""
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [tuple(span) for span in merged]
