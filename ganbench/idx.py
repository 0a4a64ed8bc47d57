"""Alias of :mod:`ganbench.data.idx` (the import path docs/plugins.md promises): the same module
object, so that names set on one are seen through the other."""

import sys

from ganbench.data import idx as _module

sys.modules[__name__] = _module
