"""Every figure the code cites has its entry, with a source, in docs/facts.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITE = re.compile(r"FACTS: ([a-z0-9_.]+(?:, [a-z0-9_.]+)*)")


def test_every_cited_fact_has_an_entry_with_a_source() -> None:
    facts = (ROOT / "docs" / "facts.md").read_text(encoding="utf-8")
    entries = dict(re.findall(r"^### `([a-z0-9_.]+)`[^\n]*\n(.*?)(?=^### |^## |\Z)", facts, re.M | re.S))
    cited: set[str] = set()
    for path in (ROOT / "simdb").rglob("*.py"):
        for match in CITE.finditer(path.read_text(encoding="utf-8")):
            cited.update(key.rstrip(".") for key in match.group(1).split(", "))
    assert len(cited) > 20
    missing = sorted(cited - entries.keys())
    assert not missing, f"cited in simdb/ but not in docs/facts.md: {missing}"
    unsourced = sorted(
        k for k in cited if "**Source" not in entries[k] and "**Status:** **assumed" not in entries[k]
    )
    assert not unsourced, f"entries without a source or an 'assumed' status: {unsourced}"
