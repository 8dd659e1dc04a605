"""End-to-end flows on the in-process network: publish, buy, key release, fetch, revoke, end, audit."""

from __future__ import annotations

import filecmp
import json
import os
from pathlib import Path

import pytest

from contracts import delivery, errors
from contracts.chain import Chain, ChainConfig
from contracts.devchain import dev_account
from contracts.models import LicenseStatus
from contracts.terms import LicenseTerms, Permission, Purpose
from datasov import rpc
from datasov.demo import _same_tree
from datasov.devnet import LocalNetwork
from erasure import envelope
from erasure.pipeline import Layout
from market import audit, buyer, key_agent
from market.keystore import Keystore
from storage_node.client import NodeClient, NodeUnavailable

from .conftest import PRICE, SAMPLE, Publish, accept_placements

pytestmark = pytest.mark.asyncio


async def test_publish_buy_fetch_roundtrip(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path
) -> None:
    offer = await publish()
    pub = offer.pub
    assert len({node.address for node in pub.placements.values()}) == 10  # never two shares on one operator
    on_chain = await net.chain.get_dataset(pub.dataset_id)
    assert on_chain.manifest_hash == pub.manifest_hash
    assert on_chain.commitment_root == pub.manifest.commitment_root
    assert not (tmp_path / "staging").exists()  # streamed: no staging copy on disk at all

    license_id = await buyer.buy(net.chain, lab, pub.dataset_id, Purpose.AI_TRAINING)
    decisions = await offer.agent.tick()
    assert [(d.license_id, d.outcome) for d in decisions if d.license_id == license_id] == [(license_id, "delivered")]
    await buyer.wait_for_key(net.chain, lab, license_id, within=5)
    report = await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "out")
    assert _same_tree(SAMPLE, tmp_path / "out")
    assert report.bytes_written == pub.manifest.plaintext_size
    assert len(report.shares_used) == 4
    assert not report.excluded


async def test_single_file_dataset(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path
) -> None:
    data = tmp_path / "table.bin"
    data.write_bytes(bytes(range(256)) * 3000 + b"tail")
    offer = await publish(data, layout=Layout(k=3, n=6, block_size=64 * 1024))
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.DATA_MINING)
    await offer.agent.tick()
    await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "copy.bin")
    assert filecmp.cmp(data, tmp_path / "copy.bin", shallow=False)


async def test_wrong_purpose_is_refused(net: LocalNetwork, lab: Keystore, publish: Publish) -> None:
    offer = await publish(terms=LicenseTerms(ai_inference=Permission.ALLOWED))
    with pytest.raises(errors.PurposeNotAllowed):
        await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)


async def test_unpaid_purchase_is_refused(
    net: LocalNetwork, publish: Publish, tmp_path_factory: pytest.TempPathFactory
) -> None:
    offer = await publish()
    broke = Keystore.create(tmp_path_factory.mktemp("broke"), b"pw")  # ETH for gas, no tokens
    await net.chain.send_eth(dev_account(0), broke.account.address, 10**18)
    with pytest.raises(errors.ERC20InsufficientBalance):
        await buyer.buy(net.chain, broke, offer.dataset_id, Purpose.AI_TRAINING)
    with pytest.raises(errors.PriceAboveLimit):  # and a buyer's price limit is honoured
        await buyer.buy(net.chain, broke, offer.dataset_id, Purpose.AI_TRAINING, max_price=1)


async def test_revocation_stops_key_release_and_new_licenses(
    net: LocalNetwork, owner: Keystore, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path
) -> None:
    offer = await publish()
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    await net.chain.revoke_consent(owner.account, offer.dataset_id)
    decisions = {d.license_id: d for d in await offer.agent.tick()}
    assert decisions[license_id].outcome == "refused"
    assert "revoked" in decisions[license_id].reason
    assert (await net.chain.get_license(license_id)).status == LicenseStatus.PENDING
    with pytest.raises(errors.ConsentIsRevoked):
        await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    with pytest.raises(buyer.LicenseNotUsable):
        await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "out")
    # revocation frees the lab's escrowed payment at once
    before = await net.chain.balance_of(lab.account.address)
    await net.chain.refund(lab.account, license_id)
    lic = await net.chain.get_license(license_id)
    assert await net.chain.balance_of(lab.account.address) == before + lic.price
    assert not (tmp_path / "out").exists()


async def test_undelivered_key_is_refunded_after_the_deadline(
    net: LocalNetwork, lab: Keystore, publish: Publish
) -> None:
    offer = await publish()  # the owner's agent is offline: nobody delivers
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    with pytest.raises(buyer.KeyNotDelivered) as waited:
        await buyer.wait_for_key(net.chain, lab, license_id, within=0)  # reads the chain once, no waiting
    assert not waited.value.refundable
    assert (await net.chain.get_license(license_id)).status == LicenseStatus.PENDING
    assert await net.chain.delivery(license_id) is None  # no KeyDelivered event on chain
    with pytest.raises(errors.RefundNotYetAllowed):
        await net.chain.refund(lab.account, license_id)
    await net.chain.advance_time(net.chain.deployment.delivery_window + 1)
    with pytest.raises(buyer.KeyNotDelivered) as waited:
        await buyer.wait_for_key(net.chain, lab, license_id, within=5)
    assert waited.value.refundable
    decisions = {d.license_id: d for d in await offer.agent.tick()}  # the agent comes back too late
    assert decisions[license_id].outcome == "refused"
    assert "deadline" in decisions[license_id].reason
    before = await net.chain.balance_of(lab.account.address)
    await net.chain.refund(lab.account, license_id)
    assert await net.chain.balance_of(lab.account.address) == before + PRICE
    with pytest.raises(buyer.LicenseNotUsable):
        await buyer.wait_for_key(net.chain, lab, license_id, within=1)


async def test_expired_license_cannot_fetch(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path
) -> None:
    terms = LicenseTerms(ai_training=Permission.ALLOWED, license_duration=600)
    offer = await publish(terms=terms)
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    await offer.agent.tick()
    await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "in-time")
    await net.chain.advance_time(601)
    with pytest.raises(buyer.LicenseNotUsable, match="no longer valid"):
        await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "late")


async def test_tampered_shares_are_never_served_as_good(
    net: LocalNetwork, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path
) -> None:
    offer = await publish()
    pub = offer.pub
    dataset = pub.manifest_hash.hex()
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    await offer.agent.tick()

    def corrupt(index: int) -> None:
        store = net.node_of(pub.placements[index].address).node.store
        assert store is not None
        path = store.share_path(dataset, index)
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        path.write_bytes(bytes(raw))

    for i in range(6):  # n - k = 6 shares damaged: the 4 intact ones still rebuild it
        corrupt(i)
    report = await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "out")
    assert _same_tree(SAMPLE, tmp_path / "out")
    assert set(report.shares_used) == {6, 7, 8, 9}
    corrupt(6)  # one more and the dataset cannot be rebuilt: the fetch fails and writes nothing
    with pytest.raises(buyer.BuyError, match="could not rebuild"):
        await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
    assert all(net.node_of(pub.placements[i].address).node.store.corruptions for i in range(7))  # type: ignore[union-attr]


async def test_key_not_matching_the_commitment_is_rejected(
    net: LocalNetwork, owner: Keystore, lab: Keystore, client: NodeClient, publish: Publish, tmp_path: Path
) -> None:
    offer = await publish()
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    context = await net.chain.delivery_context(license_id)
    wrong = delivery.seal(envelope.new_data_key(), await net.chain.buyer_key(license_id), context)  # a dishonest owner
    await net.chain.deliver_key(owner.account, license_id, wrong)
    before = await net.chain.balance_of(lab.account.address)
    runner, url = await rpc.serve(net.chain, "127.0.0.1", 0)
    reader = await Chain.reader(url, net.chain.deployment)
    try:  # a fetch on a reader (the CLI's first try) stops at the dispute, before anything is sent or written
        with pytest.raises(errors.ReadOnlyConnection):
            await buyer.fetch(reader, lab, net.directory, client, license_id, tmp_path / "out")
    finally:
        await reader.close()
        await runner.cleanup()
    assert (await net.chain.get_license(license_id)).status == LicenseStatus.DELIVERED
    assert not (tmp_path / "out").exists()
    with pytest.raises(buyer.KeyMismatch) as mismatch:  # then on a chain that sends, as the CLI does next
        await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "out")
    assert mismatch.value.refunded  # the lab disputed on-chain and took its payment back
    assert await net.chain.balance_of(lab.account.address) == before + PRICE
    assert (await net.chain.get_license(license_id)).status == LicenseStatus.REJECTED
    assert not (tmp_path / "out").exists()
    receipt = await audit.build_receipt(net.chain, license_id, lab.account)  # the lab's evidence
    assert receipt["transactions"]["key_delivery"]["tx"].startswith("0x")


async def test_key_agent_restart_neither_misses_nor_repeats(
    net: LocalNetwork, owner: Keystore, lab: Keystore, publish: Publish
) -> None:
    offer = await publish()
    await offer.agent.tick()  # the agent has seen everything so far; then it stops
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    restarted = key_agent.KeyAgent(net.chain, owner, home=owner.path.parent)  # a new process, same home
    delivered = [d for d in await restarted.tick() if d.outcome == "delivered"]
    assert [d.license_id for d in delivered] == [license_id]
    # a crash after delivering but before saving the checkpoint: the rescan must not deliver again
    (owner.path.parent / key_agent.STATE_FILE).write_text(json.dumps({"version": 1, "next_block": 0}))
    again = await key_agent.KeyAgent(net.chain, owner, home=owner.path.parent).tick()
    assert [d.outcome for d in again if d.license_id == license_id] == ["skipped"]
    events = await net.chain.licenses.events.KeyDelivered().get_logs(
        from_block=0, argument_filters={"licenseId": license_id}
    )
    assert len(events) == 1


async def test_storage_end_deletes_shares(net: LocalNetwork, owner: Keystore, publish: Publish, tmp_path: Path) -> None:
    from market.publisher import PublishError, end_storage

    offer = await publish()
    dataset = offer.pub.manifest_hash.hex()
    result = await end_storage(net.chain, owner.account, net.directory, offer.dataset_id)
    assert sorted(result["deleted"]) == list(range(10))
    assert not result["pending"]
    for i, node in offer.pub.placements.items():
        store = net.node_of(node.address).node.store
        assert store is not None
        assert not store.share_path(dataset, i).exists()
        assert not store.manifest_path(dataset).exists()
    stranger = keystore_for(tmp_path, 4)
    with pytest.raises(PublishError, match="belongs to"):
        await end_storage(net.chain, stranger.account, net.directory, offer.dataset_id)


def keystore_for(tmp_path: Path, index: int) -> Keystore:
    return Keystore.create(tmp_path / f"k{index}", b"pw", account=dev_account(index))


async def test_consent_receipt_verifies_and_detects_tampering(
    net: LocalNetwork, lab: Keystore, publish: Publish, tmp_path: Path
) -> None:
    offer = await publish()
    license_id = await buyer.buy(net.chain, lab, offer.dataset_id, Purpose.AI_TRAINING)
    await offer.agent.tick()
    receipt = await audit.build_receipt(net.chain, license_id, lab.account, plaintext_sha256="ab" * 32)
    check = await audit.verify_receipt(net.chain, json.loads(json.dumps(receipt)))
    assert check.ok, check.problems
    assert check.consent_stands

    forged = json.loads(json.dumps(receipt))
    forged["license"]["purpose"] = "data_mining"
    check = await audit.verify_receipt(net.chain, forged)
    assert not check.ok  # the signature no longer matches, and the purpose is not the one on-chain
    assert any("signed by" in p for p in check.problems)
    assert any("license.purpose" in p for p in check.problems)

    other = keystore_for(tmp_path, 3)
    with pytest.raises(audit.ReceiptError):
        await audit.build_receipt(net.chain, license_id, other.account)  # only the licensee signs
    with pytest.raises(audit.ReceiptError):
        await audit.verify_receipt(net.chain, {"format": "something-else"})


class FlakyClient(NodeClient):
    """Uploads of share 0 fail (a node that drops the connection mid-upload)."""

    failed: list[str]

    async def put_share(self, url, order, signer, data):  # type: ignore[no-untyped-def]
        if order.index == 0 and not self.failed:
            self.failed.append(url)
            raise NodeUnavailable(f"upload to {url} failed: connection reset")
        return await super().put_share(url, order, signer, data)

    async def put_pending(self, url, order, signer, data):  # type: ignore[no-untyped-def]
        if order.index == 0 and not self.failed:  # streaming publish: the pending upload fails instead
            self.failed.append(url)
            raise NodeUnavailable(f"upload to {url} failed: connection reset")
        return await super().put_pending(url, order, signer, data)


async def test_publish_moves_a_failed_share_to_a_spare_node(owner: Keystore, lab: Keystore, tmp_path: Path) -> None:
    from market import publisher

    net = await LocalNetwork.start(tmp_path / "net", nodes=7, config=ChainConfig(epoch_blocks=50), provers=False)
    try:
        full = net.nodes[0].node
        assert full.store is not None
        full.store.capacity = 1  # a full node is never chosen
        async with FlakyClient(timeout=5, retries=1) as client:
            client.failed = []
            big = tmp_path / "big.bin"  # more blocks per share than a streaming queue holds
            big.write_bytes(os.urandom(6 << 20))
            pub = await publisher.publish(
                big,
                chain=net.chain,
                keystore=owner,
                directory=net.directory,
                client=client,
                staging=tmp_path / "staging",
                options=publisher.PublishOptions(layout=Layout(k=2, n=5)),
            )
            assert full.address not in {n.address for n in pub.placements.values()}
            assert [(i, url) for i, url, _ in pub.replaced] == [(0, client.failed[0])]
            share = await net.chain.get_share(pub.deal_id, 0)
            assert share.provider == pub.placements[0].address  # the deal names the spare
            assert pub.placements[0].url != client.failed[0]
            with pytest.raises(publisher.NotEnoughNodes):  # 6 usable nodes cannot hold 7 shares
                await publisher.publish(
                    SAMPLE,
                    chain=net.chain,
                    keystore=owner,
                    directory=net.directory,
                    client=client,
                    staging=tmp_path / "staging",
                    options=publisher.PublishOptions(layout=Layout(k=2, n=7)),
                )
            await accept_placements(net, pub)
            license_id = await buyer.buy(net.chain, lab, pub.dataset_id, Purpose.AI_TRAINING)
            await key_agent.KeyAgent(net.chain, owner, home=owner.path.parent).tick()
            await buyer.fetch(net.chain, lab, net.directory, client, license_id, tmp_path / "out")
            assert (tmp_path / "out").read_bytes() == big.read_bytes()  # the rebuilt share decodes
    finally:
        await net.stop()
