"""nbdiag: audit nilearn first-level GLM designs before fitting them."""

from nbdiag._version import __version__

__all__ = ["__version__"]
