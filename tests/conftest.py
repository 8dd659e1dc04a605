import os
from typing import Any

import nacl.pwhash
import pytest
from hypothesis import HealthCheck, settings

from market import keystore

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Keystores made in this process derive their key with argon2id at its minimum cost: the suite makes and
# opens hundreds (each CLI command opens its home's: 33 derivations, 14 s of test_owner_and_lab's profile
# at load ~20), and none of its tests is about the cost. A keystore records its limits, so one made by a
# new process (the product's: PRODUCT_KDF, checked by tests/market/test_keystore.py) opens here as made.
PRODUCT_KDF = (keystore.OPSLIMIT, keystore.MEMLIMIT)
keystore.OPSLIMIT, keystore.MEMLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN

# Test files that share one expensive session fixture run as one xdist work unit under
# `--dist loadfile` (make pytest), so one worker builds it once instead of each worker its own:
# the `datasov devnet up --in-process` of tests/cli/conftest.py costs ~9 CPU-seconds to start and
# keeps ~0.07 of a core busy while it lives (figures in docs/test-suite.md). tests/test_scheduling.py
# checks that every file using the fixture is listed.
SHARED_SESSION_FIXTURES = {
    "devnet": (
        "tests/cli/test_guardians_cli.py",
        "tests/cli/test_light_commands.py",
        "tests/cli/test_market_flows.py",
        "tests/cli/test_operator.py",
        "tests/cli/test_owner_and_lab.py",
        "tests/cli/test_pools.py",
        "tests/cli/test_read.py",
    ),
}
_SCOPE_OF = {
    path: f"shared session fixture {name}" for name, paths in SHARED_SESSION_FIXTURES.items() for path in paths
}


# The work units that take longest (seconds of one worker: per-file sums of a full `-n 2` run at load 1-5,
# docs/test-suite.md; the demo, the six-node test and test_security scaled by round 9's cuts of each), handed
# out first, longest first: xdist's own order (most tests first) left a file of a few long tests (the
# browser's, the reader's) to the end of a run, when the other worker had nothing left to do. Units not
# listed follow in xdist's order. tests/test_scheduling.py checks that each one is still a unit.
LONGEST_UNITS = {
    "shared session fixture devnet": 147,
    "tests/e2e/test_fetch_sizes.py": 65,
    "tests/faults/test_proofs_and_repair.py": 44,
    "tests/e2e/test_network_processes.py": 41,
    "tests/market/test_pool_properties.py": 38,
    "tests/test_cli_demo.py": 37,
    "tests/e2e/test_flows.py": 36,
    "tests/market/test_delivery.py": 35,
    "tests/market/test_operator_lifecycle.py": 32,
    "tests/market/test_licensing.py": 30,
    "tests/market/test_storage_market.py": 30,
    "tests/market/test_proof_replay.py": 28,
    "tests/e2e/test_web_browser.py": 28,
    "tests/market/test_deal_faults.py": 26,
    "tests/e2e/test_receipt_exports.py": 25,
    "tests/storage_node/test_p2p.py": 22,
    "tests/e2e/test_fetch_resilience.py": 22,
    "tests/cli/test_devnet_processes.py": 21,
    "tests/market/test_discovery.py": 21,
    "tests/market/test_security.py": 20,
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, with the files of :data:`SHARED_SESSION_FIXTURES` as one work unit each and
    the units of :data:`LONGEST_UNITS` handed out first."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFixtureScheduling(LoadFileScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return _SCOPE_OF.get(path, path)

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the queue is complete before the first unit is handed out
                self.ordered = True
                units = sorted(self.workqueue.items(), key=lambda unit: -LONGEST_UNITS.get(unit[0], 0))
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)

    return SharedFixtureScheduling(config, log)
