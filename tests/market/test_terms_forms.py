"""The owner's terms in the forms a crawler-facing site publishes: a TDMRep policy (tdm-reservation
and an ODRL Offer in the TDMRep profile) and IETF aipref Content-Usage categories."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from contracts.terms import LicenseTerms, Permission

permissions = st.sampled_from(list(Permission))
terms_st = st.builds(
    LicenseTerms,
    ai_training=permissions,
    ai_generative_training=permissions,
    ai_inference=permissions,
    data_mining=permissions,
    attribution_required=st.booleans(),
    terms_uri=st.sampled_from(["", "https://example.org/terms"]),
)


@given(terms=terms_st)
def test_tdmrep_policy_offers_mining_exactly_when_the_terms_allow_it(terms: LicenseTerms) -> None:
    form = terms.to_tdmrep_policy(uid="urn:p", target="urn:d", assigner="urn:o")
    assert form["tdm-reservation"] == 1  # rights reserved: mined only under a license
    policy = form["policy"]
    assert form["tdm-policy"] == policy["uid"] == "urn:p"
    assert (policy["@type"], policy["profile"], policy["assigner"]) == ("Offer", "http://www.w3.org/ns/tdmrep", "urn:o")
    mines = terms.data_mining != Permission.NOT_ALLOWED or terms.ai_training != Permission.NOT_ALLOWED
    rules = policy.get("permission" if mines else "prohibition")
    assert rules is not None
    assert [(r["target"], r["action"]) for r in rules] == [("urn:d", "tdm:mine")]
    assert ("permission" in policy) != ("prohibition" in policy)
    if mines:
        duties = [d["action"] for d in rules[0]["duty"]]
        assert duties == ["compensate", *(["attribute"] if terms.attribution_required else [])]
    json.dumps(form)  # plain JSON


@given(terms=terms_st)
def test_aipref_categories_follow_the_terms(terms: LicenseTerms) -> None:
    form = terms.to_aipref()
    expected = {
        "train-ai": "n" if terms.ai_training == Permission.NOT_ALLOWED else "y",
        "train-genai": "n" if terms.ai_generative_training == Permission.NOT_ALLOWED else "y",
    }
    assert form["categories"] == expected
    assert form["content_usage"] == f"train-ai={expected['train-ai']}, train-genai={expected['train-genai']}"
    assert form.get("conditions", "") == terms.terms_uri
