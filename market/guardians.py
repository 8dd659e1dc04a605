"""The owner's side of key guardians: pick guardians, split the data key among them, re-share.

    pick(candidates, m, directory)   distinct announced operators, distinct /24s where addresses are known
    share_key(chain, owner, dataset, key, guardians, t)
        pieces = shamir.split(key, t, m), each sealed to its guardian's X25519 key, one commitment
        each, registered with ``KeyGuardians.setGuardians`` (a new epoch: a new polynomial)

Replacing guardians is ``share_key`` again with the new set: a fresh polynomial, so pieces of the
old epoch say nothing about the new ones and never combine with them (the contract also stops
counting them), and the old commitments are retired with their epoch.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from contracts import pieces, shamir
from contracts.chain import Chain

from .directory import NodeInfo
from .errors import MarketError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger("datasov.guardians")


class GuardianError(MarketError):
    """Guardians could not be picked or set."""


class NotEnoughGuardians(GuardianError):
    """Fewer eligible guardians (announced key, staked, distinct /24) than asked for."""


def _subnet(url: str) -> str | None:
    host = urlsplit(url).hostname or ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if ip.is_loopback:  # a devnet on one machine: no /24 to tell apart
        return None
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ipaddress.ip_network(f"{ip}/24", strict=False))
    return str(ipaddress.ip_network(f"{ip}/48", strict=False))


def pick(
    candidates: Mapping[str, bytes],
    count: int,
    nodes: Sequence[NodeInfo] = (),
    *,
    exclude: Sequence[str] = (),
    distinct_subnets: bool = True,
    rng: random.Random | None = None,
) -> list[str]:
    """``count`` distinct guardian addresses among ``candidates`` (address -> guardian key), at most
    one per /24 among those whose node address the directory knows (loopback devnets share one /24:
    pass ``distinct_subnets=False`` there)."""
    urls = {n.address.lower(): n.url for n in nodes}
    excluded = {a.lower() for a in exclude}
    pool = sorted(a for a in candidates if a.lower() not in excluded)
    (rng or random.SystemRandom()).shuffle(pool)
    chosen: list[str] = []
    subnets: set[str] = set()
    for address in pool:
        subnet = _subnet(urls.get(address.lower(), "")) if distinct_subnets else None
        if subnet is not None and subnet in subnets:
            continue
        chosen.append(address)
        if subnet is not None:
            subnets.add(subnet)
        if len(chosen) == count:
            return chosen
    raise NotEnoughGuardians(
        f"{count} guardians asked for, {len(chosen)} eligible (announced guardian key, staked, distinct /24)"
    )


async def share_key(
    chain: Chain,
    owner: LocalAccount,
    dataset_id: int,
    data_key: bytes,
    guardians: Sequence[str],
    threshold: int,
    *,
    fee_bps: int = 0,
) -> int:
    """Split ``data_key`` t-of-m among ``guardians`` and register the set; returns its epoch."""
    keys = {a.lower(): k for a, k in (await chain.guardian_candidates()).items()}
    missing = [g for g in guardians if g.lower() not in keys]
    if missing:
        raise GuardianError(f"not announced or not staked as guardians: {', '.join(missing)}")
    try:
        split = shamir.split(data_key, threshold, len(guardians))
    except shamir.SharingError as err:
        raise GuardianError(str(err)) from err
    epoch = await chain.guardian_epoch(dataset_id) + 1
    commitments = [pieces.commit(dataset_id, epoch, p) for p in split]
    sealed = [pieces.seal_to_guardian(p, keys[g.lower()]) for p, g in zip(split, guardians, strict=True)]
    got = await chain.set_guardians(owner, dataset_id, list(guardians), threshold, commitments, sealed, fee_bps)
    if got != epoch:  # someone else (the owner's other session) set guardians meanwhile
        raise GuardianError(f"guardians were set concurrently (epoch {got}, expected {epoch}): set them again")
    log.info("dataset %d: key shared %d-of-%d, epoch %d", dataset_id, threshold, len(guardians), epoch)
    return epoch
