"""The foundation: leaf modules every stage may import (errors, thresholds, limits, the finding
registry and type, JSON conversion, nilearn compatibility). Nothing here imports another nbdiag package.
"""
