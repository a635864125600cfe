"""What a node holds, offers, accepts and publishes: the federation rules, over the FedStore.

The transport (federation/transport.py) moves bytes; this module decides. Every
document that crosses between nodes travels with its latest signed release,
and a receiver keeps a document only at heads it verified against the key it
pinned for that document's owner. Changes nobody signed (a relay's forgery)
are never persisted, so they cannot block the owner's next release.

Who may receive what (the entitlement rule):
- an upstream peer (this node's district, or a district's parent) may receive
  the release and aggregate documents this node wrote, and those it carries for
  another node (store and forward: a relay holding a school's signed documents
  from a bundle). It never receives the releases of this node's own children:
  a district passes its aggregate up, not its schools' per-school counts;
- a downstream peer (an enrolled school, or a district below an académie) may
  receive campaign documents, the receipts document addressed to it and its
  own release (or aggregate) documents back (`take_back`: a node restored from
  an older backup), and nothing written by another school.

Why one module of about 900 lines: `Federation` is one set of rules over one
store. Receiving (`try_accept`), publishing, entitlement and bundles (which are
received exactly as synced documents are, through `try_accept`) check each
other's invariants; read apart, a rule's exceptions would be in another file.
Taking back a release after a restore (`take_back`, about 190 lines with its
numbering and count checks) is `try_accept`'s other branch for a node's own
documents, and aggregates going up (`refresh_aggregates`) read what
`_store_verified` kept. What could stand alone has gone: the store (store.py,
schema.py), the wire (transport.py, gate.py), pools (pools.py) and statistics
(live_stats.py). The restore branch is the next to move out, once it has
settled (it landed on 2026-11-30).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib

import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

from preau.crdt import documents as cdocs
from preau.crdt.campaign import SCORED_GROUPS, Campaign
from preau.crdt.docio import change_hashes, fork_at, has_heads, load_document, merge_document, save_document
from preau.crdt.errors import AggregateAlreadySentError, CrdtError, ReleaseError
from preau.crdt.schema import COLUMNS, document_id, new_document
from preau.crdt.signing import (SignedRelease, VerifiedRelease, clock_remark, id_names_signer, sign_release,
                                 signature_valid, verify_release)
from preau.crdt.statistics import CampaignStatistics, build_aggregate
from preau.crdt.weight import MAX_INFLATED, MAX_ROWS, weigh_document
from preau.protocol.connection import PinnedPeer
from preau.protocol.errors import ProtocolError
from preau.protocol.identity import Identity, PublicIdentity, RetiredIdentity, node_id, retired_chain
from preau.protocol.invitation import IssuedInvitation

from preau.node.database import inline
from preau.node.errors import EXIT_DATA, UserError, said
from preau.node.federation.pools import in_pool_sum, went_into_a_pool
from preau.node.federation.store import FedStore
from preau.node.testhooks import unprotected

log = logging.getLogger("preau.federation")

log = logging.getLogger("preau.federation")


def fresh_actor() -> bytes:
    """A new Automerge actor id for each change this node makes to one of its own documents.

    Under one actor, each change takes the next sequence number. A node restored from a backup older than its
    last release would then give its next change a number its district already holds for another change, and
    the district's Automerge would refuse that document ("duplicate seq") at every sync, for ever; two
    processes writing one document (a `preau release` while `preau serve` runs) would do the same. A random
    actor per change starts its own numbering: the change merges beside the one the district holds.
    """
    return secrets.token_bytes(16)


def too_close_to_lost(content: cdocs.ReleaseContent,
                      lost: Iterable[cdocs.ReleaseContent]) -> list[tuple[int, str, str]]:
    """The counts of `content` that would move by 1..min_batch-1 against a release taken back (`take_back`), as
    (moved, exercise, column); empty when it may leave.

    A node's release history keeps each published state pupil by pupil and `disclosure.next_release` checks
    both batching rules against it; a release taken back is known by its counts only, so the count-level rule
    is applied to it as next_release applies it to every earlier published state: each count of an exercise
    (every column and the total) moves by 0 or at least min_batch (a count that moves by min_batch means as
    many pupils changed). The group columns are not compared against a row with no pupil in a group (its
    thresholds had not arrived: its groups are published whole anyway), nor anything against an empty row.
    """
    if content.status != "published":
        return []
    need = content.policy.min_batch
    close: list[tuple[int, str, str]] = []
    for old in lost:
        if old.status != "published":
            continue
        for row in content.rows:
            was = old.row(row.exercise)
            if was is None or not was.total:
                continue
            grouped = any(row.get(c) for c in SCORED_GROUPS) and any(was.get(c) for c in SCORED_GROUPS)
            for column in (*COLUMNS, "total"):
                if column in SCORED_GROUPS and not grouped:
                    continue
                moved = abs(row.get(column) - was.get(column))
                if 0 < moved < need:
                    close.append((moved, row.exercise, column))
    return close


def _same_but_number(a: cdocs.ReleaseContent, b: cdocs.ReleaseContent) -> bool:
    da, db = a.to_dict(), b.to_dict()
    da.pop("release"), db.pop("release")
    return da == db


class BundleError(UserError):
    """A bundle file that cannot be imported; nothing of it was kept."""

    exit_code = EXIT_DATA
    code = "bad_bundle"

RESTORED = "restored-not-synced"  # set by `preau restore`, cleared by the first sync with the node above
LOST_RELEASES = "lost-releases:{doc}"  # own releases the node above held and this node had forgot (take_back)
AGGREGATE_BASES = "aggregate-bases:{doc}"  # district: each counted aggregate sent up, with the statistics behind it
UPSTREAM = ("district", "parent")   # roles of peers above this node
DOWNSTREAM = ("school", "child")     # roles of peers below this node: a school, or a district below an académie
MEMBER_ROLES = {"school": "school", "district": "child"}  # what an invitation enrols -> the role pinned
SENDS = {"school": "release", "child": "aggregate"}         # the one kind of document each member may send up


@dataclass(frozen=True, slots=True)
class Accepted:
    """A document this node just verified and stored."""

    doc_id: str
    kind: str
    release: int
    owner: bytes
    receipt: cdocs.Receipt | None = None  # what a district acknowledges back to the sender
    duplicate: bool = False  # already stored by another session: nothing was written


class SqliteTrust:
    """The protocol's TrustStore over the FedStore (read-only, as the protocol expects)."""

    def __init__(self, fed: FedStore):
        self.fed = fed

    def peer(self, signing_key: bytes) -> PinnedPeer | None:
        row = self.fed.peer(signing_key.hex())
        if row is None or not row["static_key"]:
            return None
        identity = PublicIdentity(bytes.fromhex(row["key"]), bytes.fromhex(row["static_key"]))
        replaced_by = bytes.fromhex(row["replaced_by"]) if row["status"] == "rotated" and row["replaced_by"] else None
        return PinnedPeer(identity, revoked=row["status"] != "active", uai=row["uai"], replaced_by=replaced_by)

    def invitation(self, invitation_id: bytes) -> IssuedInvitation | None:
        row = self.fed.invitation(invitation_id.hex())
        if row is None:
            return None
        used = row["used_at"] is not None or row["revoked_at"] is not None
        return IssuedInvitation(invitation_id, bytes.fromhex(row["secret"]), row["uai"], row["expires_at"], used=used)


class Federation:
    def __init__(self, identity: Identity, fed: FedStore, *, role: str,
                 clock: Callable[[], int] = lambda: int(time.time()),
                 on_campaign: Callable[[Campaign], None] | None = None):
        self.identity = identity
        self.fed = fed
        self.role = role
        self.clock = clock
        self.on_campaign = on_campaign
        self.trust = SqliteTrust(fed)
        self._refused_at: dict[bytes, int] = {}  # peer key -> when its last refusal became an event (refused_event)
        # How a session's database work runs: here (a command), or on the serving node's database thread
        # (`Node.start_database_thread`), so the event loop never waits on SQLite.
        self.run: Callable[..., Awaitable[Any]] = inline
        self.academie: str | None = None  # school: node id of the académie whose countersignature pools need (settings)
        self.display_name: str | None = None  # told to the nodes below in each session's Welcome (the store's name)

    @property
    def key(self) -> bytes:
        return self.identity.signing_key

    # -- keys rotated away from, still answered on during the overlap -----------------

    def retired_records(self) -> list[dict]:
        return list(self.fed.get_meta("retired_keys") or [])

    def retired_identities(self) -> tuple[RetiredIdentity, ...]:
        """This node's old keys still in their overlap period, as the responder answers on them.

        A set that does not lead to the current key (a key file put back by hand, a restored old backup)
        is ignored, with a warning: peers that pin those keys then fail their handshake and enrol again."""
        now = self.clock()
        try:
            retired = [RetiredIdentity(Identity(bytes.fromhex(r["seed"])), bytes.fromhex(r["statement"]))
                       for r in self.retired_records() if r["until"] > now]
            return retired_chain(retired, self.identity)
        except (ProtocolError, ValueError, KeyError, TypeError) as exc:
            log.warning("this node's retired keys do not lead to its current key (%s); they are not used", exc)
            return ()

    # -- peers ---------------------------------------------------------------------

    def peer_role(self, peer: PublicIdentity) -> str | None:
        row = self.fed.active_peer(peer.signing_key.hex())
        return row["role"] if row else None

    def children(self) -> list[dict]:
        """The nodes enrolled below this one: schools, and at an académie its districts."""
        return [p for p in self.fed.peers() if p["role"] in DOWNSTREAM]

    def upstream(self) -> dict | None:
        """The peer this node reports to (a school's district, a district's parent), if enrolled."""
        rows = [p for p in self.fed.peers() if p["role"] in UPSTREAM and p["status"] == "active"]
        return rows[0] if rows else None

    def move_upstream(self, address: str) -> None:
        """The node above moved (settings' parent_url): later sessions go to `address`."""
        up = self.upstream()
        if up is not None and up["address"] != address:
            self.fed.set_peer_address(up["key"], address)
            self.fed.log_event("parent_moved", f"{up['node_id']} is now reached at {address} (parent_url)",
                               node_id=up["node_id"], address=address)

    def name_upstream(self, peer: PublicIdentity, name: str) -> None:
        """The node above said its name (Welcome): pages show it instead of its key's fingerprint."""
        up = self.upstream()
        if up is not None and up["key"] == peer.signing_key.hex():
            self.fed.set_peer_name(up["key"], " ".join(name.split())[:200])

    def pin_upstream(self, peer: PublicIdentity, address: str, *, name: str | None = None) -> None:
        self.fed.add_peer(peer.signing_key.hex(), node_id=peer.node_id, role="district", address=address,
                          static_key=peer.static_key.hex(), name=name)

    def pin_child(self, peer: PublicIdentity, uai: str, invitation_id: bytes) -> bool:
        """Enrol a child that proved an invitation; False if the invitation was used meanwhile.

        A child pinned here already (`preau join --again`, after this node dropped the key it pinned) keeps its
        record: the invitation is only used up, so that nobody else enrols with it."""
        with self.fed.transaction():
            if not self.fed.use_invitation(invitation_id.hex(), by=peer.signing_key.hex()):
                return False
            if self.fed.peer(peer.signing_key.hex()) is not None:
                self.fed.log_event("rejoined", f"{uai} ({peer.node_id}) joined again with a new invitation",
                                   uai=uai, node_id=peer.node_id)
                return True
            invitation = self.fed.invitation(invitation_id.hex())
            self.fed.add_peer(peer.signing_key.hex(), node_id=peer.node_id,
                              role=MEMBER_ROLES.get(invitation["member"], "school"), uai=uai,
                              static_key=peer.static_key.hex(), name=invitation["name"], address=invitation["address"],
                              town=invitation.get("town"))
        self.fed.log_event("enrolled", f"school {uai} enrolled as {peer.node_id}", uai=uai, node_id=peer.node_id)
        return True

    def rotate_pin(self, old_signing_key: bytes, new: PublicIdentity) -> None:
        self.fed.rotate_peer(old_signing_key.hex(), new.signing_key.hex(), new.static_key.hex())
        self.fed.log_event("key_rotated", f"{node_id(old_signing_key)} is now {new.node_id}", whose="peer",
                           old=node_id(old_signing_key), new=new.node_id)

    def is_carried(self, owner_hex: str) -> bool:
        """A document this node only carries: written by a node that is neither this one nor pinned here."""
        return owner_hex != self.key.hex() and self.fed.peer(owner_hex) is None

    # -- entitlement, offers and wants -------------------------------------------------

    def may_send(self, peer: PublicIdentity, doc_id: str) -> bool:
        """Checked for every offer and every message about a document: reads its kind and owner only."""
        found = self.fed.kind_and_owner(doc_id)
        role = self.peer_role(peer)
        if found is None or role is None:
            return False
        kind, owner = found
        if role in UPSTREAM:
            # Per-school counts never go beyond the district: a district sends up only its own aggregate.
            # A node may carry (relay) documents written by nodes it has not pinned, to their district.
            return kind in ("release", "aggregate") and (owner == self.key.hex() or self.is_carried(owner))
        if kind == "campaign":
            return owner == self.key.hex()
        if kind == "receipts":
            return owner == self.key.hex() and doc_id == document_id("receipts", self.key, peer=peer.signing_key)
        if kind in ("release", "aggregate"):
            # Its own documents go back to it (a node restored from an older backup takes back what it sent
            # since: `take_back`), never another member's.
            return owner == peer.signing_key.hex()
        return False

    def offers_for(self, peer: PublicIdentity) -> dict[str, bytes]:
        """What this node offers the peer: the entitlement rule of may_send, as one query (a district holds
        a document or two per school; walking them all for every session was quadratic)."""
        role = self.peer_role(peer)
        if role in UPSTREAM:
            offers = self.fed.offerable(("release", "aggregate"), (self.key.hex(),), carried=True)
            if self.fed.get_meta(RESTORED):
                # Restored from a backup: until one sync has shown what the node above holds (`take_back`), a
                # release approved since is checked against nothing it holds, and does not leave yet.
                offers = {d: r for d, r in offers.items() if SignedRelease.decode(r).owner != self.key}
        elif role is not None:
            rid = document_id("receipts", self.key, peer=peer.signing_key)
            # Only this node's own campaign documents: one from its parent goes down re-signed (_relay_campaign).
            offers = {**self.fed.offerable(("campaign",), (self.key.hex(),)),
                      **self.fed.offerable(("receipts",), doc_ids=(rid,)),
                      **self.fed.offerable(("release", "aggregate"), (peer.signing_key.hex(),))}
        else:
            return {}
        return {d: r for d, r in offers.items() if self.may_send(peer, d)}

    def wanted(self, peer: PublicIdentity, doc_id: str, release: bytes | None) -> SignedRelease | None:
        """The signed release to verify if we want this offered document, else None (and why, in the log)."""
        if release is None:
            return None
        try:
            signed = SignedRelease.decode(release)
        except CrdtError:
            self.refused_event(peer.signing_key, f"{peer.node_id} offered {doc_id!r} with an unreadable signed release",
                               doc_id=doc_id, peer=peer.node_id, why="unreadable")
            return None
        if signed.doc_id != doc_id or self.expected_owner(peer, signed) is None:
            return None
        if not unprotected("entitlement"):
            # A document id belongs to the key it names, and we take (and so talk about) nothing else:
            # otherwise a peer signing its own document under another's id would be sent our copy of it.
            if not id_names_signer(signed):
                self.refused_event(peer.signing_key, f"{peer.node_id} offered {doc_id!r} signed by a key that id does not name",
                                   doc_id=doc_id, peer=peer.node_id, why="not_its_id")
                return None
            if not signature_valid(signed):
                self.refused_event(peer.signing_key, f"{peer.node_id} offered {doc_id!r} with a signature that is not valid",
                                   doc_id=doc_id, peer=peer.node_id, why="bad_signature")
                return None
        if signed.owner == self.key:
            return signed if self.lost_release(signed) else None
        latest = self.fed.latest_release(doc_id)
        if latest is not None and latest[0] >= signed.release:
            return None  # we already hold this release or a newer one
        if latest is None and signed.kind in ("release", "aggregate") and not self.fed.holds_campaign(signed.campaign):
            # A school's counts for a campaign this district never published (a school has no campaign but
            # its district's): without this, one school signed releases for made-up campaigns and each became
            # a document, a statistics entry and a line on the district's statistics pages, as many as it liked.
            # The same one level up: an académie takes a district's aggregate only for a campaign it published.
            log.warning("%s offered %r for campaign %r, which this node does not hold; not taken", peer.node_id,
                        doc_id, signed.campaign)
            return None
        return signed

    def refused_event(self, peer_key: bytes, detail: str, **values: Any) -> None:
        """A refused document, as an event at most once a minute per peer (each one in the log): an enrolled
        peer offering 500 unreadable documents a session wrote 500 event rows each time, 15,000 a minute at
        its session rate, for as long as it liked."""
        now = self.clock()
        if now - self._refused_at.get(peer_key, now - 60) >= 60:
            self._refused_at[peer_key] = now
            self.fed.log_event("refused", detail, **values)
        else:
            log.info("refused (already said this minute): %s", detail)

    def expected_owner(self, peer: PublicIdentity, signed: SignedRelease) -> bytes | None:
        """The pinned key that must have signed this document, or None if we take no such document from this peer."""
        role = self.peer_role(peer)
        if role is None:
            return None
        if role in DOWNSTREAM and signed.kind in ("release", "aggregate"):
            # Relayed documents are welcome, but only from members enrolled here, and each member sends
            # one kind: a school its release, a district its aggregate (a school's "aggregate" is refused).
            return signed.owner if self._member_sends(signed.owner, signed.kind) else None
        if role in UPSTREAM and signed.owner == self.key and signed.kind in ("release", "aggregate"):
            return self.key  # one of this node's own releases, as the node above holds it (`take_back`)
        if role in UPSTREAM and signed.owner == peer.signing_key:
            if signed.kind == "campaign":
                return signed.owner
            if signed.kind == "receipts" and signed.doc_id == document_id("receipts", peer.signing_key, peer=self.key):
                return signed.owner
        return None

    # -- receiving -------------------------------------------------------------------

    def working_copy(self, doc_id: str):
        stored = self.fed.document(doc_id)
        return load_document(stored.data) if stored else None

    def try_accept(self, peer: PublicIdentity | None, doc, signed: SignedRelease, owner: bytes) -> Accepted | None:
        """Verify and store a received document if it holds the signed heads; None while it does not yet.

        Raises a CrdtError when the release is refused (forged, replayed, wrong kind...).
        """
        if not id_names_signer(signed) and not unprotected("entitlement"):
            raise ReleaseError(f"document id {signed.doc_id!r} does not name the key that signed it; refused",
                               code="id_not_owner")
        if not has_heads(doc, signed.heads):
            return None
        if signed.owner == self.key:
            return self.take_back(doc, signed)
        latest = self.fed.latest_release(signed.doc_id)
        if latest is not None and latest[0] >= signed.release:
            # Another session (the school's loop and a `preau sync` at once, or a relay) stored it meanwhile.
            return Accepted(signed.doc_id, signed.kind, latest[0], signed.owner, duplicate=True)
        verified = verify_release(doc, signed, owner, latest[0] if latest else 0,
                                  kinds=("release", "aggregate", "campaign", "receipts"),
                                  last_final=latest is not None and self._was_final(signed))
        remark = clock_remark(signed, self.clock())
        if remark is not None:  # accepted (the figures are sound), but someone must set that clock right
            log.warning("%s", remark)
            self.fed.log_event("clock", remark, doc_id=signed.doc_id, signed_at=signed.time, now=self.clock())
        current = tuple(sorted(doc.get_heads()))
        kept = doc if current == signed.heads else fork_at(doc, signed.heads)
        return self._store_verified(peer, verified, save_document(kept))

    # -- this node's own releases, as the node above holds them -----------------------------

    def lost_release(self, signed: SignedRelease) -> bool:
        """Whether the node above holds a release of ours that this node does not: we signed it, and our copy
        of the document lacks its heads (this node was restored from a backup made before it)."""
        if signed.owner != self.key or signed.kind not in ("release", "aggregate"):
            return False
        try:
            stored = self.working_copy(signed.doc_id)
        except CrdtError:
            return False  # our own copy is damaged: the session says so when it sends it
        return stored is None or not has_heads(stored, signed.heads)

    def take_back(self, doc, signed: SignedRelease) -> Accepted:
        """Take back one of this node's own releases from the node above, which holds it and we do not.

        A node restored from a backup made before its last releases has forgotten them, but its district has
        not: it must number its next release past them (a number the district holds is never taken again),
        and its disclosure rules must count them as published (`lost_contents`). Only changes this node signed
        come in: the document is taken at the signed heads (verified against this node's own key) and merged
        into our copy, whatever else the message carried.
        """
        verified = verify_release(doc, signed, self.key, 0, kinds=("release", "aggregate"))
        theirs = fork_at(doc, signed.heads)
        ours = self.working_copy(signed.doc_id)
        known = change_hashes(ours) if ours is not None else set()
        lost = []  # every release of ours in what came back, each read where it was signed (one change each)
        for h in change_hashes(theirs) - known:
            try:
                content = cdocs.read_release(theirs, [h])
            except CrdtError:
                continue
            if content.release >= 1:
                lost.append(content)
        key = LOST_RELEASES.format(doc=signed.doc_id)
        record = {c["release"]: c for c in self.fed.get_meta(key, [])}
        record.update({c.release: c.to_dict() for c in lost})
        # Our releases the district does not hold (approved since the restore): checked against nothing it
        # holds. Their states are in our history, and every later release would carry them to the district,
        # which could read each one where it was signed: one too close to a release taken back must never go.
        unreceived = [s for s in (SignedRelease.decode(bytes(r["signed"])) for r in self.fed.releases(signed.doc_id))
                      if s.owner == self.key and not has_heads(theirs, s.heads)]
        if ours is not None and any(self._too_close_at(ours, s, [cdocs.ReleaseContent.from_dict(c)
                                                                  for c in record.values()]) for s in unreceived):
            # Dropped: our copy becomes the district's, and those releases are forgotten (never sent: the
            # transparency log keeps them, not received).
            dropped = [s.release for s in unreceived]
            ours = None
            log.warning("%s: release(s) %s, approved since a restore, are too close to what the district holds: "
                        "dropped, never sent", signed.doc_id, dropped)
        else:
            dropped = []
        if ours is None:
            ours = theirs
        else:
            merge_document(ours, theirs)
        up = self.upstream()
        with self.fed.transaction() as conn:
            if dropped:
                conn.execute(f"DELETE FROM releases WHERE doc_id = ? AND number IN ({','.join('?' * len(dropped))})",
                             [signed.doc_id, *dropped])
            # Stored as a release of ours only if we hold none of that number (one made since the restore
            # keeps its row: the transparency log says that one did not reach the district).
            self.fed.accept_release(signed.doc_id, signed.kind, self.key.hex(), signed.campaign or None,
                                    save_document(ours), signed.release, signed.encode(), None)
            self.fed.set_meta(key, [record[n] for n in sorted(record)])
            stored = {r["number"]: bytes(r["signed"]) for r in self.fed.releases(signed.doc_id)}
            if up is not None and stored.get(signed.release) == signed.encode():
                # The transparency log lost this line with the restore: what left, as the district holds it.
                self.fed.log_sent(signed.doc_id, signed.release, up["node_id"], verified.content.to_dict(),
                                  signed.signature.hex())
            numbers = ", ".join(str(n) for n in sorted({c.release for c in lost} | {signed.release}))
            self.fed.log_event("taken_back", f"{signed.doc_id}: the node above holds release(s) {numbers} of this "
                               "node, which it no longer had (restored from an older backup?); taken back",
                               doc_id=signed.doc_id, version=signed.release)
            if up is not None and signed.kind == "release":
                self._renumber_unreceived(signed, theirs, up)
        return Accepted(signed.doc_id, signed.kind, verified.release, self.key)

    @staticmethod
    def _too_close_at(doc, signed: SignedRelease, lost: list[cdocs.ReleaseContent]) -> bool:
        try:
            return bool(too_close_to_lost(cdocs.read_release(doc, list(signed.heads)), lost))
        except CrdtError:
            return True  # unreadable where we signed it: not sent either

    def _renumber_unreceived(self, signed: SignedRelease, theirs, up: dict) -> None:
        """This school's latest release, if the district cannot take it: approved after a restore and before
        the first sync, it took a number the district already held (or a lower one). The same content, which
        the head teacher approved, is signed again under the next free number, to leave at the next sync; not
        if it would move a count too little against a release taken back (`too_close_to_lost`: then the next
        release the head teacher approves waits as the batching rule says), nor when nothing is waiting."""
        rows = self.fed.releases(signed.doc_id)
        if not rows:
            return
        mine = SignedRelease.decode(bytes(rows[-1]["signed"]))
        if mine.owner != self.key or has_heads(theirs, mine.heads) or mine.release > signed.release:
            return  # the district holds it, or it is numbered past the district's: it goes as it is
        try:
            content = cdocs.read_release(self.working_copy(signed.doc_id), list(mine.heads))
        except CrdtError:
            return
        lost = self.lost_contents(signed.doc_id)
        if too_close_to_lost(content, lost):
            log.warning("%s release %d was approved after a restore under a number the district holds; it is "
                        "too close to what the district holds to be sent again", signed.doc_id, mine.release)
            return
        number = max([signed.release, self.receipted(signed.doc_id), self.fed.highest_signed(signed.doc_id),
                      *(c.release for c in lost)]) + 1
        try:
            again = self.publish_release(dataclasses.replace(content, release=number), to_peer=up["node_id"])
        except (UserError, CrdtError) as exc:  # a pool took the counts meanwhile, say
            log.warning("%s release %d could not be signed again: %s", signed.doc_id, mine.release, exc)
            return
        self.fed.log_event("renumbered", f"{signed.doc_id}: release {mine.release}, approved after a restore under a "
                           f"number the district already held, signed again as release {again.release}",
                           doc_id=signed.doc_id, version=again.release, was=mine.release)

    def lost_contents(self, doc_id: str) -> list[cdocs.ReleaseContent]:
        """The releases of ours taken back from the node above (`take_back`): published, though our history
        has no record of them."""
        return [cdocs.ReleaseContent.from_dict(c) for c in self.fed.get_meta(LOST_RELEASES.format(doc=doc_id), [])]

    def receipted(self, doc_id: str) -> int:
        """The highest release of this node's document `doc_id` the node above acknowledged (its receipts
        document, read at the heads it signed; 0 if none): a number this node must never sign again."""
        up = self.upstream()
        if up is None:
            return 0
        rid = document_id("receipts", bytes.fromhex(up["key"]), peer=self.key)
        latest = self.fed.latest_release(rid)
        stored = self.fed.document(rid)
        if latest is None or stored is None:
            return 0
        try:
            heads = list(SignedRelease.decode(latest[1]).heads)
            receipt = cdocs.latest_receipt(load_document(stored.data), doc_id, heads)
        except CrdtError:
            return 0
        return receipt.release if receipt is not None else 0

    def _was_final(self, signed: SignedRelease) -> bool:
        """Whether the release already accepted for this document was its campaign's final one (final never goes back)."""
        if signed.kind not in ("release", "aggregate"):
            return False
        stored = self.fed.document(signed.doc_id)
        if stored is None:
            return False
        try:
            return bool(cdocs.read_release(load_document(stored.data)).final)
        except CrdtError:
            return False

    def _store_verified(self, peer: PublicIdentity | None, verified: VerifiedRelease, data: bytes) -> Accepted:
        signed = verified.signed
        from_peer = peer.signing_key.hex() if peer else None
        receipt = None
        with self.fed.transaction():
            stats = None
            if self._member_sends(signed.owner, signed.kind):  # a school's release, a district's aggregate
                stats = self._stats_entry(verified)
                if (stats is not None and signed.kind == "release" and verified.content.status != "withheld"
                        and in_pool_sum(self, signed.campaign, signed.owner)):
                    # Its counts are in a pool's sum already (a school restored from a backup older than its pool
                    # can send both): counted once, and no subtraction shows on the statistics pages.
                    stats = None
                    self.fed.log_event("release_in_pool", f"{signed.doc_id} release {signed.release}: the school's "
                                       "counts are in a pool's sum already; not counted again", campaign=signed.campaign,
                                       node_id=node_id(signed.owner))
            self.fed.accept_release(signed.doc_id, signed.kind, signed.owner.hex(), signed.campaign or None, data,
                                    signed.release, signed.encode(), from_peer, stats=stats)
            if signed.kind in ("release", "aggregate") and self.role == "district":
                receipt = self._write_receipt(verified)
            self.fed.log_event("accepted", f"{signed.kind} {signed.doc_id} release {signed.release}",
                               doc_kind=signed.kind, doc_id=signed.doc_id, campaign=signed.campaign or None,
                               version=signed.release)
            if signed.kind == "campaign" and self.role == "district":
                self._relay_campaign(verified.content, signed.doc_id, signed.release)
        if signed.kind == "campaign" and self.on_campaign is not None:
            self.on_campaign(verified.content)
        if signed.kind == "receipts":
            for r in verified.content:
                self.fed.log_receipt(r.doc_id, r.release, r.to_dict())
        return Accepted(signed.doc_id, signed.kind, signed.release, signed.owner, receipt)

    def _relay_campaign(self, campaign: Campaign, doc_id: str, number: int) -> None:
        """A campaign from this district's parent goes down to its schools, signed by this district.

        Schools pin only their district, so each level re-signs what it passes
        down, as it signs what it passes up. Unchanged content signs nothing new.
        Each parent release is relayed once: thresholds the district sets itself
        afterwards stand until the parent publishes a newer version.
        """
        if self._own_campaign(campaign.id) != campaign:
            signed = self.publish_campaign(campaign)
            self.fed.log_event("campaign_relayed", f"{campaign.id} from the parent node, as version {signed.release}",
                               campaign=campaign.id, version=signed.release)
        self.fed.set_meta(f"relayed:{doc_id}", number)

    def relay_parent_campaigns(self) -> list[str]:
        """Relay the parent's campaign releases not relayed yet (held from before this district relayed
        campaigns, say); the ids of the campaigns relayed."""
        up = self.upstream()
        if up is None or self.role != "district":
            return []
        done = []
        for d in self.fed.documents(kind="campaign", owner=up["key"]):
            latest = self.fed.latest_release(d.doc_id)
            if latest is None or self.fed.get_meta(f"relayed:{d.doc_id}", 0) >= latest[0]:
                continue
            if self.fed.get_meta(f"relayed:{d.doc_id}") is None and self.fed.latest_release(
                    document_id("campaign", self.key, d.campaign)) is not None:
                # From before relay markers, with a campaign of its own already: whether that came from
                # the parent or from the district's own thresholds, it stands until the parent's next release.
                self.fed.set_meta(f"relayed:{d.doc_id}", latest[0])
                continue
            try:
                signed = SignedRelease.decode(latest[1])
                campaign = cdocs.read_campaign(load_document(d.data), list(signed.heads))
            except CrdtError as exc:
                self.fed.log_event("refused", f"the parent's campaign {d.doc_id} cannot be read ({exc}); not relayed",
                                   doc_id=d.doc_id, why="unreadable")
                continue
            with self.fed.transaction():
                self._relay_campaign(campaign, d.doc_id, latest[0])
            done.append(campaign.id)
        return done

    def _member_sends(self, owner: bytes, kind: str) -> bool:
        """Whether `owner` is an active member enrolled here that sends documents of this kind: a school
        its release, a district (at an académie) its aggregate. Statistics take only these."""
        row = self.fed.active_peer(owner.hex())
        return row is not None and SENDS.get(row["role"]) == kind

    def _stats_entry(self, verified: VerifiedRelease) -> tuple[str, str, dict, list[str]] | None:
        """This school's statistics entry with the release in, and the entries of its older keys to drop.

        Statistics are one entry per school, keyed by owner key; the entry's
        form and the rule "only a newer release replaces an older one" are
        CampaignStatistics', applied to this one school (taking a release in
        costs the same with 5 schools or 500).

        After a key rotation the school's documents have new ids (an id is
        derived from its owner key), so its first release under the new key is
        a new document: without dropping the old key's entry the school would
        count twice. Until that first release arrives, the old key's entry
        keeps counting, so the school never drops out meanwhile.
        """
        campaign = verified.signed.campaign
        owner = verified.signed.owner.hex()
        one = CampaignStatistics(campaign)
        stored = self.fed.stats_entry(campaign, owner)
        if stored is not None:
            one = CampaignStatistics.from_dict({"version": 1, "campaign": campaign, "schools": {owner: stored}})
        if not one.add(verified):
            return None
        entry = one.to_dict()["schools"][owner]
        old_keys = [k for k in self.fed.predecessors(owner) if self.fed.stats_entry(campaign, k) is not None]
        if old_keys:
            self.fed.log_event("stats_moved", f"{campaign}: {len(old_keys)} older key(s) of "
                               f"{node_id(verified.signed.owner)} replaced by its new key's release",
                               campaign=campaign, keys=len(old_keys), node_id=node_id(verified.signed.owner))
        return campaign, owner, entry, old_keys

    def _write_receipt(self, verified: VerifiedRelease) -> cdocs.Receipt:
        signed = verified.signed
        school = signed.owner
        rid = document_id("receipts", self.key, peer=school)
        actor = fresh_actor()
        doc = self.working_copy(rid) or new_document("receipts", self.key, doc_id=rid, actor=actor)
        receipt = cdocs.Receipt(signed.doc_id, signed.release, signed.heads, self.clock())
        cdocs.append_receipt(doc, receipt, school=school, actor=actor)
        self._publish(doc)
        return receipt

    # -- publishing own documents --------------------------------------------------------

    def _publish(self, doc) -> SignedRelease:
        signed = sign_release(doc, self.identity.seed, now=self.clock())  # read from the document's header
        self.fed.accept_release(signed.doc_id, signed.kind, self.key.hex(), signed.campaign or None,
                                save_document(doc), signed.release, signed.encode(), None)
        return signed

    def publish_campaign(self, campaign: Campaign) -> SignedRelease:
        """Write (or update: thresholds arrive later) a campaign document and sign it for the schools."""
        cid = document_id("campaign", self.key, campaign.id)
        actor = fresh_actor()
        doc = self.working_copy(cid) or new_document("campaign", self.key, campaign=campaign.id, doc_id=cid, actor=actor)
        cdocs.write_campaign(doc, campaign, actor=actor)
        with self.fed.transaction():
            signed = self._publish(doc)
        self.fed.log_event("campaign_published", f"{campaign.id} version {signed.release}", campaign=campaign.id,
                           version=signed.release)
        return signed

    def _signed_campaign(self, stored) -> Campaign | None:
        """A stored campaign document read at the heads of its latest signed release (None if unsigned)."""
        latest = self.fed.latest_release(stored.doc_id)
        if latest is None:
            return None
        return cdocs.read_campaign(load_document(stored.data), list(SignedRelease.decode(latest[1]).heads))

    def _own_campaign(self, campaign_id: str) -> Campaign | None:
        stored = self.fed.document(document_id("campaign", self.key, campaign_id))
        return None if stored is None else self._signed_campaign(stored)

    def campaigns(self, *, owner: str | None = None) -> list[Campaign]:
        """The campaigns this node holds (its own and those it received), or only those `owner` wrote."""
        # One per campaign id: after a key rotation the same campaign is held under the old key and the new
        # one; this node's own current key wins, then a key pinned here, then any other (a retired key).
        def rank(d) -> int:
            return 2 if d.owner == self.key.hex() else 1 if self.fed.active_peer(d.owner) is not None else 0
        found: dict[str, Campaign] = {}
        for d in sorted(self.fed.documents(kind="campaign", owner=owner), key=rank):
            c = self._signed_campaign(d)
            if c is not None:
                found[c.id] = c
        return list(found.values())

    def publish_release(self, content: cdocs.ReleaseContent, *, to_peer: str) -> SignedRelease:
        """Write and sign this node's release for a campaign; log exactly what leaves."""
        kind = "release" if content.scope == "school" else "aggregate"
        if kind == "release" and content.status != "withheld" and went_into_a_pool(self.fed, content.campaign):
            # Its counts went into a pool: alone now, the district would subtract them from the pool's sum and
            # learn the other small schools' (release.py's preview says so before anyone approves).
            raise UserError(said("msg.release.pooled", campaign=content.campaign), code="pooled")
        rid = document_id(kind, self.key, content.campaign)
        actor = fresh_actor()
        doc = self.working_copy(rid) or new_document(kind, self.key, campaign=content.campaign, doc_id=rid, actor=actor)
        cdocs.write_release(doc, content, actor=actor)
        with self.fed.transaction():
            signed = self._publish(doc)
            self.fed.log_sent(rid, signed.release, to_peer, content.to_dict(), signed.signature.hex())
        return signed

    def refresh_aggregates(self) -> list[SignedRelease]:
        """Sign the district's aggregate for each campaign: "until closing" while it is open, its counts once
        it has closed, then a new one only when its difference with every one sent is safe to publish
        (`build_aggregate`, checked against the statistics each counted aggregate was built from, which
        this node records with it; with no record of one, nothing more goes up).

        What went up is this node's, not one key's: a key rotation gives the aggregate a new document id, and
        the level above still holds what went up under the old one. So the previous aggregate, the records
        checked against and the release numbers run across every key this node signed aggregates under (the
        transparency log names them all). After a rotation the newest aggregate is signed again under the new
        key with the same figures when a new one is held (the level above refuses the old key from then on)."""
        up = self.upstream()
        if up is None or self.role != "district":
            return []
        published = []
        for campaign in {c.id: c for c in self.campaigns()}.values():
            data = self.fed.stats(campaign.id)
            if data is None:
                continue
            stats = CampaignStatistics.from_dict(data)
            aid = document_id("aggregate", self.key, campaign.id)
            signed_before = self.fed.aggregates_sent(campaign.id)  # under every key, oldest first
            previous = cdocs.ReleaseContent.from_dict(signed_before[-1][1]) if signed_before else None
            number = max([c["release"] for _, c in signed_before], default=0) + 1
            closed = campaign.is_closed(_dt.datetime.fromtimestamp(self.clock(), _dt.timezone.utc).date())
            records = [(doc, b) for doc in dict.fromkeys([d for d, _ in signed_before] + [aid])
                       for b in self.fed.get_meta(AGGREGATE_BASES.format(doc=doc), [])]
            sent = [(cdocs.ReleaseContent.from_dict(b["content"]), CampaignStatistics.from_dict(b["stats"]))
                    for _, b in records]
            basis = {(doc, b["content"]["release"]): b["stats"] for doc, b in records}
            last = (signed_before[-1][0], previous.release) if previous is not None else None
            if previous is not None and previous.status == "published" and last not in basis:
                sent = None  # counts went up with no record of what they were built from: nothing more goes up
            member_of = self._members_by_key(data, *(b["stats"] for _, b in records))
            try:
                # Counts go up at closing, then only differences that are safe (docs/privacy.md, "Aggregates going up").
                content = build_aggregate(stats, campaign, release=number, previous=previous, final=closed,
                                          sent=sent, member_of=member_of)
                built_from = data
            except AggregateAlreadySentError as exc:
                self._note_held(campaign.id, data, exc)
                if previous is None or last[0] == aid:
                    continue
                # Held, and the newest aggregate went up under an older key: the same figures again, under this one.
                content, built_from = dataclasses.replace(previous, release=number), basis.get(last)
            if previous is not None and last[0] == aid and _same_but_number(previous, content):
                continue
            with self.fed.transaction():
                published.append(self.publish_release(content, to_peer=up["node_id"]))
                if content.status == "published" and built_from is not None:
                    bases = self.fed.get_meta(AGGREGATE_BASES.format(doc=aid), [])
                    self.fed.set_meta(AGGREGATE_BASES.format(doc=aid), [*bases, {"content": content.to_dict(),
                                                                                   "stats": built_from}])
        return published

    def _note_held(self, campaign: str, data: dict, exc: AggregateAlreadySentError) -> None:
        """Say in the journal that new counts are held back (once per state of the statistics, not at every sync):
        the district's people see why the académie's figures have not moved."""
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]
        key = f"aggregate-held:{campaign}"
        if self.fed.get_meta(key) != digest:
            with self.fed.transaction():
                self.fed.set_meta(key, digest)
                self.fed.log_event("aggregate_held", f"{campaign}: {exc}", campaign=campaign, code=exc.code)

    def _members_by_key(self, *stats: dict) -> dict[str, str]:
        """Each member key of these statistics (in their dictionary form) that rotated since, to its newest key:
        one school (or district, at an académie) whose entry moved to a new key is one member, not two."""
        keys = {k for s in stats for k in s["schools"]}
        return {k: new for k in keys if (new := self.fed.newest_key(k)) != k}

    # -- bundles (store and forward by hand) --------------------------------------------

    def export_bundle(self, doc_ids: Iterable[str] | None = None) -> bytes:
        """What this node would offer its parent, on a file: its own release or aggregate and what it carries.

        The rule is may_send's for an upstream peer. A district holds its schools' own releases too: they
        never go beyond it, on a USB key no more than over the network (review5 found a district's bundle
        for its académie holding every school's counts)."""
        items = []
        for d in self.fed.documents():
            if doc_ids is not None and d.doc_id not in doc_ids:
                continue
            latest = self.fed.latest_release(d.doc_id)
            if latest is None or d.kind not in ("release", "aggregate"):
                continue
            if not (d.owner == self.key.hex() or self.is_carried(d.owner)) and not unprotected("entitlement"):
                continue
            items.append({"document": d.data.hex(), "release": latest[1].hex()})
        return json.dumps({"format": "preau-bundle", "version": 1, "documents": items}, indent=1).encode()

    def import_bundle(self, data: bytes, *, carry: bool = False) -> list[Accepted]:
        """Verify each document exactly as if it had been synced; all or nothing.

        `carry`: this node is a relay (store and forward). Documents from nodes
        not pinned here are kept to be offered upstream, after checking that
        each is consistent with the key it names (signature, heads, header): a
        damaged bundle is still refused, but the trust decision is the
        receiver's, who checks the signature again against the key it pinned
        for that school, never against this relay's.
        """
        try:
            body = json.loads(data)
            if body.get("format") != "preau-bundle" or body.get("version") != 1:
                raise ValueError
            entries = [(bytes.fromhex(e["document"]), bytes.fromhex(e["release"])) for e in body["documents"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BundleError(said("msg.bundle.not_a_bundle")) from None
        checked = []
        for raw_doc, raw_release in entries:
            try:
                signed = SignedRelease.decode(raw_release)
                # Weighed before Automerge reads it, as a sync message is: a 1.6 kB bundle held a release whose
                # history was a million list inserts (3.6 s to load, and never syncable afterwards).
                weigh_document(raw_doc, max_rows=MAX_ROWS, max_bytes=MAX_INFLATED)
                doc = load_document(raw_doc)
            except CrdtError as exc:
                raise BundleError(said("msg.bundle.damaged", detail=str(exc))) from None
            unknown = self.is_carried(signed.owner.hex())  # written by a node not pinned here
            if carry and unknown and signed.kind in ("release", "aggregate"):
                checked.append((doc, signed))
                continue
            member = self.fed.active_peer(signed.owner.hex())
            sends = SENDS.get(member["role"]) if member is not None else None
            if sends is not None and sends != signed.kind:
                role = "msg.bundle.as_school" if member["role"] == "school" else "msg.bundle.as_district"
                raise BundleError(said("msg.bundle.wrong_kind", kind=said(f"msg.bundle.kind.{signed.kind}"),
                                       who=member["uai"] or member["node_id"], role=said(role),
                                       sends=said(f"msg.bundle.kind.{sends}")))
            up = self.upstream()
            if sends is None and up is not None and signed.owner.hex() in (up["key"], *self.fed.predecessors(up["key"])):
                raise BundleError(said("msg.bundle.from_above"))
            if sends is None:
                carry_it = not carry and unknown and self.upstream() is not None
                raise BundleError(said("msg.bundle.not_enrolled_carry" if carry_it else "msg.bundle.not_enrolled",
                                       doc=signed.doc_id))
            checked.append((doc, signed))
        accepted = []
        with self.fed.transaction():
            for doc, signed in checked:
                latest = self.fed.latest_release(signed.doc_id)
                if latest and latest[0] >= signed.release:
                    continue
                try:
                    got = self.try_accept(None, doc, signed, signed.owner)
                except CrdtError as exc:
                    raise BundleError(said("msg.bundle.refused", doc=signed.doc_id, detail=str(exc))) from None
                if got is None:
                    raise BundleError(said("msg.bundle.incomplete", doc=signed.doc_id))
                accepted.append(got)
        return accepted
