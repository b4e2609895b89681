"""User-facing error types.

The CLI catches these and prints one line (``error: <message>``) instead of a traceback,
so every message must name the culprit: the file and line, the example id, or the gin
binding. Messages never contain raw note text (clinical text is PHI).
"""


class GatortronError(Exception):
    """Base class for errors the CLI reports as a single line."""


class InputError(GatortronError, ValueError):
    """Bad input data: empty corpus, undecodable bytes, malformed annotation, missing file."""


class ConfigError(GatortronError, ValueError):
    """Bad configuration: unknown gin binding, missing required value, inconsistent sizes."""
