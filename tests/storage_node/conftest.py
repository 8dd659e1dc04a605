"""A network of real storage nodes on loopback (real sockets, real files), driven by the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest_asyncio
from eth_account import Account
from eth_account.signers.local import LocalAccount

from storage_node.api.app import Authorizer, allow_any
from storage_node.client import NodeClient
from storage_node.node import NodeConfig, StorageNode

NodeFactory = Callable[..., Awaitable[StorageNode]]


@pytest_asyncio.fixture(loop_scope="function")
async def make_node(tmp_path: Path) -> AsyncIterator[NodeFactory]:
    started: list[StorageNode] = []

    async def factory(name: str = "n0", authorize: Authorizer = allow_any, **config: object) -> StorageNode:
        node = StorageNode(NodeConfig(home=tmp_path / name, **config), authorize=authorize)  # type: ignore[arg-type]
        await node.start()
        started.append(node)
        return node

    yield factory
    await asyncio.gather(*(n.stop() for n in started))


@pytest_asyncio.fixture(loop_scope="function")
async def network(make_node: NodeFactory) -> list[StorageNode]:
    """Twelve nodes, each with its own home and port."""
    return list(await asyncio.gather(*(make_node(f"n{i}") for i in range(12))))


@pytest_asyncio.fixture(loop_scope="function")
async def client() -> AsyncIterator[NodeClient]:
    async with NodeClient(timeout=10, retries=2) as c:
        yield c


def publisher() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account
