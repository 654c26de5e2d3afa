"""The participant level: the per-run loop (``pipeline``), the ``--work-dir`` resume cache
(``workdir``), checks before any run (``preflight``) and the parallel runner (``runner``).
"""
