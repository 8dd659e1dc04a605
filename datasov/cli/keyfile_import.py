"""``eth_keyfile`` without py_ecc's BLS12-381 at import: half a second off every command that signs.

``eth_account`` (and so ``web3``) imports ``eth_keyfile.keyfile``, which imports at module level
``py_ecc.bls.G2ProofOfPossession`` (building BLS12-381 pairing constants: 0.6-1.2 s here), and
``py_ecc.bls12_381.curve_order``, only to make and check BLS (EIP-2335) keyfiles, which datasov
never does. :func:`install` adds an import hook that runs ``eth_keyfile.keyfile`` with stand-ins
for those two modules in ``sys.modules``: ``curve_order`` is its value (a test checks it against
py_ecc's), ``G2ProofOfPossession`` a proxy that imports the real class on first use. The stand-ins
are removed as soon as the module has run, so any other importer of ``py_ecc.bls`` or
``py_ecc.bls12_381`` gets the real modules; nothing else changes. Where py_ecc's BLS is already
imported, the hook does nothing.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec

TARGET = "eth_keyfile.keyfile"
BLS12_381_CURVE_ORDER = 52435875175126190479447740508185965837690552500527637822603658699938581184513
"""py_ecc.bls12_381.curve_order (the order of BLS12-381's groups)."""


class _RealAttribute:
    """Stands for ``module.name``; the first attribute read imports the real one and forwards."""

    def __init__(self, module: str, name: str) -> None:
        self._module = module
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(getattr(importlib.import_module(self._module), self._name), attr)


def _stand_ins() -> dict[str, types.ModuleType]:
    bls = types.ModuleType("py_ecc.bls", "stand-in while eth_keyfile.keyfile runs (datasov.cli.keyfile_import)")
    bls.G2ProofOfPossession = _RealAttribute("py_ecc.bls", "G2ProofOfPossession")  # type: ignore[attr-defined]
    curve = types.ModuleType("py_ecc.bls12_381", "stand-in while eth_keyfile.keyfile runs")
    curve.curve_order = BLS12_381_CURVE_ORDER  # type: ignore[attr-defined]
    return {"py_ecc.bls": bls, "py_ecc.bls12_381": curve}


class _Loader:
    """The real loader of ``eth_keyfile.keyfile``, run with the stand-ins in place (no ABC base:
    ``importlib.abc`` costs more to import than this whole hook saves on ``--help``)."""

    def __init__(self, real: Loader) -> None:
        self._real = real

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        return self._real.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        stand_ins = _stand_ins()
        if any(name in sys.modules for name in stand_ins):  # the real BLS is here already: nothing to save
            self._real.exec_module(module)
            return
        sys.modules.update(stand_ins)
        try:
            self._real.exec_module(module)
        finally:
            for name, stand_in in stand_ins.items():
                if sys.modules.get(name) is stand_in:
                    del sys.modules[name]


class _Finder:
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != TARGET:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = cast("Loader", _Loader(spec.loader))
        return spec


def install() -> None:
    """Add the hook (once; before ``eth_account`` is imported, or it does nothing)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
