"""The listing pages (market, the owner's datasets) over a real embedded chain: what a page reads
grows with the rows it shows, never with every dataset on the chain, and long listings are paged.

A page that read every dataset (and every share of each) on each load stopped loading at all on
a long-running network: the e2e session's owner page took over 30 s after ~100 publishes.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from eth_account.signers.local import LocalAccount
from web3.middleware import Web3Middleware
from web3.types import RPCEndpoint, RPCResponse

from contracts import errors
from contracts.chain import Chain
from contracts.connection import TOKEN
from contracts.devchain import DevChain, dev_account
from contracts.terms import TRAINING_ALLOWED
from datasov.cli import titles
from datasov.web import views_market

from .conftest import MakeClient

pytestmark = pytest.mark.asyncio
ME, SOMEONE_ELSE = dev_account(2), dev_account(3)  # the web app's account is dev_account(2)
OPERATORS = [dev_account(i) for i in range(5, 11)]


class Requests(Web3Middleware):
    """Counts the JSON-RPC requests the app makes, by method."""

    seen: ClassVar[list[str]] = []

    async def async_wrap_make_request(self, make_request: Any) -> Any:
        async def middleware(method: RPCEndpoint, params: Any) -> RPCResponse:
            Requests.seen.append(str(method))
            response: RPCResponse = await make_request(method, params)
            return response

        return middleware


@pytest_asyncio.fixture(scope="module")
async def base() -> AsyncIterator[Chain]:
    chain = await DevChain.embedded(dev_accounts=12)
    chain.w3.middleware_onion.add(Requests)
    yield chain


@pytest_asyncio.fixture
async def chain(base: DevChain) -> AsyncIterator[Chain]:
    snapshot = await base.snapshot()
    yield base
    await base.revert(snapshot)


async def register(chain: Chain, owner: LocalAccount, *, n: int = 3) -> int:
    return await chain.register_dataset(
        owner,
        manifest_hash=os.urandom(32),
        commitment_root=os.urandom(32),
        key_commitment=os.urandom(32),
        key_salt=os.urandom(32),
        plaintext_size=10_000,
        share_size=8192,
        leaf_size=1024,
        k=2,
        n=n,
        price=TOKEN,
        terms=TRAINING_ALLOWED,
    )


async def with_deal(chain: Chain, dataset_id: int, n: int) -> None:
    for op in OPERATORS[:n]:
        with contextlib.suppress(errors.AlreadyRegistered):
            await chain.register_operator(op, 100 * TOKEN)
    deal = await chain.open_deal(ME, dataset_id, [op.address for op in OPERATORS[:n]], epochs=50, fee_per_share_epoch=0)
    for i in range(n):
        await chain.accept_share(OPERATORS[i], deal, i)


async def reads(client: Any, path: str, chain: Chain) -> tuple[int, str]:
    """JSON-RPC requests made while serving ``path``, and the page (the log index caught up first:
    its catch-up reads grow with the blocks mined since, not with the page; titles not found on an
    earlier load asked again, as on a first load)."""
    await chain.terminated_deals([1])
    titles._misses.clear()
    Requests.seen.clear()
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return len(Requests.seen), await resp.text()


def shown(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="dataset-(\d+)"', html)]


async def test_the_owners_page_reads_for_the_owners_datasets_not_for_everyone_elses(
    make_client: MakeClient, chain: Chain
) -> None:
    mine = [await register(chain, ME) for _ in range(2)]
    await with_deal(chain, mine[0], 3)
    client, _ = await make_client(lambda: _chain(chain))
    before, html = await reads(client, "/mine", chain)
    assert sorted(shown(html)) == mine
    for _ in range(12):
        await register(chain, SOMEONE_ELSE)
    after, html = await reads(client, "/mine", chain)
    assert sorted(shown(html)) == mine
    assert after == before  # was 12 more: every dataset on the chain was read to find the owner's


async def test_a_datasets_health_reads_its_shares_at_once_whatever_their_number(
    make_client: MakeClient, chain: Chain
) -> None:
    small, large = await register(chain, ME, n=3), await register(chain, ME, n=6)
    await with_deal(chain, small, 3)
    await with_deal(chain, large, 6)
    client, _ = await make_client(lambda: _chain(chain))
    three, html = await reads(client, f"/?before={small + 1}", chain)
    assert shown(html) == [small]
    six, html = await reads(client, f"/?before={large + 1}&limit=1", chain)
    assert shown(html) == [large]
    assert six == three  # was one read per share


async def test_a_long_market_is_shown_a_page_at_a_time_newest_first(make_client: MakeClient, chain: Chain) -> None:
    ids = [await register(chain, SOMEONE_ELSE) for _ in range(views_market.PAGE + 3)]
    client, _ = await make_client(lambda: _chain(chain))
    _, html = await reads(client, "/", chain)
    first = shown(html)
    assert first == sorted(ids, reverse=True)[: views_market.PAGE]
    older = re.search(r'<a class="older" href="([^"]+)"', html)
    assert older, "no link to the older datasets"
    _, html = await reads(client, older.group(1).replace("&amp;", "&"), chain)
    assert shown(html) == sorted(ids, reverse=True)[views_market.PAGE :]
    assert '<a class="older"' not in html  # the last page


async def test_a_bad_page_cursor_is_a_400_naming_it(make_client: MakeClient, chain: Chain) -> None:
    client, _ = await make_client(lambda: _chain(chain))
    for query in ("before=x", "before=-1", "limit=0", "limit=100000"):
        resp = await client.get(f"/?{query}")
        assert resp.status == 400, query
        assert query.split("=")[0] in await resp.text()


async def _chain(chain: Chain) -> Chain:
    return chain
