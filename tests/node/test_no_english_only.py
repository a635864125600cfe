"""No error a person can meet is written in English only: every UserError raised in node/ carries catalog words.

A `UserError("...")` (or any subclass) built from a bare string or f-string reaches the French page or
command line in English. The scan reads the source (every module of node/), finds the UserError family by
its class definitions (less the Faults, built from catalog keys), and flags each such call. The few left
are for developers only (a caller passing the wrong type to the store's API), listed below with why. A
message passed through a variable is not seen: the catalog's own tests and the French runs cover those.
"""
from __future__ import annotations

import ast
import pathlib

NODE = pathlib.Path(__file__).resolve().parents[2] / "node"
CLI = NODE.parent / "cli"

DEVELOPERS_ONLY = {  # (file, the message's first words): never reached by a page or a command
    ("records/store/accounts.py", "the recovery key has no password"),  # API misuse: reset_password is the way
    ("records/store/blobs.py", "a blob's scope is"),  # the node's own code names the scope
    ("records/store/blobs.py", "a blob name is"),
    ("records/store/blobs.py", "a blob is bytes"),
    ("records/store/results.py", "put_campaign takes"),  # wrong type from the caller
    ("records/store/results.py", "save_results takes"),
    ("records/store/snapshot.py", "this store has no recovery wrap"),  # every set-up store has one
}


def _family(trees: dict[str, ast.AST], root: str) -> set[str]:
    names = {root}
    while True:
        more = {c.name for tree in trees.values() for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
                and any((b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")) in names for b in c.bases)}
        if more <= names:
            return names
        names |= more


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp):
        return _text(node.left) or _text(node.right)
    return None


def english_only(root: pathlib.Path = NODE, *more: pathlib.Path) -> list[str]:
    trees = {str(p.relative_to(place.parent if place is not root else root)): ast.parse(p.read_text(encoding="utf-8"))
             for place in (root, *more) for p in sorted(place.rglob("*.py"))}
    # A Fault (and its subclasses) is built from a catalog key or a reason code, never from English.
    family = _family(trees, "UserError") - _family(trees, "Fault")
    found = []
    for name, tree in trees.items():
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call) or not call.args:
                continue
            func = call.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            text = _text(call.args[0])
            if called in family and text is not None and not any(
                    name == f and text.startswith(start) for f, start in DEVELOPERS_ONLY):
                found.append(f"{name}:{call.lineno}: {called}({text[:60]!r}...)")
    return found


def test_no_user_error_is_english_only():
    assert english_only(NODE, CLI) == []  # the command line raises UserError too


def test_the_scan_finds_a_planted_english_only_error(tmp_path):
    import shutil

    shutil.copytree(NODE, tmp_path / "node", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "node" / "federation" / "pools.py", "a", encoding="utf-8") as f:
        f.write('\n\ndef _planted(x):\n    raise Conflict(f"this pool is already {x}")\n')
    with open(tmp_path / "node" / "records" / "store" / "classes.py", "a", encoding="utf-8") as f:
        f.write('\n\ndef _planted():\n    raise InvalidInput("the level must be CP or CE1")\n')
    assert len(english_only(tmp_path / "node")) == 2
