"""License terms: the on-chain model and its mapping to C2PA/CAWG, TDMRep and IETF aipref vocabularies.

On-chain (``contracts/src/Types.sol``) each AI use is NotAllowed / Allowed / Constrained, as in
the C2PA/CAWG training-and-data-mining assertion (``cawg.ai_training``...). ``Constrained``
means allowed under the conditions of the full terms text, whose URI and SHA-256 are on-chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

from .errors import TermsError


class Permission(IntEnum):
    NOT_ALLOWED = 0
    ALLOWED = 1
    CONSTRAINED = 2


class Purpose(IntEnum):
    AI_TRAINING = 0
    AI_GENERATIVE_TRAINING = 1
    AI_INFERENCE = 2
    DATA_MINING = 3

    @classmethod
    def parse(cls, text: str) -> Purpose:
        """ "ai_training", "ai-training" or "AI_TRAINING" -> Purpose.AI_TRAINING."""
        key = text.strip().upper().replace("-", "_")
        try:
            return cls[key]
        except KeyError as err:
            names = ", ".join(p.name.lower() for p in cls)
            raise TermsError(f"unknown purpose {text!r}; one of: {names}") from err


# CAWG training-and-data-mining assertion entry names, per purpose.
CAWG_KEYS = {
    Purpose.AI_TRAINING: "cawg.ai_training",
    Purpose.AI_GENERATIVE_TRAINING: "cawg.ai_generative_training",
    Purpose.AI_INFERENCE: "cawg.ai_inference",
    Purpose.DATA_MINING: "cawg.data_mining",
}
# IETF aipref vocabulary categories, for the purposes that have one.
AIPREF_LABELS = {Purpose.AI_TRAINING: "train-ai", Purpose.AI_GENERATIVE_TRAINING: "train-genai"}
_CAWG_USE = {Permission.NOT_ALLOWED: "notAllowed", Permission.ALLOWED: "allowed", Permission.CONSTRAINED: "constrained"}


@dataclass(frozen=True, slots=True)
class LicenseTerms:
    ai_training: Permission = Permission.NOT_ALLOWED
    ai_generative_training: Permission = Permission.NOT_ALLOWED
    ai_inference: Permission = Permission.NOT_ALLOWED
    data_mining: Permission = Permission.NOT_ALLOWED
    commercial_use: bool = False
    derivatives_allowed: bool = False
    attribution_required: bool = True
    revocable: bool = True
    license_duration: int = 0
    """Seconds from key delivery; 0 = perpetual."""
    terms_uri: str = ""
    terms_hash: bytes = bytes(32)

    def permission(self, purpose: Purpose) -> Permission:
        return {
            Purpose.AI_TRAINING: self.ai_training,
            Purpose.AI_GENERATIVE_TRAINING: self.ai_generative_training,
            Purpose.AI_INFERENCE: self.ai_inference,
            Purpose.DATA_MINING: self.data_mining,
        }[purpose]

    def allows(self, purpose: Purpose) -> bool:
        return self.permission(purpose) != Permission.NOT_ALLOWED

    def with_text(self, text: str, uri: str) -> LicenseTerms:
        """These terms bound to a full license text: its URI and SHA-256."""
        return replace(self, terms_uri=uri, terms_hash=hashlib.sha256(text.encode()).digest())

    def to_abi(self) -> tuple[Any, ...]:
        if not 0 <= self.license_duration < 2**64:
            raise TermsError("license_duration out of range")
        if len(self.terms_hash) != 32:
            raise TermsError("terms_hash must be 32 bytes")
        return (
            int(self.ai_training),
            int(self.ai_generative_training),
            int(self.ai_inference),
            int(self.data_mining),
            self.commercial_use,
            self.derivatives_allowed,
            self.attribution_required,
            self.revocable,
            self.license_duration,
            self.terms_uri,
            self.terms_hash,
        )

    @classmethod
    def from_abi(cls, t: Any) -> LicenseTerms:
        return cls(
            Permission(t[0]),
            Permission(t[1]),
            Permission(t[2]),
            Permission(t[3]),
            bool(t[4]),
            bool(t[5]),
            bool(t[6]),
            bool(t[7]),
            int(t[8]),
            str(t[9]),
            bytes(t[10]),
        )

    def to_cawg(self) -> dict[str, Any]:
        """The C2PA/CAWG training-and-data-mining assertion these terms amount to."""
        entries: dict[str, Any] = {}
        for purpose, key in CAWG_KEYS.items():
            entry: dict[str, Any] = {"use": _CAWG_USE[self.permission(purpose)]}
            if self.permission(purpose) == Permission.CONSTRAINED and self.terms_uri:
                entry["constraint_info"] = self.terms_uri
            entries[key] = entry
        return {"label": "cawg.training-mining", "data": {"entries": entries}}

    def to_tdmrep(self) -> dict[str, Any]:
        """W3C TDMRep: tdm-reservation 1 unless text and data mining is allowed."""
        reserved = self.data_mining == Permission.NOT_ALLOWED and self.ai_training == Permission.NOT_ALLOWED
        out: dict[str, Any] = {"tdm-reservation": 1 if reserved else 0}
        if self.terms_uri:
            out["tdm-policy"] = self.terms_uri
        return out

    def to_tdmrep_policy(self, *, uid: str, target: str, assigner: str) -> dict[str, Any]:
        """W3C TDMRep for a crawler-facing page: ``tdm-reservation`` 1 (text-and-data-mining rights
        are reserved: the data is only mined under a license), ``tdm-policy`` the policy's ``uid``,
        and ``policy``, the ODRL Offer in the TDMRep profile: permission ``tdm:mine`` of
        ``target`` (duty to compensate, and to attribute when required) when these terms allow
        mining or training, else its prohibition. :meth:`to_tdmrep` is the older, shorter form
        (kept: version-1 consent receipts state it)."""
        mines = self.data_mining != Permission.NOT_ALLOWED or self.ai_training != Permission.NOT_ALLOWED
        rule: dict[str, Any] = {"target": target, "action": "tdm:mine"}
        if mines:
            rule["duty"] = [{"action": "compensate"}] + ([{"action": "attribute"}] if self.attribution_required else [])
        policy: dict[str, Any] = {
            "@context": ["http://www.w3.org/ns/odrl.jsonld", {"tdm": "http://www.w3.org/ns/tdmrep#"}],
            "@type": "Offer",
            "profile": "http://www.w3.org/ns/tdmrep",
            "uid": uid,
            "assigner": assigner,
            "permission" if mines else "prohibition": [rule],
        }
        return {"tdm-reservation": 1, "tdm-policy": uid, "policy": policy}

    def to_aipref(self) -> dict[str, Any]:
        """IETF aipref usage preferences (draft-ietf-aipref-vocab): ``train-ai`` from ai_training
        and ``train-genai`` from ai_generative_training, ``y`` where the terms allow the use (under
        a license; constrained counts as allowed under the terms text) and ``n`` where they do not;
        ``content_usage`` is the ``Content-Usage`` header value. Inference and data mining have no
        category of their own in the vocabulary and are left out."""
        categories = {
            label: "n" if self.permission(p) == Permission.NOT_ALLOWED else "y" for p, label in AIPREF_LABELS.items()
        }
        out: dict[str, Any] = {
            "content_usage": ", ".join(f"{k}={v}" for k, v in categories.items()),
            "categories": categories,
        }
        if self.terms_uri:
            out["conditions"] = self.terms_uri
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "ai_training": self.ai_training.name.lower(),
            "ai_generative_training": self.ai_generative_training.name.lower(),
            "ai_inference": self.ai_inference.name.lower(),
            "data_mining": self.data_mining.name.lower(),
            "commercial_use": self.commercial_use,
            "derivatives_allowed": self.derivatives_allowed,
            "attribution_required": self.attribution_required,
            "revocable": self.revocable,
            "license_duration": self.license_duration,
            "terms_uri": self.terms_uri,
            "terms_hash": self.terms_hash.hex(),
        }


TRAINING_ALLOWED = LicenseTerms(
    ai_training=Permission.ALLOWED,
    ai_generative_training=Permission.CONSTRAINED,
    ai_inference=Permission.ALLOWED,
    data_mining=Permission.ALLOWED,
    commercial_use=True,
)
"""Sensible defaults for a dataset offered for training."""
