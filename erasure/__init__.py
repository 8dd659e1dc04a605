"""The data pipeline: encryption, erasure coding, Merkle commitments, manifests.

Pure and synchronous: no network, no event loop. Callers run CPU-heavy calls off their
event loop (``asyncio.to_thread``). Nothing here imports from the other datasov packages.
"""
