"""A node's home directory as the operator's commands and the devnet see it: ``node.json`` (where it
listens, what it offers, on what terms) next to the operator key and the libp2p key.

``node.json`` (version 1)::

    {"version": 1, "host": "127.0.0.1", "port": 7401, "capacity": 53687091200,
     "ask": 0, "region": "", "public_url": null, "p2p": "/ip4/127.0.0.1/tcp/7501"}

``ask`` is in token base units per GiB per epoch; ``public_url`` is the URL to announce when it is
not ``http://host:port`` (behind NAT or a proxy); ``p2p`` the libp2p multiaddr ``node run`` listens on
by default (null: no libp2p unless ``--p2p``). Older files without ask/region/p2p read as 0 / "" / null.

``datasov node init`` creates the libp2p key too, so the first ``node join`` announces the peer id
(and, with a fixed ``p2p`` port, the multiaddr) that ``node run`` will have: no second announcement.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from libp2p.peer.id import ID

from contracts.announcements import Announcement
from storage_node.p2p.identity import KEY_FILE as P2P_KEY_FILE
from storage_node.p2p.identity import load_or_create_p2p_key

CONFIG_FILE = "node.json"


class NodeHomeError(ValueError):
    """``node.json`` is missing or malformed."""


@dataclass(frozen=True, slots=True)
class NodeHome:
    host: str
    port: int
    capacity: int
    ask: int = 0
    region: str = ""
    public_url: str | None = None
    p2p: str | None = None  # libp2p listen multiaddr (no /p2p/ part)
    version: int = 1

    @property
    def p2p_addrs(self) -> tuple[str, ...]:
        """The multiaddrs to announce before the node runs: ``p2p`` when its port is fixed (with port 0
        the port is known only once ``node run`` listens: it announces then)."""
        if self.p2p is None or self.p2p.rstrip("/").endswith("/tcp/0"):
            return ()
        return (self.p2p,)

    @property
    def url(self) -> str:
        """The URL to announce: ``public_url`` or ``http://host:port``."""
        return self.public_url or f"http://{self.host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        (home / CONFIG_FILE).write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, home: Path) -> NodeHome:
        path = home / CONFIG_FILE
        try:
            obj = json.loads(path.read_text())
            return cls(
                host=str(obj["host"]),
                port=int(obj["port"]),
                capacity=int(obj["capacity"]),
                ask=int(obj.get("ask", 0)),
                region=str(obj.get("region", "")),
                public_url=obj.get("public_url"),
                p2p=obj.get("p2p"),
            )
        except FileNotFoundError as err:
            raise NodeHomeError(f"{home} is not a node home (no {CONFIG_FILE})") from err
        except (ValueError, KeyError, TypeError) as err:
            raise NodeHomeError(f"{path} is malformed: {err}") from err


def peer_id_of(home: Path) -> str:
    """The node's libp2p peer id ("" if it has no libp2p key yet)."""
    if not (home / P2P_KEY_FILE).exists():
        return ""
    return ID.from_pubkey(load_or_create_p2p_key(home).public_key).to_base58()


def announcement_for(
    home: Path,
    config: NodeHome,
    *,
    operator: str,
    chain_id: int,
    url: str | None = None,
    multiaddrs: tuple[str, ...] = (),
    peer_id: str | None = None,
) -> Announcement:
    """What this node announces (``issued_at`` 0: :func:`storage_node.membership.ensure_announced`
    stamps it). ``url`` overrides the configured one (a node listening on port 0 knows it once started)."""
    pid = peer_id_of(home) if peer_id is None else peer_id
    return Announcement(
        operator=operator,
        http_url=config.public_url or url or config.url,
        chain_id=chain_id,
        capacity=config.capacity,
        ask=config.ask,
        region=config.region,
        peer_id=pid,
        multiaddrs=multiaddrs or (config.p2p_addrs if peer_id is None and pid else ()),
    )
