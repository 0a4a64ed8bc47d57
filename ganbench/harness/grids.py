"""Sample grids: PNG pictures of a variant's samples, one labelled row per class (the
drawing lives in :mod:`ganbench.pictures`, public for plugins)."""

from __future__ import annotations

from ganbench.pictures import grid_png as sample_grid_png

__all__ = ["sample_grid_png"]
