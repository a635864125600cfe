"""Signed, anonymised aggregate documents on Automerge, and the statistics merged from them.

Pure: no I/O, no clock, no randomness source read implicitly.

Modules: `campaign` (definitions, `group_for`), `schema` (declared shapes, the
one writer), `documents` (the four kinds), `signing` (signed releases and the
reader's rules), `disclosure` (what may leave a school), `statistics` (what a
district merges), `docio` (safe load/save/sync), `crypto` (every nacl call).
See docs/crdt.md.
"""
