"""Each package's errors.py draws the package's whole error tree, and only the node's errors carry an
HTTP status (the flows and the chain client leave the mapping to whoever answers a request)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

PACKAGES = ["erasure", "storage_node", "market", "contracts"]


def _error_classes(package: str) -> list[type[BaseException]]:
    """Exception classes defined (by a class statement) in any module of ``package``."""
    root = importlib.import_module(package)
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
        if info.name == "contracts.devchain":
            continue  # eth-tester's own exception types are re-exported there
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name and not getattr(obj, "error_name", ""):
                found.append(obj)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_errors_module_draws_every_error_of_its_package(package: str) -> None:
    doc = importlib.import_module(f"{package}.errors").__doc__ or ""
    missing = sorted({cls.__qualname__ for cls in _error_classes(package)} - set(doc.split()))
    assert missing == [], f"{package}/errors.py does not draw {missing}"


@pytest.mark.parametrize("package", ["market", "contracts", "erasure"])
def test_no_error_outside_the_node_carries_an_http_status(package: str) -> None:
    with_status = [cls.__qualname__ for cls in _error_classes(package) if hasattr(cls, "status")]
    assert with_status == []
