"""Stage 1, the design nilearn would fit: the matrix (``matrix``), its contrasts, the HRF and
task-part regressors, and the read-only per-run context the diagnostics take.
"""
