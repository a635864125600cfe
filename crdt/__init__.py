"""Signed, anonymised aggregate documents on Automerge, and the statistics merged from them.

Pure: no I/O, no clock, no randomness source read implicitly.
"""
