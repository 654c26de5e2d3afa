"""The per-run record: its builder (``build``) and its typed summary (``types``).
"""
