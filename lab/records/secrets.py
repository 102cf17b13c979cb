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

REDACTED = "[redacted]"

SECRET_FILE_NAMES = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.ppk", "*.jks", "*.keystore", "id_rsa*",
    "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", "_netrc", ".pgpass", ".git-credentials", ".pypirc",
    "credentials", "credentials.json", "*credentials*.json", "service-account*.json", ".htpasswd",
)
SECRET_FOLDERS = (".aws", ".ssh", ".gnupg", ".docker")

# Name-value pairs: a secret-sounding name, then =, : or a comma (call arguments), then a long value.
KEYWORD_VALUE = re.compile(
    r"(?i)(?:api|key|token|secret|passw(?:or)?d|pwd|credential|auth)[\w.\-]*\\?[\"'\]]*\s*(?:[:=]|,|=>)\s*"
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

# The fast path of `redact_lines`: a built-in rule can only match near one of these. Every rule's secret is either
# a run of 20+ word characters ([A-Za-z0-9_-]; the shortest, an AWS access key id, is 20), a run of 32+ base64
# characters (the keyword rule's shortest value), or follows one of these literals (short Artifactory keys, JWTs,
# Slack tokens, key blocks, netrc and URL passwords, npm tokens). tests/lab/test_secrets.py checks each rule.
WORD_RUN, BASE64_RUN = 20, 32
TRIGGERS = (b"AKC", b"AP", b"eyJ", b"xox", b"PRIVATE KEY", b"PuTTY", b"password", b"_authToken", b"://")
CONTEXT_LINES = 2  # lines before a trigger the rules may need (a netrc entry, a keyword on the previous line)
WORD_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
WORD_TABLE = bytes(0x61 if byte in WORD_BYTES else 0x20 for byte in range(256))  # token bytes -> "a", others " "
BASE64_TABLE = bytes(0x61 if byte in WORD_BYTES + b"+/=" else 0x20 for byte in range(256))


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
    cache = rules_cache()
    try:
        entries = json.loads(cache.read_text(encoding="utf-8"))
        return tuple((name, re.compile(text, flags)) for name, detector, text, flags in entries
                     if detector not in LEFT_OUT_DETECTORS)
    except (OSError, ValueError, TypeError, re.error):
        entries = detect_secrets_rules()
    with contextlib.suppress(OSError):  # a cache that cannot be written costs the next process the import again
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(entries), encoding="utf-8")
        os.replace(temporary, cache)
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
    """Where `maintained_rules` keeps detect-secrets' rules: $XDG_CACHE_HOME/lab (else ~/.cache/lab), one file
    per installed detect-secrets version."""
    from importlib.metadata import version

    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lab"
    return folder / f"detect-secrets-{version('detect-secrets')}-rules.json"


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
        """`text` with every secret value replaced by [redacted]; text with no secret-looking token in it (see
        TRIGGERS) is returned as it is, without running the rules."""
        if not self.own_patterns and next(_suspects(text.encode("utf-8", "surrogatepass")), None) is None:
            return text
        pieces, position = [], 0
        for match in self.find(text):
            pieces += [text[position:match.start], REDACTED]
            position = match.end
        return "".join(pieces) + text[position:]

    def redact_lines(self, data: bytes) -> bytes:
        """Whole lines of output (bytes) with every secret replaced by [redacted], as `redact` would, at about
        the speed of a copy: the rules run only on the few lines around a secret-looking token (see TRIGGERS).
        Bytes elsewhere pass through untouched. A lab.json pattern (whose text the lab cannot foresee) makes
        every line go through the rules."""
        if self.own_patterns:
            spans = [(0, len(data))]
        else:
            spans = _merged(_line_span(data, position) for position in sorted(_suspects(data)))
        pieces, position = [], 0
        for start, end in spans:
            text = data[start:end].decode("utf-8", errors="surrogateescape")
            pieces += [data[position:start], self.redact(text).encode("utf-8", errors="surrogateescape")]
            position = end
        return b"".join(pieces) + data[position:] if pieces else data

    def secret_file_name(self, path: str) -> bool:
        """Whether a (repository-relative) path names a secret file: .env, keys, credentials, ~/.aws/..."""
        parts = PurePosixPath(path).parts
        if any(part in SECRET_FOLDERS for part in parts[:-1]):
            return True
        return bool(parts) and any(fnmatch.fnmatch(parts[-1], pattern) for pattern in self.names)


def _suspects(data: bytes):
    """Positions in `data` where a built-in rule could match: long token runs and TRIGGERS, one per line."""
    for table, run in ((WORD_TABLE, WORD_RUN), (BASE64_TABLE, BASE64_RUN)):
        mapped, needle = data.translate(table), b"a" * run
        position = mapped.find(needle)
        while position >= 0:
            yield position
            position = mapped.find(needle, data.find(b"\n", position) + 1 or len(data))
    for literal in TRIGGERS:
        position = data.find(literal)
        while position >= 0:
            yield position
            position = data.find(literal, data.find(b"\n", position) + 1 or len(data))


def _line_span(data: bytes, position: int) -> tuple[int, int]:
    """The line holding `position`, with CONTEXT_LINES lines before it and one after (byte offsets)."""
    start = data.rfind(b"\n", 0, position) + 1
    for _ in range(CONTEXT_LINES):
        start = data.rfind(b"\n", 0, start - 1) + 1 if start else 0
    end = data.find(b"\n", position) + 1 or len(data)
    return start, data.find(b"\n", end) + 1 or len(data)


def _merged(spans) -> list[tuple[int, int]]:
    """Sorted (start, end) spans with overlapping or touching ones joined."""
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [tuple(span) for span in merged]
