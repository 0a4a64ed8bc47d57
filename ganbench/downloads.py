"""Downloads that may hang: a default socket timeout for libraries that set none."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

DOWNLOAD_TIMEOUT_S = 30


@contextmanager
def socket_timeout(seconds: float = DOWNLOAD_TIMEOUT_S) -> Iterator[None]:
    """A default socket timeout for downloads that set none (torchvision's, torch.hub's)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
