"""An iterable over a licensed dataset's files that splits them across data-loader workers.

It has the shape of a ``torch.utils.data.IterableDataset`` without depending on torch: make it
one with ``class Files(DatasetFiles, torch.utils.data.IterableDataset): pass`` and hand it to a
``DataLoader(Files("datasov://1/*.jpg", storage_options=opts), num_workers=4)``. In each worker,
:meth:`DatasetFiles.__iter__` asks ``torch.utils.data.get_worker_info()`` (when torch is
importable) which worker it is, and yields only every ``num_workers``-th file from its own
position, so no two workers read the same file and together they read each once. Each worker
process opens its own ``datasov://`` filesystem (fsspec instances are rebuilt from their options
after pickling), hence its own reader and connections.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import fsspec

WorkerInfo = Callable[[], tuple[int, int]]
"""Returns ``(worker id, number of workers)`` for the calling worker."""


def torch_worker() -> tuple[int, int]:
    """This process's place among torch's loader workers; ``(0, 1)`` outside them or without torch."""
    if importlib.util.find_spec("torch") is None:
        return 0, 1
    from torch.utils.data import get_worker_info  # type: ignore[import-not-found,unused-ignore]

    info = get_worker_info()
    return (0, 1) if info is None else (int(info.id), int(info.num_workers))


class DatasetFiles:
    """``(path, bytes)`` of every file matching ``url`` (a ``datasov://LICENSE/glob``), in sorted order,
    this worker's share only; ``transform`` turns each into a training sample."""

    def __init__(
        self,
        url: str,
        *,
        storage_options: dict[str, Any] | None = None,
        transform: Callable[[str, bytes], Any] | None = None,
        worker: WorkerInfo = torch_worker,
    ) -> None:
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.transform = transform
        self.worker = worker

    def paths(self) -> list[str]:
        fs, _, _ = fsspec.get_fs_token_paths(self.url, storage_options=self.storage_options)
        return sorted(fs.glob(self.url))

    def __iter__(self) -> Iterator[Any]:
        fs, _, _ = fsspec.get_fs_token_paths(self.url, storage_options=self.storage_options)
        me, workers = self.worker()
        for path in self.paths()[me::workers]:
            data = fs.cat_file(path)
            yield (path, data) if self.transform is None else self.transform(path, data)
