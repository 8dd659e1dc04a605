"""The web app in a real browser (Playwright driving Debian's Chromium, ``make chromium``) over the
in-process network: a lab buys and fetches through the pages, an owner revokes consent and the
lab's page shows it, an operator's page shows a proof after an epoch, and requests without the
login token or the CSRF token are refused. Each page's screenshot goes under the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from contracts.connection import TOKEN
from contracts.terms import Purpose
from datasov.demo import _same_tree
from datasov.devnet import LocalNetwork
from datasov.web.server import start
from datasov.web.state import NodeSide, WebState
from market import audit, buyer, publisher
from market.keystore import Keystore
from storage_node.client import NodeClient
from storage_node.prover import Prover

from .conftest import LAYOUT, PRICE, SAMPLE, Publish, accept_placements

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
playwright_api = pytest.importorskip("playwright.async_api")
if not CHROMIUM.exists():
    pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (the browser tests need Debian's Chromium)")


def parse_tokens(text: str) -> int:
    return int(Decimal(text) * TOKEN)


@dataclass
class App:
    """One user's web app, served on loopback, and a browser page logged in to it."""

    state: WebState
    base: str
    login: str
    page: Any
    runner: Any

    async def shot(self, directory: Path, name: str) -> None:
        await self.page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        await chromium.close()


async def open_app(net: LocalNetwork, browser: Any, keystore: Keystore, node: NodeSide | None = None) -> App:
    async def connect() -> Any:
        return net.chain

    state = WebState(keystore.path.parent, keystore, net.directory, connect, node=node)
    runner, login = await start(state, "127.0.0.1", 0)
    page = await (await browser.new_context(accept_downloads=True)).new_page()
    base = login.split("?", 1)[0]
    return App(state, base, login, page, runner)


@pytest_asyncio.fixture(scope="module")
async def lab_app(net: LocalNetwork, browser: Any, lab: Keystore) -> AsyncIterator[App]:
    app = await open_app(net, browser, lab)
    await app.page.goto(app.login)  # the one-time link: from now on the session cookie logs in
    yield app
    await app.page.context.close()
    await app.runner.cleanup()


@pytest_asyncio.fixture(scope="module")
async def owner_app(net: LocalNetwork, browser: Any, owner: Keystore) -> AsyncIterator[App]:
    app = await open_app(net, browser, owner)
    await app.page.goto(app.login)
    yield app
    await app.page.context.close()
    await app.runner.cleanup()


async def test_a_lab_buys_and_fetches_through_the_pages(lab_app: App, publish: Publish, tmp_path: Path) -> None:
    offer = await publish()
    dataset_id = offer.dataset_id
    page = lab_app.page
    await page.goto(f"{lab_app.base}?purpose=ai_training")
    row = page.locator(f"#dataset-{dataset_id}")
    assert "training: allowed" in await row.inner_text()
    assert "servable 10/10" in await row.inner_text()
    await lab_app.shot(tmp_path, "market")

    await row.locator("a").first.click()
    await page.wait_for_url(f"**/datasets/{dataset_id}")
    assert await page.locator(".reachable").inner_text() == "10"
    await lab_app.shot(tmp_path, "dataset")

    await page.select_option("form.buy select[name=purpose]", "ai_training")
    await page.click("form.buy button")
    await page.wait_for_url(f"**/datasets/{dataset_id}/buy?**")
    assert "5 tokens leave your wallet" in await page.locator(".escrow").inner_text()
    assert "you take your payment back" in await page.locator(".deadline").inner_text()
    await lab_app.shot(tmp_path, "buy-confirm")

    await page.click("text=Confirm purchase")
    await page.wait_for_url("**/licenses#license-*")
    license_id = int(page.url.rsplit("license-", 1)[1])
    assert await page.locator(f"#license-{license_id} .state").inner_text() == "waiting for key"

    await page.click(f"#license-{license_id} button:text('Fetch')")  # too early: a page that says how long
    assert "The key has not been delivered yet" in await page.locator("h1").inner_text()
    assert "take your payment back" in await page.locator(".message").inner_text()
    await lab_app.shot(tmp_path, "error-key-not-delivered")

    decisions = await offer.agent.tick()  # the session's network may hold other tests' licenses: only ours matters
    assert [(d.license_id, d.outcome) for d in decisions if d.license_id == license_id] == [(license_id, "delivered")]
    await page.goto(f"{lab_app.base}licenses")
    assert await page.locator(f"#license-{license_id} .state").inner_text() == "valid"
    await page.click(f"#license-{license_id} button:text('Fetch')")
    await page.wait_for_url("**/licenses?job=*")
    await page.wait_for_selector(".job-state[data-state=done], .job-state[data-state=failed]", timeout=60_000)
    message = await page.locator(".job-state").inner_text()
    assert await page.locator(".job-state").get_attribute("data-state") == "done", message
    assert "wrote" in message
    bar = page.locator(".job progress")
    assert await bar.get_attribute("value") == await bar.get_attribute("max")
    await lab_app.shot(tmp_path, "licenses-fetched")
    fetched = lab_app.state.downloads / f"license-{license_id}"
    assert _same_tree(SAMPLE, fetched)

    await page.goto(f"{lab_app.base}datasets/{dataset_id}/buy?purpose=ai_training")  # a second purchase: warned
    assert f"license {license_id} (valid)" in await page.locator(".held").inner_text()
    await page.goto(f"{lab_app.base}licenses")

    async with page.expect_download() as download:
        await page.click(f"#license-{license_id} a:text('receipt')")
    saved = Path(await (await download.value).path())
    receipt = json.loads(await asyncio.to_thread(saved.read_text))
    assert receipt["license"]["id"] == license_id
    verified = await audit.verify_receipt(await lab_app.state.chain(), receipt)
    assert verified.ok, verified.problems


async def test_an_owner_revokes_consent_and_the_labs_page_shows_it(
    net: LocalNetwork, lab: Keystore, owner_app: App, lab_app: App, publish: Publish, tmp_path: Path
) -> None:
    offer = await publish()
    dataset_id = offer.dataset_id
    license_id = await buyer.buy(net.chain, lab, dataset_id, Purpose.AI_TRAINING)
    await offer.agent.tick()

    page = owner_app.page
    await page.goto(f"{owner_app.base}mine")
    row = page.locator(f"#dataset-{dataset_id}")
    assert await row.locator(".consent").inner_text() == "stands"
    await owner_app.shot(tmp_path, "mine")
    await row.locator("text=Revoke consent").click()
    effects = await page.locator("ul.effects").inner_text()
    assert "cannot be undone" in effects
    assert f"1 revocable license(s) end now: [{license_id}]" in effects
    await owner_app.shot(tmp_path, "revoke-confirm")
    await page.click("button.danger")
    await page.wait_for_url("**/mine")
    assert await page.locator(f"#dataset-{dataset_id} .consent").inner_text() == "revoked"

    await lab_app.page.goto(f"{lab_app.base}licenses")
    lab_row = lab_app.page.locator(f"#license-{license_id}")
    assert await lab_row.locator(".state").inner_text() == "consent revoked"
    assert (await lab_row.locator(".consent").inner_text()).startswith("revoked")
    await lab_app.shot(tmp_path, "licenses-revoked")

    await lab_app.page.goto(f"{lab_app.base}datasets/{dataset_id}/buy?purpose=ai_training")
    await lab_app.page.click("text=Confirm purchase")  # the contract refuses: a page with its reason
    assert await lab_app.page.locator("h1").inner_text() == "The contract refused"
    assert "has revoked consent" in await lab_app.page.locator(".message").inner_text()
    await lab_app.shot(tmp_path, "error-refused")


async def test_an_owner_publishes_a_folder_through_the_page_with_a_progress_bar(owner_app: App, tmp_path: Path) -> None:
    page = owner_app.page
    await page.goto(f"{owner_app.base}mine")
    form = page.locator("form.publish")
    await form.locator("input[name=path]").fill(str(SAMPLE))
    await form.locator("input[name=title]").fill("corpus from the page")
    await form.locator("input[name=price]").fill("2.5")
    await form.locator("select[name=data_mining]").select_option("not_allowed")
    await form.locator("input[name=k]").fill("2")
    await form.locator("input[name=n]").fill("4")
    await form.locator("button").click()
    await page.wait_for_url("**/mine?job=*")
    # done or failed: a failed job's page says why, and the assertion shows it
    await page.wait_for_selector(".job-state[data-state=done], .job-state[data-state=failed]", timeout=60_000)
    message = await page.locator(".job-state").inner_text()
    assert await page.locator(".job-state").get_attribute("data-state") == "done", message
    assert "published dataset" in message
    await owner_app.shot(tmp_path, "publish-done")
    await page.click(".job-link a")
    await page.wait_for_url("**/datasets/*")
    assert "corpus from the page" in await page.locator("h1").inner_text()
    assert "2-of-4" in await page.locator("dl.facts").inner_text()
    assert "2.5 tokens" in await page.locator("dl.facts").inner_text()
    assert "mining: not allowed" in await page.locator(".badges").inner_text()
    await owner_app.shot(tmp_path, "published-dataset")


async def test_an_operators_page_shows_a_proof_after_an_epoch_and_claims_its_fee(
    net: LocalNetwork, browser: Any, owner: Keystore, client: NodeClient, lab_app: App, tmp_path: Path
) -> None:
    fee = TOKEN // 10
    options = publisher.PublishOptions(layout=LAYOUT, price=PRICE, epochs=20, fee_per_share_epoch=fee)
    pub = await publisher.publish(
        SAMPLE, chain=net.chain, keystore=owner, directory=net.directory, client=client,
        staging=tmp_path / "staging", options=options,
    )  # fmt: skip
    await accept_placements(net, pub)
    holder = net.node_of(pub.placements[0].address)
    assert holder.node.store is not None
    operator = holder.node.operator
    node_app = await open_app(net, browser, lab_app.state.keystore, NodeSide(holder.home, operator, holder.node.url))
    try:
        page = node_app.page
        await page.goto(node_app.login.replace("/?", "/node?"))
        before = int(await page.locator(".proofs-total").inner_text())
        earned_before = parse_tokens(await page.locator(".earned-total").inner_text())
        first = (await net.chain.get_share(pub.deal_id, 0)).active_from
        await net.chain.advance_to_epoch(first)
        report = await Prover(net.chain, operator, holder.node.store).prove_epoch(first)
        assert (pub.deal_id, 0) in report.proven
        await page.reload()
        assert int(await page.locator(".proofs-total").inner_text()) == before + len(report.proven)
        assert int(await page.locator(f"#epoch-{first} .made").inner_text()) >= 1
        assert await page.locator("svg.chart rect.proof").count() >= 1
        assert parse_tokens(await page.locator(".earned-total").inner_text()) == earned_before + fee
        assert parse_tokens(await page.locator(".unclaimed").inner_text()) >= fee
        await node_app.shot(tmp_path, "node")

        owed = parse_tokens(await page.locator(".unclaimed").inner_text())
        owed += parse_tokens(await page.locator(".withdrawable").inner_text())
        wallet = await net.chain.balance_of(operator.address)
        await page.click("text=Claim fees and withdraw")
        await page.wait_for_url("**/node")
        assert await net.chain.balance_of(operator.address) == wallet + owed
        assert await page.locator(".unclaimed").inner_text() == "0"
        assert await page.locator(".withdrawable").inner_text() == "0"

        await page.goto(f"{node_app.base}network")
        assert int(await page.locator(".reachable-count").inner_text()) == sum(n.alive for n in net.nodes)
        await node_app.shot(tmp_path, "network")
    finally:
        await node_app.page.context.close()
        await node_app.runner.cleanup()


async def test_requests_without_the_login_token_or_the_csrf_token_are_refused(
    browser: Any, lab_app: App, tmp_path: Path
) -> None:
    stranger = await (await browser.new_context()).new_page()
    try:
        resp = await stranger.goto(f"{lab_app.base}licenses")
        assert resp.status == 401
        assert "open the URL that `datasov ui` printed" in await stranger.content()
        resp = await stranger.goto(lab_app.login)  # the link was used: it opens nothing now
        assert resp.status == 401
        await stranger.screenshot(path=str(tmp_path / "refused-login.png"))
    finally:
        await stranger.context.close()

    page = lab_app.page
    await page.goto(f"{lab_app.base}mine")
    status = await page.evaluate(
        "async () => (await fetch('/mine/withdraw', {method: 'POST', redirect: 'manual'})).status"
    )
    assert status == 403
    forged = await page.evaluate(
        "async () => (await fetch('/mine/withdraw', {method: 'POST', redirect: 'manual',"
        " headers: {'X-CSRF-Token': 'forged'}})).status"
    )
    assert forged == 403
    ok = await page.evaluate(
        "async () => (await fetch('/mine/withdraw', {method: 'POST', redirect: 'manual', headers:"
        " {'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}})).status"
    )
    assert ok in (0, 303)  # a manual redirect shows as an opaque response (status 0): it went through
