"""One shim over py-libp2p 0.8's Kademlia stream handler: a peer closing its stream is an EOF.

The handler reads request after request from a stream until the reader returns ``b""``; a yamux
stream whose peer closed its side raises :class:`StreamEOF` instead, so every ordinary request
(py-libp2p's own clients close after one answer) ended in ``Failed to read DHT message from
stream:`` at WARNING and a reset stream. :func:`install` gives that handler a reader on which a
closed stream reads as ``b""`` (the varint reader then raises its clean-EOF error, or its
incomplete-message error mid-message, exactly as for any other transport). Idempotent.
"""

from __future__ import annotations

import libp2p.kad_dht.kad_dht as kad_dht_module
from libp2p.io.abc import Reader
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.utils.varint import read_varint_prefixed_bytes_limited


class _EOFAsEmpty(Reader):
    """A reader over ``stream`` on which a closed stream reads as ``b""``."""

    def __init__(self, stream: Reader) -> None:
        self._stream = stream

    async def read(self, n: int | None = None) -> bytes:
        try:
            data: bytes = await self._stream.read(n)
        except StreamEOF:
            return b""
        return data


async def _read_message(reader: Reader, max_length: int) -> bytes:
    return await read_varint_prefixed_bytes_limited(_EOFAsEmpty(reader), max_length)


def install() -> None:
    setattr(kad_dht_module, "read_varint_prefixed_bytes_limited", _read_message)  # noqa: B010
