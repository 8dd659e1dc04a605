"""``datasov publish --help`` imports neither the publisher nor the node client (web3, aiohttp):
they are imported when a publish runs."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, runpy, sys
sys.argv = ["datasov", "publish", "--help"]
code = 0
try:
    runpy.run_module("datasov", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
heavy = ("market.publisher", "storage_node.client", "web3", "aiohttp")
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}), file=sys.stderr)
"""


def test_publish_help_imports_no_publisher_web3_or_aiohttp() -> None:
    cmd = [sys.executable, "-c", PROBE]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "loaded": []}
    assert "datasov publish ./my-corpus" in proc.stdout  # the help with its example
