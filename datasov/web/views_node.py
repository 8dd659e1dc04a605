"""The operator's Node page and the Network page.

Node (with ``datasov ui --node-home DIR``): the shares the operator accepted (``ShareAccepted``),
disk used and free (the node's ``/v1/health``), proofs made and missed per epoch (``StorageProofs``,
``ProofMissed``) drawn as an SVG chart, fees earned, unclaimed and withdrawable, stake and slashes;
Claim and withdraw moves every unclaimed fee to the wallet. Network: every node this home's
directory lists, with whether it answers now, how fast, and its stake on-chain.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from aiohttp import web
from markupsafe import Markup

from contracts.chain import Chain
from contracts.proofs import proven_shares
from datasov.cli.ui import tokens
from storage_node.errors import NodeError

from .chart import EpochPoint, proofs_chart
from .render import page
from .state import STATE, NodeSide, WebState

routes = web.RouteTableDef()
EPOCHS_SHOWN = 30
ANNOUNCED = ("region", "ask", "capacity", "peer_id", "available", "proofs_ok", "proofs_missed")
"""What a chain-backed directory knows of a node beyond address and URL (a static list knows none)."""
EPOCHS_MIN = 12  # the chart shows at least this many epochs (where the chain has them)


async def _held(chain: Chain, operator: str) -> list[tuple[int, int]]:
    """(deal, share) pairs this operator accepted and still provides."""
    logs = await chain.storage_market.events.ShareAccepted().get_logs(
        from_block=chain.deployment.deployed_block, argument_filters={"provider": operator}
    )
    pairs = sorted({(int(e["args"]["dealId"]), int(e["args"]["shareIndex"])) for e in logs})
    out = []
    for deal_id, index in pairs:
        if (await chain.get_share(deal_id, index)).provider.lower() == operator.lower():
            out.append((deal_id, index))
    return out


async def node_report(chain: Chain, node: NodeSide, client_health: dict[str, Any] | None) -> dict[str, Any]:
    operator = node.operator.address
    held = await _held(chain, operator)
    deals = {d: await chain.get_deal(d) for d in {d for d, _ in held}}
    proven: Counter[int] = Counter()
    earned: Counter[int] = Counter()
    logs = await chain.storage_market.events.StorageProofs().get_logs(
        from_block=chain.deployment.deployed_block, argument_filters={"provider": operator}
    )  # one event per proveStorage call, listing its proofs
    for e in logs:
        epoch = int(e["args"]["epoch"])
        for deal_id, index in proven_shares(bytes(e["args"]["shares"])):
            if (deal_id, index) in held:
                proven[epoch] += 1
                earned[epoch] += deals[deal_id].fee_per_share_epoch
    missed_logs = await chain.storage_market.events.ProofMissed().get_logs(
        from_block=chain.deployment.deployed_block, argument_filters={"provider": operator}
    )
    missed = Counter(int(e["args"]["epoch"]) for e in missed_logs)
    shares = []
    unclaimed = 0
    for deal_id, index in held:
        share = await chain.get_share(deal_id, index)
        fee = deals[deal_id].fee_per_share_epoch
        unclaimed += share.unclaimed * fee
        shares.append(
            {
                "deal": deal_id,
                "index": index,
                "dataset": deals[deal_id].dataset_id,
                "faulty": share.faulty,
                "last_proven": share.last_proven - 1 if share.last_proven else None,
                "unclaimed": share.unclaimed * fee,
            }
        )
    epoch = await chain.current_epoch()
    first = min([*proven, *missed, epoch - EPOCHS_MIN + 1])
    span = range(max(first, epoch - EPOCHS_SHOWN + 1, 0), epoch + 1)
    points = [EpochPoint(e, proven[e], missed[e], earned[e]) for e in span]
    op = await chain.get_operator(operator)
    return {
        "operator": operator,
        "url": node.url,
        "health": client_health,
        "shares": shares,
        "epoch": epoch,
        "points": list(reversed(points)),
        "chart": Markup(proofs_chart(points)),  # noqa: S704 - built from numbers only (chart.py)
        "proofs_total": sum(proven.values()),
        "missed_total": sum(missed.values()),
        "earned_total": sum(earned.values()),
        "unclaimed": unclaimed,
        "withdrawable": await chain.storage_balance(operator),
        "wallet": await chain.balance_of(operator),
        "stake": op.stake,
        "registered": op.registered,
        "slashed": sum(int(e["args"]["slashed"]) for e in missed_logs),
        "slashes": [
            {
                "epoch": int(e["args"]["epoch"]),
                "deal": int(e["args"]["dealId"]),
                "index": int(e["args"]["shareIndex"]),
                "slashed": int(e["args"]["slashed"]),
            }
            for e in missed_logs
        ],
        "peers": (client_health or {}).get("peers"),
    }


async def _health(state: WebState, url: str | None) -> dict[str, Any] | None:
    if url is None:
        return None
    try:
        return await asyncio.wait_for(state.client.health(url), 5.0)
    except (NodeError, TimeoutError):
        return None


@routes.get("/node")
@page("node.html")
async def node(request: web.Request) -> dict[str, Any]:
    state = request.app[STATE]
    if state.node is None:
        return {"r": None}
    chain = await state.chain()
    return {"r": await node_report(chain, state.node, await _health(state, state.node.url)), "tokens": tokens}


@routes.post("/node/claim")
async def claim(request: web.Request) -> web.Response:
    """Claim every share's unclaimed fees, then withdraw the storage-market balance to the wallet."""
    state = request.app[STATE]
    if state.node is None:
        raise web.HTTPNotFound(text="no node: start the app with --node-home DIR")
    chain = await state.chain()
    operator = state.node.operator
    for deal_id, index in await _held(chain, operator.address):
        if (await chain.get_share(deal_id, index)).unclaimed:
            await chain.claim_fees(operator, deal_id, index)
    if await chain.storage_balance(operator.address):
        await chain.withdraw(operator)
    raise web.HTTPSeeOther("/node")


@routes.get("/network")
@page("network.html")
async def network(request: web.Request) -> dict[str, Any]:
    state = request.app[STATE]
    chain = await state.chain()
    nodes = list(await state.directory.nodes())

    async def probe(url: str) -> tuple[float | None, dict[str, Any] | str]:
        start = time.perf_counter()
        try:
            health = await asyncio.wait_for(state.client.health(url), 3.0)
        except (NodeError, TimeoutError) as err:
            return None, str(err) or "no answer in 3 s"
        return time.perf_counter() - start, health

    probes = await asyncio.gather(*(probe(n.url) for n in nodes))
    out = []
    for info, (rtt, health) in zip(nodes, probes, strict=True):
        op = await chain.get_operator(info.address)
        row: dict[str, Any] = {"address": info.address, "url": info.url, "stake": op.stake, "registered": op.registered}
        row["announced"] = {k: getattr(info, k) for k in ANNOUNCED if getattr(info, k, None) not in (None, "", 0, ())}
        if rtt is None:
            row.update(reachable=False, problem=health)
        else:
            assert isinstance(health, dict)
            same = str(health.get("address", "")).lower() == info.address.lower()
            row.update(
                reachable=same,
                rtt_ms=round(rtt * 1000, 1),
                free=int(health.get("free", 0)),
                problem="" if same else f"answers as {health.get('address')}, not {info.address}",
            )
        out.append(row)
    source = getattr(state.directory, "source", "this home's node list (config.json)")
    return {"nodes": out, "source": source, "reachable": sum(r["reachable"] for r in out)}


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_routes(routes)
