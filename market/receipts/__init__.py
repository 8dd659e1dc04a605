"""Consent receipts and the documents a lab files from them.

- :mod:`.common`: canonical JSON, field-by-field differences, chain look-ups shared by versions;
- :mod:`.v1`: the first receipt format (still verified);
- :mod:`.v2`: the current format (domain-tagged hash, CAWG terms, consent at purchase and at
  writing, files read);
- :mod:`.facts`: the chain-fixed facts of a receipt, as the export formats state them;
- :mod:`.spdx`, :mod:`.croissant`, :mod:`.euaiact`: one document for a whole training mix;
- :mod:`.documents`: verifying an exported document against the chain.

:mod:`market.audit` is the front door (build, verify, export).
"""
