"""What a reviewer reads first: verdict rows, merged findings, evidence tables, stated sizes.

Everything here rearranges numbers already in the run records (docs/record.md); nothing
is computed from data. Functions read typed records (:class:`nbdiag.record.model.RunRecord`,
a record given as JSON is read once by :func:`nbdiag.report.access.typed`) and return plain
dicts and lists for the templates. A finding's ``evidence`` is per-code detail, free-form JSON
in the record's schema: it is read as a mapping, each number in the unit its field name states.

* :func:`verdict_rows` — one row per run × variant × contrast: status, the top cause in
  one sentence with its number and unit, and whether that number rests on a measured or
  an assumed size.
* :func:`merge_findings` — one entry per finding (code + what it is about), listing every
  variant and contrast it holds for with their own numbers.
* :func:`evidence_rows` — a finding's evidence as a small table (name, value to 3
  significant digits, unit, threshold crossed and by how much), never raw JSON.
* :func:`size_basis` — where the size and the σ of a predicted bias come from.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

from nbdiag.core import codes
from nbdiag.core.jsonio import finite_number as _num
from nbdiag.core.labels import class_noun
from nbdiag.record.model import ContrastEntry, FindingRecord, RunRecord, SensitivityEntry
from nbdiag.report.access import Record, opt, settings_thresholds, typed
from nbdiag.report.svgplot import fmt_value

__all__ = ["verdict_rows", "merge_findings", "evidence_rows", "size_basis", "worst", "SEV_ORDER",
           "contrast_status", "key_number"]

#: Longest cause headline in the verdict table (the number that follows is never cut).
MAX_HEADLINE = 64
SEV_ORDER = {"pass": 0, "info": 1, "warn": 2, "fail": 3, "error": 4}
_NOISE_ASSUMED = "σ: SD of the estimate for 1 % white noise per scan (assumed)"


def worst(severities: Iterable[Any]) -> str:
    """Worst of ``severities`` on the one scale (``pass`` when empty)."""
    out = "pass"
    for s in severities:
        if s in SEV_ORDER and SEV_ORDER[s] > SEV_ORDER[out]:
            out = s
    return out


# --------------------------------------------------------------------------- sizes and σ
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s?%")


def _source_text(src: Any) -> str | None:
    if not src:
        return None
    s = str(src)
    if s.startswith("measured:"):
        return f"measured from the confounds column {s[len('measured:'):]}"
    if s == "assumed":
        return None
    return s


#: a predicted bias: a contrast's sensitivity entry, or the evidence of a finding about one (same field names)
Entry = SensitivityEntry | Mapping[str, Any]


def _field(entry: Entry | None, name: str) -> Any:
    """Field ``name`` of a sensitivity entry (typed) or of a finding's evidence (free-form), None when absent."""
    if entry is None:
        return None
    if isinstance(entry, SensitivityEntry):
        return opt(getattr(entry, name))
    return entry.get(name)


def size_basis(entry: Entry | None) -> dict[str, Any]:
    """Where a predicted bias's size and σ come from.

    ``entry``: a contrast's :class:`~nbdiag.record.model.SensitivityEntry`, or the evidence of a
    finding about one. Reads ``magnitude_source`` (``measured:<column>`` | ``assumed``) and ``sd_source`` when
    the record has them; otherwise the size is the assumed one in the signal's label and σ
    is the contrast SD for 1 % noise per scan (docs/record.md, sensitivity).

    Returns
    -------
    dict
        ``kind`` (``"measured"`` | ``"assumed"``), ``size`` (text), ``sigma`` (text).
    """
    label = str(_field(entry, "label") or "")
    m = _SIZE.search(label)
    measured = _source_text(_field(entry, "magnitude_source"))
    if measured:
        size = measured
        kind = "measured"
    else:
        size = f"assumed {m.group(1)} % signal" if m else "assumed size (see the signal's description)"
        if _field(entry, "source") == "nonsteady":
            size = "assumed T1 model" + (f" ({m.group(1)} % at the first volume)" if m else "")
        kind = "assumed"
    sd = _source_text(_field(entry, "sd_source"))
    noise = _num(_field(entry, "noise_sd_percent"))
    if sd:
        sigma = f"σ {sd}"
    elif noise is not None:
        sigma = f"σ for {fmt_value(_field(entry, 'noise_sd_percent'))} % noise per scan"
    else:
        sigma = _NOISE_ASSUMED
    return {"kind": kind, "size": size, "sigma": sigma}


# --------------------------------------------------------------------------- evidence
_THRESH = re.compile(r"(^|_)(warn|fail|info|threshold|min|max)(_|$)|_at$|^corr_")


def _is_threshold(key: Any) -> bool:
    """Whether evidence field ``key`` is a threshold (``warn_at``, ``vif_fail``, ``min_epochs`` ...), by its
    name; a ``measured_*`` field is a measured value even when its name says ``max``
    (``measured_max_bias_sd``: the largest measured bias)."""
    k = str(key)
    return bool(_THRESH.search(k)) and not k.startswith("measured_")
_SKIP = {"label", "source", "unit", "structural", "explained_by", "threshold_source", "typical", "pair"}


#: the unit of a number that is a fraction (0.25): shown ×100 with "%"
FRACTION = "fraction"


def _unit(key: str, evidence: Mapping[str, Any]) -> str:
    """The unit of evidence field ``key``, from its name only (never from its value).

    ``*_percent``, ``*_pct``, ``percent_*``: already in percent (``"%"``); ``*_fraction``,
    ``*_share``, ``fraction``, ``share``: a fraction of 1 (:data:`FRACTION`, shown ×100 as
    %); ``*_sd`` and ``*bias_sd*``: standard deviations (``"σ"``); ``bias``: the evidence's own
    ``unit``; ``*_s``, ``*seconds*``: s; ``*_hz``: Hz; anything else: no unit.
    """
    k = key.lower().rsplit(".", 1)[-1]
    words = k.split("_")
    if words[-1] in ("percent", "pct") or words[0] in ("percent", "pct"):
        return "%"
    if words[-1] in ("fraction", "share"):
        return FRACTION
    if words[-1] == "sd" or "bias_sd" in k:
        return "σ"
    if k == "bias":
        return str(evidence.get("unit") or "")
    if words[-1] in ("s", "seconds") or "seconds" in words:
        return "s"
    if words[-1] == "hz":
        return "Hz"
    return ""


def _show(v: Any, unit: str) -> str:
    """A number in its unit: a :data:`FRACTION` ×100 with "%", anything else as it is."""
    f = _num(v)
    if f is None:
        return str(v)
    if unit == FRACTION:
        return fmt_value(f * 100) + " %"
    return fmt_value(f) + (f" {unit}" if unit else "")


def _show_setting(v: float, unit: str) -> str:
    """A threshold as configured (exact, no padding zeros), in the unit of the value it bounds."""
    if unit == FRACTION:
        return f"{v * 100:g} %"
    return f"{v:g}" + (f" {unit}" if unit else "")


def _threshold_for(evidence: Mapping[str, Any], severity: str | None) -> tuple[str, float] | None:
    keys = [k for k, v in evidence.items() if _is_threshold(k) and _num(v) is not None]
    if not keys:
        return None
    for word in ([severity] if severity in ("fail", "warn", "info") else []) + ["threshold", "warn", "fail", "info",
                                                                               "min", "max"]:
        for k in keys:
            if word and word in str(k):
                return k, float(evidence[k])
    return keys[0], float(evidence[keys[0]])


def _registry_threshold(code: Any, severity: Any, ev: Mapping[str, Any],
                        thresholds: Mapping[str, Any] | None) -> tuple[str | None, tuple[str, float]] | None:
    """(main evidence key, (threshold key, value)) from the registry's thresholds of ``code``."""
    if not code or not thresholds:
        return None
    try:
        keys = list(codes.get(str(code)).thresholds)
    except Exception:  # noqa: BLE001 - unknown code: no registry threshold
        return None
    keys = [k for k in keys if _num(thresholds.get(k)) is not None]
    if _num(ev.get("bias_sd")) is not None and "sensitivity_warn" in keys:
        k = "sensitivity_fail" if severity == "fail" and "sensitivity_fail" in keys else "sensitivity_warn"
        return "bias_sd", (k, float(thresholds[k]))
    cands = [k for k in keys if severity and str(severity) in k] or [k for k in keys if "warn" in k]
    generic = {"warn", "fail", "info", "min", "max", "weight"}
    for k in cands:
        words = set(k.split("_")) - generic
        words |= {"r"} if "corr" in words else set()
        for key, v in ev.items():  # the evidence value the threshold is about (shares a word with it)
            if _num(v) is not None and not _is_threshold(key) and words & set(str(key).split("_")):
                return key, (k, float(thresholds[k]))
    return None


def _row(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value, "unit": "", "threshold": "", "margin": ""}


def _nested_rows(key: str, v: Mapping[str, Any]) -> list[dict[str, str]]:
    """``parent.key`` rows of a nested object's numbers (each in the unit its own name states)."""
    return [_row(f"{key}.{k2}", _show(v2, _unit(k2, v))) for k2, v2 in v.items()
            if _num(v2) is not None and not _is_threshold(k2)]


def _list_rows(key: str, v: list[Any]) -> list[dict[str, str]]:
    """One row per signal entry (its bias in σ), or the list shortened to text."""
    if v and all(isinstance(x, Mapping) for x in v):
        return [_row(f"{key}: {x.get('source', '')}", _show(x.get("bias_sd"), "σ")) for x in v[:6]
                if _num(x.get("bias_sd")) is not None]
    text = ", ".join(str(x) for x in v[:12]) + (" …" if len(v) > 12 else "")
    return [_row(key, text or "none")]


def _crossed(row: dict[str, str], key: str, f: float, unit: str, thr: tuple[str, float]) -> None:
    """Add the threshold the main number crossed and the margin, both in the number's unit."""
    tk, tv = thr
    # a threshold whose name states its unit is shown in it, else in the unit of the value it bounds;
    # a margin only between numbers of one unit
    t_unit = _unit(tk, {}) or unit
    row["threshold"] = f"{tk} {_show_setting(tv, t_unit)}"
    if t_unit != unit:
        return
    diff = abs(f) - tv if "bias_sd" in key or key == "r" else f - tv
    if unit in (FRACTION, "%"):
        row["margin"] = f"{diff * (100 if unit == FRACTION else 1):+.3g} points"
    else:
        row["margin"] = f"{fmt_value(diff) if diff < 0 else '+' + fmt_value(diff)}{(' ' + unit) if unit else ''}"
        if tv:
            row["margin"] += f" (×{abs(f) / abs(tv):.2g})"


def evidence_rows(evidence: Mapping[str, Any] | None, severity: str | None = None, code: str | None = None,
                  thresholds: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
    """A finding's evidence as table rows: ``name``, ``value``, ``unit``, ``threshold``, ``margin``.

    The main number (the first that is not itself a threshold, or the bias in σ) carries
    the threshold the finding crossed and the margin by which it crossed it: a threshold
    named in the evidence (``warn_at``, ``fraction_warn``, ``threshold`` ...), else the
    registry's threshold for ``code`` (:mod:`nbdiag.core.codes`) with its value from the
    record's ``settings.thresholds``. Nested objects become ``parent.key`` rows; lists of
    signal entries become one row per signal; other lists are shortened to text. Every number
    is shown in the unit its field name states (:func:`_unit`), never one guessed from its size.
    """
    ev = dict(evidence or {})
    rows: list[dict[str, str]] = []
    thr = _threshold_for(ev, severity)
    main_key = None
    if thr is None:
        reg = _registry_threshold(code, severity, ev, thresholds)
        if reg is not None:
            main_key, thr = reg
    main_done = False
    for key, v in ev.items():
        if key in _SKIP or (thr and key == thr[0]) or _is_threshold(key):
            continue
        if isinstance(v, Mapping):
            rows += _nested_rows(key, v)
            continue
        if isinstance(v, list):
            rows += _list_rows(key, v)
            continue
        if isinstance(v, bool) or v is None:
            rows.append(_row(key, "yes" if v else ("no" if v is False else "n/a")))
            continue
        f = _num(v)
        if f is None:
            rows.append(_row(key, str(v)[:120]))
            continue
        unit = _unit(key, ev)
        row = _row(key, _show(f, unit))
        if thr is not None and not main_done and (main_key is None or key == main_key):
            _crossed(row, key, f, unit, thr)
            main_done = True
        rows.append(row)
    return rows


def key_number(f: FindingRecord, thresholds: Mapping[str, Any] | None = None) -> str:
    """The one number that best states a finding (bias in σ, else its main evidence value)."""
    ev = f.evidence
    b = _num(ev.get("bias_sd"))
    if b is None:
        sens = ev.get("sensitivity")
        if isinstance(sens, list) and sens and isinstance(sens[0], Mapping):
            b = _num(sens[0].get("bias_sd"))
    if b is not None:
        return ("+" if b > 0 else "") + f"{fmt_value(b)} σ"
    rows = evidence_rows(ev, f.severity, f.code, thresholds)
    numbers = [r for r in rows if any(ch.isdigit() for ch in r["value"])]
    # the crossed threshold's value, else a bias in σ (``measured_max_bias_sd``), else the first number
    main = next((r for r in rows if r["threshold"]), None) or next(
        (r for r in numbers if _unit(r["name"], ev) == "σ"), None) or next(iter(numbers), None)
    if main is None:
        return ""
    return f"{main['name']} {main['value']}" + (f" ({main['threshold']})" if main["threshold"] else "")


# --------------------------------------------------------------------------- verdict
def _findings(record: Record, contrast: str | None) -> list[FindingRecord]:
    mine = [f for f in record.findings if f.contrast == contrast]
    entry = (opt(record.contrasts) or {}).get(contrast) if contrast else None
    pos = {code: i for i, code in enumerate(entry.findings if entry is not None else ())}
    return sorted(mine, key=lambda f: (pos.get(f.code, len(pos)), -SEV_ORDER.get(f.severity, 0)))


def contrast_status(record: Record | Mapping[str, Any], contrast: str) -> str:
    """Worst severity of the findings about ``contrast`` (``pass`` when none)."""
    return worst(f.severity for f in _findings(typed(record), contrast))


def _sensitivity_entry(c: ContrastEntry | None, source: Any) -> SensitivityEntry | None:
    for s in (opt(c.sensitivity) or ()) if c is not None else ():
        if s.source == source:
            return s
    return None


def _first_signal(ev: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first signal entry of a finding's evidence ``sensitivity`` list, if it has one."""
    sens = ev.get("sensitivity")
    if isinstance(sens, list) and sens and isinstance(sens[0], Mapping):
        return sens[0]
    return None


def _bias_of(top: FindingRecord, c: ContrastEntry) -> tuple[float | None, float | None, str, Entry | None]:
    """(bias in σ, bias in its unit, the unit, the sensitivity entry) that a finding states."""
    ev = top.evidence
    entry: Entry | None = None
    b = _num(ev.get("bias_sd"))
    bias, unit = _num(ev.get("bias")), ev.get("unit") or ""
    first = _first_signal(ev)
    if b is not None:
        src = ev.get("source")
        if src is None and first is not None:
            src = first.get("source")
            bias = bias if bias is not None else _num(first.get("bias"))
        entry = _sensitivity_entry(c, src) or ev
        unit = unit or _field(entry, "unit") or ""
    elif first is not None:
        b = _num(first.get("bias_sd"))
        bias = _num(first.get("bias"))
        entry = _sensitivity_entry(c, first.get("source")) or first
        unit = _field(entry, "unit") or unit
    return b, bias, unit, entry


_MEASURED_BASIS = {"kind": "measured", "size": "measured in the run's global signal", "sigma": "residual of global_signal"}


def _finding_cause(record: Record, top: FindingRecord, c: ContrastEntry, n_found: int) -> dict[str, Any]:
    """The verdict of a contrast from its top finding: its number in its unit and what that rests on."""
    b, bias, unit, entry = _bias_of(top, c)
    title = _headline(top, short=True)
    mb, msd = _num(_field(entry, "measured_bias_percent")), _num(_field(entry, "measured_bias_sd"))
    if b is not None and _field(entry, "severity_basis") == "measured_part" and mb is not None and msd is not None:
        verb = "lowers" if mb < 0 else "inflates"
        mt = _num(_field(entry, "measured_t"))
        sentence = (f"{title}: measured, it {verb} it by {fmt_value(abs(msd))} σ ({fmt_value(abs(mb))} % signal"
                    + (f", t = {fmt_value(mt)}" if mt is not None else "") + ").")
        basis = dict(_MEASURED_BASIS)
    elif b is not None:
        verb = "lowers" if b < 0 else "inflates"
        pct = _num(_field(entry, "bias_percent"))
        size = f" ({fmt_value(abs(pct))} % signal)" if pct is not None else (
            f" ({fmt_value(abs(bias))} {unit})" if bias is not None and unit else "")
        if _field(entry, "hypothesis"):
            sentence = (f"{title}: if the data held the assumed size, it would {verb[:-1]} it by "
                        f"{fmt_value(abs(b))} σ{size}.")
        else:
            sentence = f"{title}: {verb} it by {fmt_value(abs(b))} σ{size}."
        basis = size_basis(entry)
    else:
        num = key_number(top, settings_thresholds(record))
        sentence = f"{title}" + (f": {num}." if num else ".")
        basis = {"kind": "exact", "size": "computed from the design", "sigma": ""}
    return {"severity": top.severity or "info", "code": top.code, "sentence": sentence,
            "full": str(top.message or sentence), "basis": basis, "n_more": n_found - 1}


def _cause(record: Record, name: str, c: ContrastEntry) -> dict[str, Any]:
    """The verdict of contrast ``name``: its top finding, else what was measured, else the largest bias."""
    fnd = _findings(record, name)
    ranked = [f for f in fnd if SEV_ORDER.get(f.severity, 0) >= SEV_ORDER["warn"]] or fnd
    if ranked:
        return _finding_cause(record, ranked[0], c, len(fnd))
    # no finding: say so, with what the run's global signal measured (issue 20), else the largest predicted bias
    answer = measured_sentence(c)
    if answer:
        return {"severity": "pass", "code": None, "sentence": answer, "basis": dict(_MEASURED_BASIS), "n_more": 0}
    sens = [s for s in (opt(c.sensitivity) or ()) if _num(s.bias_sd) is not None]
    if sens:
        s = max(sens, key=lambda s: abs(float(s.bias_sd)))
        return {"severity": "pass", "code": None,
                "sentence": f"No cause found; the largest predicted bias ({s.source}) is "
                            f"{float(s.bias_sd):+.3g} σ.",
                "basis": size_basis(s), "n_more": 0}
    return {"severity": "pass", "code": None, "sentence": "No finding.",
            "basis": {"kind": "exact", "size": "", "sigma": ""}, "n_more": 0}


def measured_sentence(c: ContrastEntry, distinct_t: float = 3.0, material_sd: float = 0.5) -> str:
    """The verdict from a contrast's measured global signal, or "" when nothing was measured: the cause
    parts distinguishable from zero (``|t| >= 3``, docs/record.md) and at least ``material_sd`` (the
    warn size) times the estimate's SE, else that no cause explains it."""
    gs = (opt(c.measured) or {}).get("global_signal")
    if gs is None or gs.in_model or _num(opt(gs.estimate_ols)) is None:
        return ""
    parts, kinds, ts = opt(gs.by_class) or {}, opt(gs.by_class_kind) or {}, opt(gs.by_class_t) or {}
    if not kinds:
        return ""
    se = _num(opt(gs.se))
    floor = material_sd * se if se is not None else 0.0
    causes = sorted(((k, float(v), float(ts[k])) for k, v in parts.items() if kinds.get(k) == "cause"
                     and _num(v) is not None and _num(ts.get(k)) is not None and abs(float(ts[k])) >= distinct_t
                     and abs(float(v)) >= floor),
                    key=lambda x: -abs(x[1]))
    total, tt = float(gs.estimate_ols), _num(opt(gs.t))
    head = f"Global signal {fmt_value(total)} %" + (f" (t = {fmt_value(tt)})" if tt is not None else "")
    if causes:
        return head + ": " + "; ".join(f"{class_noun(k)} {fmt_value(v)} % (t = {fmt_value(t)})"
                                       for k, v, t in causes) + "."
    if tt is not None and abs(tt) >= distinct_t:
        return head + ": no cause in the design explains it; it comes from the conditions themselves."
    return head + ": not distinguishable from zero; no cause found."


def _prefix(rec: Record) -> str:
    return str(rec.run.prefix or "unknown-run")


def _run_status(rec: Record) -> str:
    return rec.status if rec.status in SEV_ORDER else "error"


def _error_row(rec: Record, where: dict[str, Any]) -> dict[str, Any]:
    error = opt(rec.error) if isinstance(rec, RunRecord) else None
    msg = (error.message if error is not None else None) or "the run could not be audited"
    return {**where, "contrast": "—", "status": "error", "sentence": f"Could not be audited: {msg}",
            "basis": {"kind": "error", "size": "", "sigma": ""}, "code": None, "n_more": 0}


def _no_contrast_row(rec: Record, where: dict[str, Any]) -> dict[str, Any]:
    run_f = _findings(rec, None)
    top = next((f for f in run_f if SEV_ORDER.get(f.severity, 0) >= 2), run_f[0] if run_f else None)
    return {**where, "contrast": "—", "status": _run_status(rec),
            "sentence": (str(top.title) + ": " + key_number(top)) if top else "No contrast requested.",
            "basis": {"kind": "exact", "size": "", "sigma": ""}, "code": top.code if top else None, "n_more": 0}


def _whole_run_row(rec: Record, where: dict[str, Any], mine: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A run-level finding worse than every contrast's (e.g. an ill-conditioned design) gets its own row."""
    run_f = sorted(_findings(rec, None), key=lambda f: -SEV_ORDER.get(f.severity, 0))
    if not run_f:
        return None
    top = run_f[0]
    sev = SEV_ORDER.get(top.severity, 0)
    if sev <= max(SEV_ORDER[r["status"]] for r in mine) or sev < SEV_ORDER["warn"]:
        return None
    num = key_number(top, settings_thresholds(rec))
    return {**where, "contrast": "whole run", "status": top.severity, "code": top.code,
            "sentence": f"{_headline(top)}" + (f": {num}." if num else "."),
            "basis": {"kind": "exact", "size": "computed from the design", "sigma": ""},
            "n_more": sum(1 for f in run_f if SEV_ORDER.get(f.severity, 0) >= 2) - 1}


def verdict_rows(records: Sequence[Record | Mapping[str, Any]], section_id: Any) -> list[dict[str, Any]]:
    """One row per run × variant × contrast (records in report order).

    ``section_id(prefix, variant)`` gives the anchor of the run × variant's details.
    Error records give one row with the error message.
    """
    recs = [typed(r) for r in records]
    rows = []
    for rec in recs:
        prefix, variant = _prefix(rec), str(rec.variant)
        where = {"prefix": prefix, "variant": variant, "anchor": section_id(prefix, variant)}
        if _run_status(rec) == "error":
            rows.append(_error_row(rec, where))
            continue
        contrasts = opt(rec.contrasts) or {}
        if not contrasts:
            rows.append(_no_contrast_row(rec, where))
            continue
        mine = []
        for name, c in contrasts.items():
            cause = _cause(rec, name, c)
            mine.append({**where, "contrast": name, "status": cause["severity"] if cause["code"] else "pass", **cause})
        whole = _whole_run_row(rec, where, mine)
        rows.extend(([whole] if whole is not None else []) + mine)
    status = {(_prefix(r), str(r.variant)): _run_status(r) for r in recs}
    for row in rows:
        row["run_status"] = status.get((row["prefix"], row["variant"]), "error")
    return rows


# --------------------------------------------------------------------------- merged findings
def _about(f: FindingRecord) -> str:
    ev = f.evidence
    if f.code == codes.SENSITIVE_UNMODELED_SIGNAL.code:
        return str(ev.get("source") or "")
    if f.code == codes.CORRELATION_HIGH.code:
        return " × ".join(map(str, ev.get("columns") or []))
    return ""


def _headline(f: FindingRecord, short: bool = False) -> str:
    ev = f.evidence
    if f.code == codes.SENSITIVE_UNMODELED_SIGNAL.code and short and ev.get("source"):
        return f"Unmodelled signal ({ev.get('source')})"
    if f.code == codes.SENSITIVE_UNMODELED_SIGNAL.code and ev.get("label"):
        return f"Sensitive to an unmodelled signal: {ev.get('label')}"
    title = str(f.title or f.code)
    c = f.contrast
    if c and title.startswith(f"{c} "):
        title = title[len(c) + 1:]
        title = title[:1].upper() + title[1:]
    elif short and c and str(c) in title:  # the contrast is already in its column: the generic title
        title = _registry_title(str(f.code)) or title
    if short and len(title) > MAX_HEADLINE:
        title = title[: MAX_HEADLINE - 1].rstrip() + "…"
    return title


def _registry_title(code: str) -> str | None:
    try:
        return codes.get(code).title
    except Exception:  # noqa: BLE001 - registry absent or code unknown: keep the finding's own title
        return None


def _capped(entry: SensitivityEntry | None, severity: str, rec: Record) -> str | None:
    """Why an ``info`` place whose bias reaches the warn size does not count, or None.

    The page says it beside the number, so status and number agree: a signal present in every
    run (not structural), a size the run's own global signal does not show (its measured part is
    not distinguishable from zero), or an assumed size with nothing measured (a hypothesis).
    """
    if entry is None or severity != "info":
        return None
    b = _num(entry.bias_sd)
    warn = _num(settings_thresholds(rec).get("sensitivity_warn"))
    if b is None or abs(b) < (warn if warn is not None else 0.5):
        return None
    if entry.structural is False:
        return "present in every run, not specific to this design"
    t = _num(opt(entry.measured_t))
    if entry.severity_basis == "measured_part" and t is not None:
        return f"not seen in this run's global signal (t = {t:.1f})"
    if str(entry.magnitude_source or "assumed") == "assumed":
        return "a hypothesis: size assumed, not measured"
    return None


def _place(rec: Record, f: FindingRecord, sev: str) -> dict[str, Any]:
    """Where a finding holds (variant, contrast or ``whole run``), with its number and what it rests on."""
    c = f.contrast
    ev = f.evidence
    src = ev.get("source")
    first = _first_signal(ev)
    has_bias = _num(ev.get("bias_sd")) is not None
    if first is not None:
        src = src or first.get("source")
        has_bias = has_bias or _num(first.get("bias_sd")) is not None
    entry = _sensitivity_entry((opt(rec.contrasts) or {}).get(c), src) if c else None
    basis = size_basis(entry or ev) if has_bias else None
    return {"variant": str(rec.variant), "contrast": c if c is not None else "whole run",
            "severity": sev, "number": key_number(f, settings_thresholds(rec)),
            "basis": basis, "capped": _capped(entry, sev, rec)}


def merge_findings(records: Sequence[Record | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per finding of a run, across its variants and contrasts.

    Findings are the same finding when their code and what they are about (the signal
    source, the column pair) agree. Each entry lists where it holds (variant, contrast or
    ``whole run``, severity, key number, basis) and shows the evidence of its worst
    instance as a table. Entries are ordered worst first, then by how many places they
    hold.
    """
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in map(typed, records):
        for f in rec.findings:
            key = (str(f.code), _about(f))
            e = merged.get(key)
            if e is None:
                e = merged[key] = {"code": key[0], "about": key[1], "headline": _headline(f),
                                   "message": f.message, "fix": f.fix, "places": [],
                                   "severity": "info", "_best": f}
            e.setdefault("_titles", set()).add(_headline(f))
            sev = f.severity if f.severity in SEV_ORDER else "info"
            e["places"].append(_place(rec, f, sev))
            if SEV_ORDER[sev] > SEV_ORDER[e["severity"]] or "_thresholds" not in e:
                e["_thresholds"] = settings_thresholds(rec) if isinstance(rec, RunRecord) else None
            if SEV_ORDER[sev] > SEV_ORDER[e["severity"]]:
                e["severity"] = sev
                e["_best"] = f
                e["message"], e["fix"] = f.message, f.fix or e["fix"]
    out = []
    for e in merged.values():
        best = e.pop("_best")
        if len(e.pop("_titles", ())) > 1:  # titles carry per-instance numbers: use the registry's title
            e["headline"] = _registry_title(e["code"]) or e["headline"]
        e["evidence"] = evidence_rows(best.evidence, best.severity, best.code, e.pop("_thresholds", None))
        e["variants"] = sorted({p["variant"] for p in e["places"]})
        e["contrasts"] = sorted({p["contrast"] for p in e["places"]})
        out.append(e)
    out.sort(key=lambda e: (-SEV_ORDER[e["severity"]], -len(e["places"]), e["code"], e["about"]))
    return out
