"""Errors about user input, with the file, column, row, expected and found value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Exit codes of every ``nbdiag`` command (README "Exit codes"), one meaning each: all runs
#: audited / sign-off passed; some runs could not be audited (input errors, named); bad usage
#: or settings, nothing run (also: group refusing partial or stale records); the QC sign-off
#: failed; nbdiag's own bug (the record or crash log holds the traceback).
EXIT_OK, EXIT_RUN_ERRORS, EXIT_USAGE, EXIT_SIGNOFF, EXIT_BUG = 0, 1, 2, 3, 4


class InputError(Exception):
    """A bad input file or value for one run.

    The message always names what was expected and what was found where
    known; ``to_dict`` gives the record's ``error`` object (docs/record.md).
    """

    def __init__(self, message: str, *, file: str | Path | None = None, column: str | None = None,
                 row: int | None = None, expected: Any = None, found: Any = None,
                 code: str | None = None) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.column = column
        self.row = row
        self.expected = expected
        self.found = found
        # None = the registry's generic ``input_invalid``, filled in where the record is built
        # (nbdiag.record.build): errors sits below the registry (codes -> thresholds -> errors)
        self.code = code
        super().__init__(self.describe())

    def describe(self) -> str:
        """One readable line: file, column/row, message, expected/found."""
        parts = []
        if self.file:
            parts.append(self.file)
        where = []
        if self.column is not None:
            where.append(f"column '{self.column}'")
        if self.row is not None:
            where.append(f"row {self.row}")
        head = ": ".join(parts + ([", ".join(where)] if where else []))
        text = f"{head}: {self.message}" if head else self.message
        if self.expected is not None or self.found is not None:
            text += f" (expected {self.expected}; found {self.found})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code, "message": self.describe(), "file": self.file, "column": self.column,
            "row": self.row, "expected": None if self.expected is None else str(self.expected),
            "found": None if self.found is None else str(self.found),
        }


class SettingsError(ValueError):
    """A setting has a bad value; the message says which, allowed and given."""
