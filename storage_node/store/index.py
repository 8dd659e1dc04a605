"""The share index: SQLite (the standard library's ``sqlite3``), with a schema version and forward
migrations. The tables are the ones sqlite-utils made for the node before (same columns, types and
keys: an index written by an older node opens unchanged); plain SQL keeps sqlite-utils, and the
pandas it imports when installed, out of every node process's start-up (about 0.45 s of CPU)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import Replayed, SchemaError

SHARE_COLUMNS = (
    "dataset",
    "idx",
    "root",
    "size",
    "leaf_size",
    "block_size",
    "deal_id",
    "state",
    "stored_at",
    "expires_at",
    "owner",
    "share_proof",
)


def _v1(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE "shares" (
   "dataset" TEXT,
   "idx" INTEGER,
   "root" TEXT,
   "size" INTEGER,
   "leaf_size" INTEGER,
   "block_size" INTEGER,
   "deal_id" INTEGER,
   "state" TEXT,
   "stored_at" REAL,
   "expires_at" REAL,
   PRIMARY KEY ("dataset", "idx")
)"""
    )  # state: "ok" | "quarantined"; expires_at 0: no expiry
    db.execute(
        """CREATE TABLE "nonces" (
   "signer" TEXT,
   "nonce" TEXT,
   "expires_at" REAL,
   PRIMARY KEY ("signer", "nonce")
)"""
    )
    db.execute('CREATE INDEX "idx_nonces_expires_at"\n    ON "nonces" ("expires_at")')


def _v2(db: sqlite3.Connection) -> None:
    """Remember who uploaded each share: only they may order its deletion."""
    db.execute("""ALTER TABLE "shares" ADD COLUMN "owner" TEXT NOT NULL DEFAULT ''""")


def _v3(db: sqlite3.Connection) -> None:
    """Keep each share's Merkle path to its deal's commitment root (the prover submits it)."""
    db.execute("""ALTER TABLE "shares" ADD COLUMN "share_proof" TEXT NOT NULL DEFAULT ''""")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True, slots=True)
class ShareRecord:
    dataset: str
    idx: int
    root: bytes
    size: int
    leaf_size: int
    block_size: int
    deal_id: int
    state: str
    stored_at: float
    expires_at: float
    owner: str = ""  # address that signed the storage order
    share_proof: tuple[bytes, ...] = ()  # siblings: share root -> the deal's commitment root

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ShareRecord:
        return cls(
            row["dataset"],
            row["idx"],
            bytes.fromhex(row["root"]),
            row["size"],
            row["leaf_size"],
            row["block_size"],
            row["deal_id"],
            row["state"],
            row["stored_at"],
            row["expires_at"],
            row.get("owner", ""),
            _split(row.get("share_proof", "")),
        )


def _split(hexes: str) -> tuple[bytes, ...]:
    raw = bytes.fromhex(hexes)
    return tuple(raw[i : i + 32] for i in range(0, len(raw), 32))


class Index:
    """Share metadata and used nonces. Single-writer: call from one thread (the store serialises)."""

    def __init__(self, path: Path) -> None:
        # autocommit (isolation_level None): each statement is its own transaction unless a
        # ``with self._transaction()`` groups several
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self._migrate()

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise SchemaError(f"index schema {version} is newer than this node ({SCHEMA_VERSION})")
        for step in range(version, SCHEMA_VERSION):
            with self._transaction():
                MIGRATIONS[step](self.db)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", [str(step + 1)]
                )

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    def add(self, record: ShareRecord) -> None:
        """Index a committed share (replacing a quarantined record at the same place)."""
        row = asdict(record)
        row["root"] = record.root.hex()
        row["share_proof"] = b"".join(record.share_proof).hex()
        self.db.execute(_INSERT_SHARE, [row[c] for c in SHARE_COLUMNS])

    def _shares(self, where: str = "", args: tuple[Any, ...] = ()) -> list[ShareRecord]:
        rows = self.db.execute(f"SELECT * FROM shares {where}", args).fetchall()  # noqa: S608 - fixed clauses only
        return [ShareRecord.from_row(dict(r)) for r in rows]

    def get(self, dataset: str, idx: int) -> ShareRecord | None:
        rows = self._shares("WHERE dataset = ? AND idx = ?", (dataset, idx))
        return rows[0] if rows else None

    def all(self) -> list[ShareRecord]:
        return self._shares()

    def set_state(self, dataset: str, idx: int, state: str) -> None:
        self.db.execute("UPDATE shares SET state = ? WHERE dataset = ? AND idx = ?", [state, dataset, idx])

    def remove(self, dataset: str, idx: int) -> None:
        self.db.execute("DELETE FROM shares WHERE dataset = ? AND idx = ?", [dataset, idx])

    def used_bytes(self) -> int:
        """Bytes of the shares being served (a quarantined share holds no capacity)."""
        return int(self.db.execute("SELECT COALESCE(SUM(size), 0) FROM shares WHERE state = 'ok'").fetchone()[0])

    def corruptions(self) -> int:
        """How many times a share was found corrupted here, over the node's whole life."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'corruptions'").fetchone()
        return int(row[0]) if row else 0

    def count_corruption(self) -> int:
        with self._transaction():
            count = self.corruptions() + 1
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('corruptions', ?)", [str(count)])
        return count

    def expired(self, now: float) -> list[ShareRecord]:
        return self._shares("WHERE expires_at > 0 AND expires_at < ?", (now,))

    def use_nonce(self, signer: str, nonce: str, expires_at: float) -> None:
        """Record a nonce; raises :class:`Replayed` if this signer used it before."""
        try:
            self.db.execute(
                "INSERT INTO nonces (signer, nonce, expires_at) VALUES (?, ?, ?)", [signer.lower(), nonce, expires_at]
            )
        except sqlite3.IntegrityError as err:
            raise Replayed(f"nonce {nonce} already used by {signer}") from err

    def nonce_used(self, signer: str, nonce: str) -> bool:
        row = self.db.execute("SELECT 1 FROM nonces WHERE signer = ? AND nonce = ?", [signer.lower(), nonce]).fetchone()
        return row is not None

    def forget_nonces(self, now: float | None = None) -> int:
        """Drop nonces of orders that have expired anyway (they can no longer be replayed)."""
        cur = self.db.execute("DELETE FROM nonces WHERE expires_at < ?", [now if now is not None else time.time()])
        return int(cur.rowcount)

    def close(self) -> None:
        self.db.close()


_INSERT_SHARE = (
    "INSERT OR REPLACE INTO shares (dataset, idx, root, size, leaf_size, block_size, deal_id, state, stored_at, "
    "expires_at, owner, share_proof) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)  # the columns of SHARE_COLUMNS, in order


class _Transaction:
    """``BEGIN`` ... ``COMMIT`` (``ROLLBACK`` on an exception) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
