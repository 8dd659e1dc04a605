"""The child :mod:`bench.reader` measures the reader's peak RSS in: a data tool's process, which
imports :mod:`datasov.fsspec` and nothing of the benchmark (``bench.reader`` itself imports the
embedded chain and the node stack: 243 MiB of RSS before a byte is read, which is what its
"reader peak RSS" measured until this module).

    python -m bench.reader_rss HOME LICENSE_ID PASSPHRASE

Streams every file of the dataset through ``datasov://`` in 1 MiB reads and prints one JSON line:
bytes read, this process's peak RSS after the imports, after opening the reader (the listing) and
at the end (``VmHWM``), in MiB.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MiB = 1 << 20


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main() -> None:
    home, license_id, secret = sys.argv[1], sys.argv[2], sys.argv[3]
    from datasov.fsspec import DatasovFileSystem

    imported = peak_rss_mib()
    fs = DatasovFileSystem(home=home, passphrase=secret, skip_instance_cache=True)
    total = 0
    try:
        paths = fs.find(license_id)
        opened = peak_rss_mib()
        for path in paths:
            with fs.open(path) as f:
                while chunk := f.read(MiB):
                    total += len(chunk)
    finally:
        fs.close()
    out = {"bytes": total, "imported_mib": imported, "opened_mib": opened, "peak_rss_mib": peak_rss_mib()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
