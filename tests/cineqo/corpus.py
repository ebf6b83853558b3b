"""The seven public-domain novels in tests/data/novels (xz-compressed; see its README).

`novel_bytes(name)` gives a novel's original bytes, decompressed once per process and checked
against `SHA256SUMS`, so a test never depends on anything outside the repository.
"""

from __future__ import annotations

import functools
import hashlib
import lzma

from jr_support import NOVELS

XIYOUJI = "zh_xiyouji_utf8_crlf.txt"
SANGUO = "zh_sanguoyanyi_utf8_crlf.txt"
SHUIHU = "zh_shuihuzhuan_utf8_crlf.txt"
RULIN = "zh_rulinwaishi_gb18030_trad.txt"
PRIDE = "en_pride_and_prejudice_pg1342.txt"
MOBY = "en_moby_dick_pg2701_crlf.txt"
ALICE = "en_alice_in_wonderland_pg11_noheader.txt"
ALL = (XIYOUJI, SANGUO, SHUIHU, RULIN, PRIDE, MOBY, ALICE)


@functools.cache
def _digests() -> dict[str, str]:
    lines = (NOVELS / "SHA256SUMS").read_text(encoding="ascii").splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


@functools.cache
def novel_bytes(name: str) -> bytes:
    """The novel's bytes, exactly as its source published them."""
    data = lzma.decompress((NOVELS / f"{name}.xz").read_bytes())
    if hashlib.sha256(data).hexdigest() != _digests()[name]:
        raise AssertionError(f"{name}: decompressed bytes do not match SHA256SUMS")
    return data
