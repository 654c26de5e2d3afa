"""Findings -> ranked, plain-language explanations per contrast, and what-if fixes.

:func:`nbdiag.explain.audit.audit_design` is the integrator: it runs every
diagnostic of :mod:`nbdiag.diagnostics` on one design, attributes run-level
causes to the contrasts they bias (:mod:`nbdiag.explain.attribution`) and
re-audits the design after design-level fixes (:mod:`nbdiag.explain.whatif`).
"""

from nbdiag.explain.audit import DesignAudit, audit_design

__all__ = ["DesignAudit", "audit_design"]
