"""Refuse early: check contrasts and event settings before any run is audited.

A typo in ``--contrast`` or ``--events-rename`` would otherwise surface once per run
(every record ``error``, or a silently unchanged condition). Here every variant's
contrasts are parsed against the design of the first run that can be built, and the
trial types named by ``[events]`` ``rename`` / ``drop`` are looked up in the runs'
events files. A problem raises :class:`~nbdiag.core.errors.SettingsError` (exit code 2)
naming the setting, what is known and the closest match.
"""

from __future__ import annotations

import ast
import difflib
import re
from typing import Iterable, Mapping, Sequence

import pandas as pd

from nbdiag.config import Config, Settings
from nbdiag.core.errors import InputError, SettingsError
from nbdiag.design.contrasts import parse_contrasts
from nbdiag.inputs.events import load_plugin
from nbdiag.record.build import prepare_run

__all__ = ["check_contrasts", "check_before_runs", "close_match", "expression_names"]


def close_match(name: str, known: Iterable[str]) -> str | None:
    """The closest of ``known`` to ``name`` (difflib, ratio >= 0.6), or None."""
    found = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    if not found:  # case-only differences score low on short names
        lower = {str(k).lower(): str(k) for k in known}
        return lower.get(str(name).lower())
    return found[0]


def expression_names(expression: str) -> list[str] | None:
    """Names used in a contrast expression, in order (None if it is not a Python expression)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return None
    found = sorted((node.col_offset, node.id) for node in ast.walk(tree) if isinstance(node, ast.Name))
    return list(dict.fromkeys(name for _, name in found))


def check_contrasts(contrasts: Mapping[str, str] | Sequence[str] | None, design: pd.DataFrame,
                    roles: Mapping[str, str], where: str = "") -> list[str]:
    """Problems of ``contrasts`` against ``design``, one readable line each (empty: all fine).

    Each line names the contrast, the unknown name and its closest design column, or
    nilearn's reason when the expression is not a linear combination of columns.
    """
    if not contrasts:
        return []
    parsed = parse_contrasts(contrasts, design, roles)
    columns = [str(c) for c in design.columns]
    conditions = [c for c in columns if roles.get(c) == "task"]
    given = dict(contrasts) if isinstance(contrasts, Mapping) else {}
    problems = []
    for finding in parsed.findings:
        name = finding.contrast
        expression = str(finding.evidence.get("expression", name))
        if isinstance(given.get(name), Mapping):  # {column: weight}: the names are the keys
            names = [str(k) for k in given[name]]
        else:
            names = expression_names(expression) if expression.strip() else None
        unknown = [n for n in (names or []) if n not in columns]
        if unknown:
            parts = []
            for item in unknown:
                match = close_match(item, columns)
                parts.append(f"{item!r} is not a column of the design" + (f" (did you mean {match!r}?)" if match else ""))
            problems.append(f"contrast {name!r} = {expression!r}: {'; '.join(parts)}{where}. "
                            f"Known conditions: {', '.join(conditions) or 'none'}")
        else:
            reason = str(finding.evidence.get("reason", "")).strip().rstrip(".") or \
                "not a linear combination of design columns"
            if names is None:
                reason = "not a valid expression (write e.g. 'two_back - zero_back')"
            problems.append(f"contrast {name!r} = {expression!r}: {reason}{where}. "
                            f"Known conditions: {', '.join(conditions) or 'none'}")
    return problems


def _events_facts(runs: Sequence, needed_types: set[str], needed_columns: set[str]) -> tuple[set[str], set[str]]:
    """Trial types and column names found in the runs' events files (unreadable files are skipped).

    ``needed_types`` / ``needed_columns``: the names the settings refer to. Without needed
    types only the header lines are read (the trial types stay empty). Reading stops as soon
    as every needed name has been seen: the checks only ask whether each exists in some file,
    and when one is missing every file is read, so the refusal lists them all.
    """
    want_types = bool(needed_types)
    types: set[str] = set()
    columns: set[str] = set()
    seen = set()
    for run in runs:
        if needed_types <= types and needed_columns <= columns:
            break
        path = getattr(run, "events", None)
        if path is None or path in seen:
            continue
        seen.add(path)
        try:
            if want_types:  # one read: every column name seen by usecols, the trial_type column parsed
                names: list[str] = []
                table = pd.read_csv(path, sep="\t", usecols=lambda c: names.append(str(c)) or c == "trial_type")  # noqa: B023 - called within the iteration
                columns.update(names)
                if "trial_type" in table.columns:
                    types.update(str(t) for t in table["trial_type"].dropna().unique())
            else:
                columns.update(map(str, pd.read_csv(path, sep="\t", nrows=0).columns))
        except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError):
            continue
    return types, columns


def _check_transforms(settings: Settings, columns: set[str]) -> list[str]:
    """Plugins must import; ``rtdur`` needs its response-time column in the events files."""
    problems = []
    where = f" (variant {settings.variant})" if settings.variant != "default" else ""
    for transform in settings.events.transforms:
        if transform == "rtdur":
            column = settings.events.rt_column
            if columns and column not in columns:
                match = close_match(column, columns)
                problems.append(f"[events] transform 'rtdur'{where} needs the response-time column {column!r}, "
                                f"which no events file has" + (f" (did you mean {match!r}?)" if match else "")
                                + f". Columns: {', '.join(sorted(columns))}; set rt_column / --rt-column")
        else:
            try:
                load_plugin(transform)
            except InputError as exc:
                problems.append(f"[events] transform{where}: {exc.message}")
    return problems


def _check_event_settings(settings: Settings, types: set[str]) -> list[str]:
    problems = []
    if not types:
        return problems
    where = f" (variant {settings.variant})" if settings.variant != "default" else ""
    for key, names in (("rename", list(settings.events.rename)), ("drop", list(settings.events.drop))):
        for name in names:
            if name not in types:
                match = close_match(name, types)
                problems.append(
                    f"[events] {key}: trial type {name!r} is in no events file{where}"
                    + (f" (did you mean {match!r}?)" if match else "")
                    + f". Trial types in the events files: {', '.join(sorted(types))}")
    return problems


def _rename_note(problem: str, rename: Mapping[str, str]) -> str:
    """Words naming the ``[events] rename`` entries whose old name a contrast problem quotes."""
    expression = problem.split(" = ", 1)[1] if " = " in problem else problem
    tokens = set(re.findall(r"[A-Za-z0-9_]+", expression.split(": ", 1)[0]))
    hits = [f"{old!r} is renamed to {new!r} by [events] rename (contrasts use the new name)"
            for old, new in rename.items() if str(old) in tokens]
    return ("; " + "; ".join(hits)) if hits else ""


def check_before_runs(runs: Sequence, config: Config) -> None:
    """Validate every variant's contrasts and event settings before any run is audited.

    Contrasts are parsed against the design of the first run whose inputs can be read
    (built exactly as for its audit); ``rename`` / ``drop`` trial types must appear in at
    least one events file. Runs with broken inputs are left to the audit (they get
    ``status: error`` there).

    Raises
    ------
    SettingsError
        Listing every problem found, each with the known names and a close match.
    """
    problems: list[str] = []
    variants = config.all_variants()
    # the events files are read here only for the settings that name trial types or columns
    needed_types = {str(n) for s in variants for n in (*s.events.rename, *s.events.drop)}
    needed_columns = {s.events.rt_column for s in variants
                      if s.stats_model is None and "rtdur" in s.events.transforms}
    types, columns = _events_facts(runs, needed_types, needed_columns)
    for settings in variants:
        problems += _check_event_settings(settings, types)
        if settings.stats_model is None:
            problems += _check_transforms(settings, columns)
    first = next((r for r in runs if r.error is None), None)
    contrast_problems: dict[str, tuple[list[str], str]] = {}  # problem -> (variants, known conditions)
    if first is not None:
        for settings in config.all_variants():
            if not settings.contrasts:
                continue
            try:
                prepared = prepare_run(first, settings)
            except InputError as exc:
                if exc.column is not None and exc.column == settings.events.rt_column:
                    problems.append(f"[events] rt_column {exc.column!r}{' (variant ' + settings.variant + ')' if settings.variant != 'default' else ''}: "
                                    f"{exc.message} in {first.events}")
                continue  # a broken first run: reported by its own audit
            except Exception:  # noqa: BLE001 - the audit reports its own failures
                continue
            where = f" in the design of {first.prefix}"
            for line in check_contrasts(settings.contrasts, prepared.built.design, prepared.built.roles, where):
                text, _, known = line.partition(". Known conditions: ")
                text += _rename_note(text, settings.events.rename)
                entry = contrast_problems.setdefault(text, ([], known))
                if settings.variant != "default":
                    entry[0].append(settings.variant)
    for text, (names, known) in contrast_problems.items():  # one line per typo, whatever the variants
        problems.append(text + (f" (variant{'s' if len(names) > 1 else ''} {', '.join(names)})" if names else "")
                        + f". Known conditions: {known}")
    if problems:
        unique = list(dict.fromkeys(problems))
        raise SettingsError("settings refused before any run was audited:\n  " + "\n  ".join(unique))
