"""datasov: the front door (CLI, config, local network, demo)."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``datasov.__version__``, read from the installed metadata on first use (not at import: the CLI
    starts faster without importlib.metadata)."""
    if name != "__version__":
        raise AttributeError(f"module 'datasov' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("datasov")
    except PackageNotFoundError:  # running from a source tree without install
        return "0.0.0+src"
