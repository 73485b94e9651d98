"""The one exception family users see; the CLI prints it as one line and exits 2."""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped: error messages are one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class SimdbError(Exception):
    """A problem the user can fix: bad input, bad usage, an unreadable results folder."""


class ScenarioError(SimdbError):
    """A scenario that cannot be loaded. The message names file, line, field and what is allowed."""

    def __init__(self, message: str, *, source: str = "<scenario>", line: int | None = None, field: str = ""):
        self.source = source
        self.line = line
        self.field = field
        self.detail = message
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")
