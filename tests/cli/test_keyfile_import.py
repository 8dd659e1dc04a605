"""The CLI imports eth_account without py_ecc's BLS12-381 (datasov.cli.keyfile_import), and nothing else changes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHECK = textwrap.dedent(
    """
    import sys
    import datasov.cli  # installs the hook
    import eth_account
    from eth_keyfile import keyfile

    assert keyfile.__name__ == "eth_keyfile.keyfile"
    assert "py_ecc.bls" not in sys.modules and "py_ecc.bls12_381" not in sys.modules, "BLS imported"
    account = eth_account.Account.create()
    sealed = eth_account.Account.encrypt(account.key, "pw", kdf="pbkdf2", iterations=2)
    assert eth_account.Account.decrypt(sealed, "pw") == account.key
    proxy_pk = keyfile.bls.SkToPk(5)  # first use imports the real BLS
    import py_ecc.bls
    import py_ecc.bls12_381

    assert type(py_ecc.bls12_381).__module__ != "datasov.cli.keyfile_import"
    assert hasattr(py_ecc.bls12_381, "G1") and hasattr(py_ecc.bls, "G2Basic"), "stand-ins left behind"
    assert keyfile.curve_order == py_ecc.bls12_381.curve_order
    assert proxy_pk == py_ecc.bls.G2ProofOfPossession.SkToPk(5)
    print("ok")
    """
)


def test_eth_account_loads_without_bls_and_keeps_py_eccs_values() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
