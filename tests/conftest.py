import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Test files that share one expensive session fixture run as one xdist work unit under
# `--dist loadfile` (make pytest), so one worker builds it once instead of each worker its own:
# the 12-process `datasov devnet up` of tests/cli/conftest.py costs ~45 CPU-seconds to start and
# keeps ~0.2 of a core busy while it lives (figures in docs/test-suite.md). tests/test_scheduling.py
# checks that every file using the fixture is listed.
SHARED_SESSION_FIXTURES = {
    "devnet": (
        "tests/cli/test_guardians_cli.py",
        "tests/cli/test_light_commands.py",
        "tests/cli/test_nodes.py",
        "tests/cli/test_operator.py",
        "tests/cli/test_owner_and_lab.py",
        "tests/cli/test_pools.py",
        "tests/cli/test_read.py",
    ),
}
_SCOPE_OF = {
    path: f"shared session fixture {name}" for name, paths in SHARED_SESSION_FIXTURES.items() for path in paths
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, with the files of :data:`SHARED_SESSION_FIXTURES` as one work unit each."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return _SCOPE_OF.get(path, path)

    return SharedFixtureScheduling(config, log)
