"""Typed contents of the four document kinds, and their writers and readers.

- `release`: one school's counts for one campaign (scope "school").
- `aggregate`: a district's counts, same shape, scope "district", small cells hidden.
- `campaign`: a campaign definition written by a district and read by schools.
- `receipts`: a district's acknowledgements of the releases it verified from one school.

Every writer goes through `schema.write_fields`, so only declared fields reach
the bytes.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from automerge.core import Document

from .campaign import Campaign, Policy, parse_campaign
from .errors import CampaignError, CampaignRefusedError, DocumentError, PolicyBelowFloorError, SchemaError, WrongKindError
from .schema import COLUMNS, Header, new_document, read_document, read_header, write_fields

_CELLS = operator.itemgetter(*COLUMNS)


@dataclass(frozen=True, slots=True)
class Row:
    """One exercise: a count per COLUMNS entry and the total; in aggregates a cell may be "≤N" or "x"."""

    exercise: str
    cells: tuple[int | str, ...]
    total: int | str

    def __post_init__(self) -> None:
        if len(self.cells) != len(COLUMNS):
            raise SchemaError(f"exercises.{self.exercise}: needs {len(COLUMNS)} cells ({', '.join(COLUMNS)})")

    def get(self, column: str) -> int | str:
        return self.total if column == "total" else self.cells[COLUMNS.index(column)]

    def to_dict(self) -> dict[str, int | str]:
        return {**dict(zip(COLUMNS, self.cells)), "total": self.total}

    @classmethod
    def from_counts(cls, exercise: str, counts: Mapping[str, int]) -> "Row":
        cells = tuple(int(counts.get(c, 0)) for c in COLUMNS)
        return cls(exercise, cells, sum(cells))

    @classmethod
    def from_dict(cls, exercise: str, data: Mapping[str, Any]) -> "Row":
        return cls(exercise, _CELLS(data), data["total"])


@dataclass(frozen=True, slots=True)
class ReleaseContent:
    """What one release publishes. Built by `disclosure.next_release` (schools) or `statistics.build_aggregate`."""

    campaign: str
    release: int
    status: str  # "published" or "withheld"
    reason: str
    policy: Policy
    rows: tuple[Row, ...] = ()
    cohort: int | None = None
    final: bool = False
    scope: str = "school"  # "school" (kind release), "district" (kind aggregate), "pool" (a secure-aggregation sum, statistics only)
    schools_contributing: int | None = None
    schools_withheld: int | None = None

    def __post_init__(self) -> None:
        # One canonical order, so equal contents compare equal however they were read.
        object.__setattr__(self, "rows", tuple(sorted(self.rows, key=lambda r: r.exercise)))

    @property
    def kind(self) -> str:
        return "release" if self.scope == "school" else "aggregate"

    def row(self, exercise: str) -> Row | None:
        for r in self.rows:
            if r.exercise == exercise:
                return r
        return None

    def body(self) -> dict[str, Any]:
        """The document body: exactly the declared fields, None for those to clear."""
        schools = None
        if self.scope != "school":
            schools = {"contributing": self.schools_contributing or 0, "withheld": self.schools_withheld or 0}
        return {
            "release": self.release,
            "scope": self.scope,
            "status": self.status,
            "reason": self.reason,
            "final": self.final,
            "policy": self.policy.to_dict(),
            "cohort": self.cohort,
            "schools": schools,
            "exercises": {r.exercise: r.to_dict() for r in self.rows},
        }

    def to_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, **self.body()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ReleaseContent":
        ex = data.get("exercises") or {}
        order = sorted(ex)
        schools = data.get("schools") or {}
        raw = data["policy"]
        if set(raw) != {"min_cohort", "min_batch", "small_cell_max"}:
            raise DocumentError("the release's disclosure policy needs min_cohort, min_batch and small_cell_max")
        policy = Policy(raw["min_cohort"], raw["min_batch"], raw["small_cell_max"])
        return cls(
            campaign=data["campaign"],
            release=data["release"],
            status=data["status"],
            reason=data["reason"],
            policy=policy,
            rows=tuple(Row.from_dict(e, ex[e]) for e in order),
            cohort=data.get("cohort"),
            final=data.get("final", False),
            scope=data.get("scope", "school"),
            schools_contributing=schools.get("contributing"),
            schools_withheld=schools.get("withheld"),
        )


def _expect_kind(doc: Document, kinds: tuple[str, ...]):
    header = read_header(doc)
    if header.kind not in kinds:
        raise WrongKindError(f"this is a {header.kind} document, not a {' or '.join(kinds)} document")
    return header


def write_release(doc: Document, content: ReleaseContent, *, actor: bytes | None = None) -> None:
    """Write a release (school) or aggregate (district) into its document, in place (`actor`: `write_fields`)."""
    header = _expect_kind(doc, ("release", "aggregate"))
    if content.kind != header.kind:
        raise SchemaError(f"scope {content.scope!r} does not fit a {header.kind} document")
    if content.campaign != header.campaign:
        raise SchemaError(f"this document is for campaign {header.campaign!r}, not {content.campaign!r}")
    if content.release < header.release:
        raise SchemaError(
            f"release {content.release} is older than release {header.release} already in this document; "
            "readers would refuse it as a rollback"
        )
    if content.scope == "school":
        for r in content.rows:
            if r.total != sum(r.cells):
                raise SchemaError(f"exercises.{r.exercise}.total: must be the sum of the cells")
    write_fields(doc, content.body(), actor=actor)


def read_release(doc: Document, heads: Sequence[bytes] | None = None) -> ReleaseContent:
    return release_from(*read_document(doc, heads))


def release_from(header: Header, body: dict[str, Any]) -> ReleaseContent:
    if header.kind not in ("release", "aggregate"):
        raise WrongKindError(f"this is a {header.kind} document, not a release")
    for key in ("scope", "status", "reason", "policy"):
        if key not in body:
            raise DocumentError(f"the release has no {key!r} field")
    want_scope = "school" if header.kind == "release" else "district"
    if body["scope"] != want_scope:
        raise DocumentError(f"a {header.kind} document must have scope {want_scope!r}")
    school = header.kind == "release"
    for ex, row in (body.get("exercises") or {}).items():
        if len(row) != len(COLUMNS) + 1:
            missing = [c for c in (*COLUMNS, "total") if c not in row]
            raise DocumentError(f"the release's exercise {ex!r} has no {missing[0]!r} cell")
        if school and row["total"] != sum(_CELLS(row)):
            raise DocumentError(f"the release's exercise {ex!r} total is not the sum of its cells")
    body.setdefault("release", header.release)
    return ReleaseContent.from_dict({"campaign": header.campaign, **body})


# -- campaign documents ---------------------------------------------------------


def campaign_document(campaign: Campaign, owner: bytes) -> Document:
    """A new campaign document written by `owner` (a district or higher), version 1."""
    doc = new_document("campaign", owner, campaign=campaign.id)
    write_campaign(doc, campaign)
    return doc


def write_campaign(doc: Document, campaign: Campaign, *, actor: bytes | None = None) -> int:
    """Write (or update: thresholds arrive later) a campaign definition; returns its new version.

    The version (the document's release number) goes up only when something changed,
    so schools can refuse an older definition replayed to them.
    """
    header = _expect_kind(doc, ("campaign",))
    if campaign.id != header.campaign:
        raise SchemaError(f"this document is for campaign {header.campaign!r}, not {campaign.id!r}")
    _, body = read_document(doc)
    definition = campaign.to_dict()
    if body.get("definition") == definition:
        return body.get("release", 0)
    version = body.get("release", 0) + 1
    write_fields(doc, {"release": version, "definition": definition}, actor=actor)
    return version


def read_campaign(doc: Document, heads: Sequence[bytes] | None = None) -> Campaign:
    return campaign_from(*read_document(doc, heads))


def campaign_from(header: Header, body: dict[str, Any]) -> Campaign:
    if header.kind != "campaign":
        raise WrongKindError(f"this is a {header.kind} document, not a campaign definition")
    if "definition" not in body:
        raise DocumentError("the campaign document holds no definition yet")
    try:
        campaign = parse_campaign(body["definition"])
    except PolicyBelowFloorError as exc:
        raise CampaignRefusedError(f"the campaign asks for less than the national floor: {exc}",
                                   code=exc.code, params=exc.params) from None
    except CampaignError as exc:
        raise DocumentError(f"the campaign document's definition is not valid: {exc}") from None
    if campaign.id != header.campaign:
        raise DocumentError(f"the campaign document is for {header.campaign!r} but defines {campaign.id!r}")
    return campaign


# -- receipts documents ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receipt:
    """A district's acknowledgement that it verified release `release` of `doc_id` at `heads`."""

    doc_id: str
    release: int
    heads: tuple[bytes, ...]
    time: int

    def to_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "release": self.release, "heads": sorted(h.hex() for h in self.heads), "time": self.time}


def append_receipt(doc: Document, receipt: Receipt, *, school: bytes, actor: bytes | None = None) -> int:
    """Append a receipt (the district's side); returns the document's new release number."""
    _expect_kind(doc, ("receipts",))
    _, body = read_document(doc)
    if "school" in body and body["school"] != school.hex():
        raise SchemaError("this receipts document belongs to another school")
    receipts = list(body.get("receipts", []))
    receipts.append(receipt.to_dict())
    version = body.get("release", 0) + 1
    write_fields(doc, {"release": version, "school": school.hex(), "receipts": receipts}, actor=actor)
    return version


def read_receipts(doc: Document, heads: Sequence[bytes] | None = None) -> tuple[Receipt, ...]:
    return receipts_from(*read_document(doc, heads))


def receipts_from(header: Header, body: dict[str, Any]) -> tuple[Receipt, ...]:
    if header.kind != "receipts":
        raise WrongKindError(f"this is a {header.kind} document, not receipts")
    out = []
    for r in body.get("receipts", []):
        if not {"doc_id", "release", "heads", "time"} <= set(r):
            raise DocumentError("a receipt is missing a field")
        out.append(Receipt(r["doc_id"], r["release"], tuple(bytes.fromhex(h) for h in r["heads"]), r["time"]))
    return tuple(out)


def latest_receipt(doc: Document, doc_id: str, heads: Sequence[bytes] | None = None) -> Receipt | None:
    """The school's view: the highest release of its document the district acknowledged."""
    mine = [r for r in read_receipts(doc, heads) if r.doc_id == doc_id]
    return max(mine, key=lambda r: r.release, default=None)


CONTENT_FROM = {"release": release_from, "aggregate": release_from, "campaign": campaign_from, "receipts": receipts_from}
"""How to turn a document's (header, body) into its typed content, by kind."""
