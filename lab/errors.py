"""The error kinds of the notebook. Each message is one line meant for the user; the CLI prints it as
`lab: error: <message>` and exits non-zero. Imports nothing of the lab."""


class LabError(Exception):
    """A user-facing error: printed as one line by the CLI, which then exits non-zero."""


class ConfigError(ValueError):
    """A config or override the user gave is malformed; the message is one line meant for the user."""


class RecordError(ValueError):
    """A record file that cannot be read (edited by hand, or damaged); the message is one line."""
