"""Design diagnostics: pure functions of a design DataFrame and its context.

One module per family (collinearity, estimability, weights, baseline, drift,
confounds, rt, sensitivity). They never read files, never plot and keep no
state between calls; they return frozen dataclasses with their findings.
The integrator that runs them all is :func:`nbdiag.explain.audit_design`.
"""
