"""A streaming publisher opens its deal for the share size before encoding: the plan must be exact."""

from __future__ import annotations

import dataclasses
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure import envelope, pipeline
from erasure.errors import ErasureError, ParameterError


@given(
    size=st.integers(min_value=0, max_value=70_000),
    k=st.integers(min_value=1, max_value=4),
    extra=st.integers(min_value=1, max_value=3),
    message_size=st.sampled_from([1000, 4096, 65_536 - 16]),
)
def test_planned_share_size_is_what_encode_writes(size: int, k: int, extra: int, message_size: int) -> None:
    layout = pipeline.Layout(k=k, n=k + extra, block_size=4096, leaf_size=1024, message_size=message_size)
    sinks = [io.BytesIO() for _ in range(layout.n)]
    result = pipeline.encode([bytes(size)], sinks, key=envelope.new_data_key(), layout=layout)
    assert pipeline.planned_share_size(size, layout) == result.manifest.share_size
    assert all(len(s.getvalue()) == result.manifest.share_size for s in sinks)


def test_the_same_header_salt_and_key_rebuild_identical_shares() -> None:
    layout = pipeline.Layout(k=2, n=4, block_size=4096, leaf_size=1024)
    key, data = envelope.new_data_key(), bytes(range(256)) * 100
    first = [io.BytesIO() for _ in range(4)]
    man = pipeline.encode([data], first, key=key, layout=layout).manifest
    again = [io.BytesIO() for _ in range(4)]
    same = dataclasses.replace(layout, scheme=man.encryption.scheme)  # the AEAD is chosen by measurement
    redo = pipeline.encode([data], again, key=key, salt=man.salt, layout=same, header=man.encryption.header).manifest
    assert redo == man
    assert [s.getvalue() for s in again] == [s.getvalue() for s in first]


def test_version_1_has_no_plan() -> None:
    with pytest.raises(ParameterError):
        pipeline.planned_share_size(10, pipeline.Layout(version=1))


def test_the_preferred_codec_is_isal_where_installed_and_codes_the_layout() -> None:
    try:
        pipeline.Layout(codec="isal", k=3, n=10).make_codec()
        installed = True
    except ErasureError:
        installed = False
    assert pipeline.preferred_codec(3, 10) == ("isal" if installed else "zfec")
    assert pipeline.preferred_codec(11, 10) == "zfec"  # a layout ISA-L refuses: zfec says why
