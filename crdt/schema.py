"""Declared shapes of Préau's documents, and the one writer and reader that enforce them.

Nothing reaches an Automerge document except through `write_fields`, which
checks every key and value against the document kind's declared schema
before opening a transaction: a pupil's name or id has no field to go into,
so it cannot be written by mistake. Readers check the same schema and ignore
unknown keys (a newer writer may add fields).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from automerge.core import ROOT, Document, ObjType, ScalarType

from .docio import _guard, actor_for
from .errors import DocumentError, SchemaError

SCHEMA_VERSION = 1
KINDS = ("release", "aggregate", "campaign", "receipts")
COLUMNS = ("besoin", "fragile", "seuil2", "absent", "pending")
"""Cells of one exercise row: the four GROUPS, then `pending` (scored, thresholds not published yet)."""

DOC_ID = re.compile(r"^[a-z0-9][a-z0-9:._-]{2,127}$")
_EX_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,62})[a-z0-9]$")
_HEX32 = re.compile(r"^[0-9a-f]{64}$")
MARKER_HIDDEN = "x"
_MARKER = re.compile(r"^(?:≤\d{1,4}|x)$")
MAX_COUNT = 10_000_000


# -- field types -------------------------------------------------------------


class Field:
    def check(self, value: Any, loc: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Field):
    max_len: int = 200
    pattern: re.Pattern | None = None
    choices: tuple[str, ...] | None = None

    def check(self, value: Any, loc: str) -> None:
        if not isinstance(value, str) or len(value) > self.max_len:
            raise SchemaError(f"{loc}: must be a text of at most {self.max_len} characters")
        if self.pattern is not None and not self.pattern.match(value):
            raise SchemaError(f"{loc}: {value!r} does not have the declared form")
        if self.choices is not None and value not in self.choices:
            raise SchemaError(f"{loc}: must be one of {', '.join(self.choices)}")


@dataclass(frozen=True)
class Int(Field):
    lo: int = 0
    hi: int = MAX_COUNT

    def check(self, value: Any, loc: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not self.lo <= value <= self.hi:
            raise SchemaError(f"{loc}: must be a whole number between {self.lo} and {self.hi}")


@dataclass(frozen=True)
class Bool(Field):
    def check(self, value: Any, loc: str) -> None:
        if not isinstance(value, bool):
            raise SchemaError(f"{loc}: must be true or false")


@dataclass(frozen=True)
class Cell(Field):
    """A count, or (in tables that leave the district) a suppression marker: "≤10" or "x"."""

    markers: bool = False

    def check(self, value: Any, loc: str) -> None:
        if isinstance(value, str) and self.markers and _MARKER.match(value):
            return
        Int(0, MAX_COUNT).check(value, loc)


@dataclass(frozen=True)
class Map(Field):
    fields: Mapping[str, Field]
    optional: frozenset[str] = frozenset()

    def check(self, value: Any, loc: str) -> None:
        if not isinstance(value, Mapping):
            raise SchemaError(f"{loc or 'document'}: must be a table of fields")
        for key in value:
            if key not in self.fields:
                raise SchemaError(f"{_join(loc, key)}: is not a declared field of this document; nothing was written")
        for key, spec in self.fields.items():
            if value.get(key) is not None:
                spec.check(value[key], _join(loc, key))


@dataclass(frozen=True)
class MapOf(Field):
    key: re.Pattern
    value: Field
    max_keys: int = 100

    def check(self, value: Any, loc: str) -> None:
        if not isinstance(value, Mapping):
            raise SchemaError(f"{loc}: must be a table")
        if len(value) > self.max_keys:
            raise SchemaError(f"{loc}: has more than {self.max_keys} entries")
        for key, item in value.items():
            if not isinstance(key, str) or not self.key.match(key):
                raise SchemaError(f"{loc}: key {key!r} does not have the declared form; nothing was written")
            self.value.check(item, _join(loc, key))


@dataclass(frozen=True)
class ListOf(Field):
    item: Field
    max_len: int = 100

    def check(self, value: Any, loc: str) -> None:
        if not isinstance(value, (list, tuple)) or len(value) > self.max_len:
            raise SchemaError(f"{loc}: must be a list of at most {self.max_len} entries")
        for i, item in enumerate(value):
            self.item.check(item, f"{loc}[{i}]")


def _join(loc: str, key: str) -> str:
    return f"{loc}.{key}" if loc else key


# -- the declared shapes -----------------------------------------------------

HEADER = {
    "id": Str(128, DOC_ID),
    "kind": Str(16, choices=KINDS),
    "schema": Int(1, 1000),
    "owner": Str(64, _HEX32),
    "campaign": Str(64),
    "release": Int(0, 2**53),
}
_HEADER_MAP = Map(HEADER)
_POLICY = Map({"min_cohort": Int(1, 1000), "min_batch": Int(1, 1000), "small_cell_max": Int(0, 1000)})


def _row(markers: bool) -> Map:
    return Map({**{c: Cell(markers) for c in COLUMNS}, "total": Cell(markers)})


def _release_body(markers: bool) -> dict[str, Field]:
    return {
        "release": Int(0, 2**53),
        "scope": Str(16, choices=("school", "district")),
        "status": Str(16, choices=("published", "withheld")),
        "reason": Str(200),
        "final": Bool(),
        "policy": _POLICY,
        "cohort": Int(0, MAX_COUNT),
        "schools": Map({"contributing": Int(0, MAX_COUNT), "withheld": Int(0, MAX_COUNT)}),
        "exercises": MapOf(_EX_ID, _row(markers), 100),
    }


_EXERCISE = Map(
    {
        "id": Str(64, _EX_ID),
        "name": Str(200),
        "subject": Str(40),
        "score_kind": Str(8),
        "max_score": Int(1, 10_000),
        "items": Int(1, 10_000),
        "thresholds": ListOf(Int(0, 10_000), 2),
    }
)
_DEFINITION = Map(
    {
        "id": Str(64, _EX_ID),
        "name": Str(200),
        "level": Str(8),
        "school_year": Str(9),
        "opens": Str(10),
        "closes": Str(10),
        "illustrative": Bool(),
        "policy": _POLICY,
        "exercises": ListOf(_EXERCISE, 100),
    }
)
_RECEIPT = Map(
    {
        "doc_id": Str(128, DOC_ID),
        "release": Int(0, 2**53),
        "heads": ListOf(Str(64, _HEX32), 64),
        "time": Int(0, 2**53),
    }
)

BODIES: dict[str, Map] = {
    "release": Map(_release_body(False)),
    "aggregate": Map(_release_body(True)),
    "campaign": Map({"release": Int(0, 2**53), "definition": _DEFINITION}),
    "receipts": Map({"release": Int(0, 2**53), "school": Str(64, _HEX32), "receipts": ListOf(_RECEIPT, 100_000)}),
}


@dataclass(frozen=True, slots=True)
class Header:
    """The fields every Préau document starts with; fixed when the document is created."""

    id: str
    kind: str
    schema: int
    owner: bytes
    campaign: str
    release: int


def document_id(kind: str, owner: bytes, campaign: str = "", *, peer: bytes = b"") -> str:
    """A stable id for the one document of `kind` that `owner` writes for a campaign (or for a peer)."""
    parts = [kind, campaign or "-", owner.hex()[:16]]
    if peer:
        parts.append(peer.hex()[:16])
    return ":".join(parts)


def new_document(kind: str, owner: bytes, *, campaign: str = "", doc_id: str | None = None,
                 actor: bytes | None = None) -> Document:
    """A new document with its header written by `owner`, under `actor` if given, else under an actor id derived
    from (owner, doc id) (no randomness read). A node passes a fresh one (see `write_fields`)."""
    if kind not in KINDS:
        raise SchemaError(f"kind: must be one of {', '.join(KINDS)}")
    if not isinstance(owner, bytes) or len(owner) != 32:
        raise SchemaError("owner: must be a 32-byte Ed25519 public key")
    doc_id = doc_id or document_id(kind, owner, campaign)
    header = {"id": doc_id, "kind": kind, "schema": SCHEMA_VERSION, "owner": owner.hex(), "campaign": campaign, "release": 0}
    _HEADER_MAP.check(header, "")
    doc = Document(actor_id=_actor(actor, owner, doc_id))
    with doc.transaction() as tx:
        _write_map(tx, ROOT, header, _HEADER_MAP)
    return doc


def read_header(doc: Document, heads: Sequence[bytes] | None = None) -> Header:
    return _header(read_fields(doc, _HEADER_MAP, heads))


def _header(data: Mapping[str, Any]) -> Header:
    for key in HEADER:
        if key not in data:
            raise DocumentError(f"this is not a Préau document: its header has no {key!r}")
    if data["schema"] != SCHEMA_VERSION:
        raise DocumentError(
            f"document schema version {data['schema']} is not supported (this node reads version {SCHEMA_VERSION}); update Préau"
        )
    return Header(data["id"], data["kind"], data["schema"], bytes.fromhex(data["owner"]), data["campaign"], data["release"])


def _actor(actor: bytes | None, owner: bytes, doc_id: str) -> bytes:
    if actor is None:
        return actor_for(owner, doc_id)
    if not isinstance(actor, bytes) or not 1 <= len(actor) <= 32:
        raise SchemaError("actor: must be 1 to 32 bytes")
    return actor


def write_fields(doc: Document, data: Mapping[str, Any], *, actor: bytes | None = None) -> None:
    """Write `data` into the document after checking it against the kind's declared body.

    Only values that differ are written (history grows with every overwrite).
    Raises SchemaError before touching the document if any key or value is not declared.

    The change is made under `actor` when given, else under the actor derived from (owner, doc id). A writer
    whose copy may be older than what readers hold (a node restored from a backup) must pass a fresh actor
    each time: under the derived one its next change would take a sequence number readers already hold for
    another change, and they would refuse it ("duplicate seq") for ever.
    """
    header = read_header(doc)
    body = BODIES[header.kind]
    body.check(data, "")
    with _guard(DocumentError, "the document could not be written"):
        doc.set_actor(_actor(actor, header.owner, header.id))
        with doc.transaction() as tx:
            _write_map(tx, ROOT, data, body, prune=False)


_SCALAR = {Str: ScalarType.Str, Int: ScalarType.Int, Bool: ScalarType.Boolean}


def _scalar_type(spec: Field, value: Any) -> ScalarType:
    if isinstance(spec, Cell):
        return ScalarType.Str if isinstance(value, str) else ScalarType.Int
    return _SCALAR[type(spec)]


def _put(tx: Any, obj: bytes, key: Any, spec: Field, value: Any, *, insert: bool = False) -> None:
    if isinstance(spec, (Map, MapOf, ListOf)):
        kind = ObjType.List if isinstance(spec, ListOf) else ObjType.Map
        if insert:
            child = tx.insert_object(obj, key, kind)
        else:
            cur = tx.get(obj, key)
            child = cur[1] if cur is not None and cur[0] == kind else tx.put_object(obj, key, kind)
        if isinstance(spec, ListOf):
            _write_list(tx, child, value, spec)
        else:
            _write_map(tx, child, value, spec, prune=True)
        return
    st = _scalar_type(spec, value)
    if insert:
        tx.insert(obj, key, st, value)
        return
    cur = tx.get(obj, key)
    if cur is None or cur[0] != (st, value):
        tx.put(obj, key, st, value)


def _write_map(tx: Any, obj: bytes, data: Mapping[str, Any], spec: Field, prune: bool = True) -> None:
    for key, value in data.items():
        if value is None:  # an optional field the writer clears
            if tx.get(obj, key) is not None:
                tx.delete(obj, key)
            continue
        _put(tx, obj, key, spec.fields[key] if isinstance(spec, Map) else spec.value, value)
    if prune:
        for key in list(tx.keys(obj)):
            if key not in data:
                tx.delete(obj, key)


def _write_list(tx: Any, obj: bytes, items: Sequence[Any], spec: ListOf) -> None:
    have = tx.length(obj)
    for i, item in enumerate(items):
        _put(tx, obj, i, spec.item, item, insert=i >= have)
    for i in range(have - 1, len(items) - 1, -1):
        tx.delete(obj, i)


# -- reading -------------------------------------------------------------------


def read_fields(doc: Document, spec: Map, heads: Sequence[bytes] | None = None, obj: bytes = ROOT) -> dict[str, Any]:
    """Read the declared fields of a map at `heads`, checking types; unknown keys are ignored."""
    with _guard(DocumentError, "the document could not be read"):
        return _read_map(doc, obj, spec, None if heads is None else list(heads), "")


def read_document(doc: Document, heads: Sequence[bytes] | None = None) -> tuple[Header, dict[str, Any]]:
    """The header and the declared body, reading the root map once."""
    h = None if heads is None else list(heads)
    with _guard(DocumentError, "the document could not be read"):
        keys, values = _keys_values(doc, ROOT, h, "")
    header = _header(_read_pairs(doc, keys, values, _HEADER_MAP, h, ""))
    with _guard(DocumentError, "the document could not be read"):
        return header, _read_pairs(doc, keys, values, BODIES[header.kind], h, "")


def _bad(loc: str, what: str) -> DocumentError:
    return DocumentError(f"the document's field {loc or 'root'} {what}")


_INTS = (ScalarType.Int, ScalarType.Uint)


def _read_value(doc: Document, value: Any, spec: Field, heads: list | None, parent: str, key: Any) -> Any:
    kind, ref = value
    tspec = type(spec)
    if tspec is Cell or tspec is Int:  # the hot path: one count
        if type(kind) is tuple and kind[0] in _INTS and type(kind[1]) is int:
            lo, hi = (0, MAX_COUNT) if tspec is Cell else (spec.lo, spec.hi)
            if lo <= kind[1] <= hi:
                return kind[1]
    loc = f"{parent}[{key}]" if isinstance(key, int) else _join(parent, key)
    if tspec is Map or tspec is MapOf:
        if kind != ObjType.Map:
            raise _bad(loc, "should be a map")
        return _read_map(doc, ref, spec, heads, loc)
    if tspec is ListOf:
        if kind != ObjType.List:
            raise _bad(loc, "should be a list")
        n = doc.length(ref, heads=heads)
        if n > spec.max_len:
            raise _bad(loc, f"has more than {spec.max_len} entries")
        return [_read_value(doc, doc.get(ref, i, heads=heads), spec.item, heads, loc, i) for i in range(n)]
    if not isinstance(kind, tuple):
        raise _bad(loc, "should be a plain value")
    st, raw = kind
    if st == ScalarType.F64:
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)  # JavaScript writers store small numbers as floats
    elif st not in (ScalarType.Str, ScalarType.Int, ScalarType.Uint, ScalarType.Boolean):
        raise _bad(loc, "has a value type Préau does not use")
    try:
        spec.check(raw, loc)
    except SchemaError as exc:
        raise DocumentError(f"the document is not valid: {exc}") from None
    return raw


def _keys_values(doc: Document, obj: bytes, heads: list | None, loc: str) -> tuple[list, list]:
    keys = doc.keys(obj, heads=heads)
    values = doc.values(obj, heads=heads)  # same (sorted) order as keys
    if len(keys) != len(values):
        raise _bad(loc, "could not be read consistently")
    return keys, values


def _read_map(doc: Document, obj: bytes, spec: Field, heads: list | None, loc: str) -> dict[str, Any]:
    keys, values = _keys_values(doc, obj, heads, loc)
    return _read_pairs(doc, keys, values, spec, heads, loc)


def _read_pairs(doc: Document, keys: list, values: list, spec: Field, heads: list | None, loc: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if type(spec) is Map:
        fields = spec.fields
        for key, value in zip(keys, values):
            sub = fields.get(key)
            if sub is not None:  # unknown fields are ignored: a newer writer may add some
                out[key] = _read_value(doc, value, sub, heads, loc, key)
        return out
    if len(keys) > spec.max_keys:
        raise _bad(loc, f"has more than {spec.max_keys} entries")
    sub = spec.value
    counts = type(sub) is Map and all(type(f) is Cell for f in sub.fields.values())
    for key, value in zip(keys, values):
        if not spec.key.match(key):
            raise _bad(_join(loc, key), "is not a valid key")
        if counts and value[0] == ObjType.Map:
            out[key] = _read_counts(doc, value[1], sub, heads, _join(loc, key))
        else:
            out[key] = _read_value(doc, value, sub, heads, loc, key)
    return out


def _read_counts(doc: Document, obj: bytes, spec: Map, heads: list | None, loc: str) -> dict[str, Any]:
    """The hot loop of every read: one exercise row of plain counts (anything else takes the slow path)."""
    keys, values = _keys_values(doc, obj, heads, loc)
    fields = spec.fields
    out: dict[str, Any] = {}
    for key, value in zip(keys, values):
        kind = value[0]
        # A plain int can only come from Int or Uint here: Counter values make Automerge
        # panic before we see them (caught as DocumentError), bools are not `int` by type.
        if type(kind) is tuple:
            raw = kind[1]
            if type(raw) is int and 0 <= raw <= MAX_COUNT and key in fields:
                out[key] = raw
                continue
        if key in fields:
            out[key] = _read_value(doc, value, fields[key], heads, loc, key)
    return out
