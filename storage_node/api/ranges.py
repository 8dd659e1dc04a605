"""HTTP Range requests over a share (RFC 9110 section 14): one ``bytes=`` range, no multipart."""

from __future__ import annotations

import re

from ..errors import RangeNotSatisfiable

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$", re.ASCII | re.IGNORECASE)


def byte_range(header: str | None, size: int) -> tuple[int, int]:
    """The half-open span ``[start, stop)`` of a share of ``size`` bytes that ``header`` asks for.

    No header: the whole share. ``bytes=a-b`` (b inclusive, clipped to the share), ``bytes=a-``,
    and the suffix ``bytes=-n`` (the last n bytes, all of them if n >= size) are understood.
    Anything else, a start at or past the end, ``b < a``, or the empty suffix ``bytes=-0``
    raises :class:`RangeNotSatisfiable`, which answers 416 with ``Content-Range: bytes */size``.
    """
    if header is None:
        return 0, size
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeNotSatisfiable(f"unsupported Range {header[:80]!r}", size=size)
    first, last = match.group(1), match.group(2)
    if first == "":  # suffix: the last n bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable("an empty suffix range (bytes=-0) selects nothing", size=size)
        return max(0, size - n), size
    start = int(first)
    stop = size if last == "" else min(int(last) + 1, size)
    if start >= size or stop <= start:
        raise RangeNotSatisfiable(f"range {header[:80]!r} is outside the share's {size} bytes", size=size)
    return start, stop
