"""libp2p identity and discovery. py-libp2p runs on trio, so its host lives on its own thread
(started and bridged in :mod:`.host`); the asyncio side only sees ``await``-able calls on
:class:`.host.P2PHost`."""
