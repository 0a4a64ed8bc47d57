"""Data: finding, reading and caching datasets (:mod:`.idx`, :mod:`.folder`, :mod:`.cifar`), their
splits and checks (:mod:`.splits`), batches drawn on the device (:mod:`.batches`) and attributes
besides the class (:mod:`.attributes`).

``from ganbench.data import X`` keeps working for every name the single module held.
"""

from ganbench.data.batches import Batch, BatchSource, to_float, to_uint8
from ganbench.data.splits import DataRequest, DatasetSplits, check_splits, hold_out, load_dataset, resolved_spec

__all__ = [
    "Batch",
    "BatchSource",
    "DataRequest",
    "DatasetSplits",
    "check_splits",
    "hold_out",
    "load_dataset",
    "resolved_spec",
    "to_float",
    "to_uint8",
]
