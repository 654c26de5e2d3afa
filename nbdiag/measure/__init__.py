"""BOLD mode (``--measure bold``): reading the run's images chunk by chunk (``images``), the effect
maps of the measured cause parts (``effect_maps``) and the per-run driver that writes them (``bold``).
"""
