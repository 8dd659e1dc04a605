"""An operator's daemon does not load the test EVM: importing the node pulls in neither eth-tester
nor py-evm (they are the embedded dev chain's, :mod:`contracts.devchain`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
import {module}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("eth_tester", "eth"))))
"""


@pytest.mark.parametrize("module", ["storage_node.node", "storage_node.prover", "contracts.chain", "market.key_agent"])
def test_importing_does_not_load_the_dev_chain(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == []
