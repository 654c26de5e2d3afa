"""Size guards (``[limits]`` in the config): refuse inputs too large to audit sensibly.

Each limit bounds time and memory by the design's size, not the file's: files are read
only up to the limit + 1 rows/columns, so a 1,000,000-row events file costs no more
than a 100,001-row one before it is refused with a clear error.

=====================  =======  ==============================================
key                    default  what
=====================  =======  ==============================================
max_confound_columns   2000     columns of a confounds TSV
max_event_rows         100000   rows of an events TSV
max_scans              10000    volumes of a run (image header or confounds rows)
=====================  =======  ==============================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from nbdiag.core.errors import SettingsError


@dataclass(frozen=True)
class Limits:
    """Largest inputs nbdiag audits (each a positive integer)."""

    max_confound_columns: int = 2000
    max_event_rows: int = 100_000
    max_scans: int = 10_000

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def updated(self, values: Mapping[str, Any], where: str = "[limits]") -> "Limits":
        """A copy with ``values`` validated (positive integers) and applied."""
        if not isinstance(values, Mapping):
            raise SettingsError(f"{where}: expected a table of limits; got {type(values).__name__}")
        allowed = {f.name for f in fields(self)}
        clean: dict[str, int] = {}
        for key, value in values.items():
            if key not in allowed:
                raise SettingsError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(sorted(allowed))}")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(f"{where}: invalid value for '{key}': expected an integer >= 1; got {value!r}")
            clean[key] = int(value)
        return replace(self, **clean)


def too_large(what: str, found: int, limit: int, key: str) -> str:
    """The message for an input above a limit."""
    return (f"{what}: {found} is above the limit of {limit} ([limits] {key}); raise it in the config "
            f"if this is intended")
