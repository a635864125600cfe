"""Enrolment: a district invites (command line and web alike), a school joins, a district revokes."""
from __future__ import annotations

import asyncio
import ipaddress
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from preau.protocol.errors import LocalProtocolError
from preau.protocol.identity import node_id as node_id_of, parse_node_id
from preau.protocol.invitation import MAX_CLOCK_SKEW, Invitation, utc
from preau.protocol.joincode import JoinCode, looks_like_code

from preau.node.federation.joincode import checked_code
from preau.node.runtime import Node

from .common import Conflict, NotFound, Progress, UserError, Words, open_store, opened_node, refuse, require_node, \
    require_role, said, tell, uai_of


# A pinned peer's state in words (federation.db's peers.status).
PEER_STATUS = {"active": "action.peer_status.active", "revoked": "action.peer_status.revoked",
               "rotated": "action.peer_status.rotated"}


@dataclass(frozen=True, slots=True)
class IssuedInvitation:
    uai: str
    member: str  # "school" or "district"
    address: str  # where the invitation tells the member to connect
    expires_days: int
    expires_at: int
    id: str  # hex
    text: str  # PREAU1-...: the long invitation (a file, the QR code)
    code_groups: tuple[str, ...]  # the short code the head teacher types, in groups (protocol.joincode)
    name: str | None = None  # the school's name and town, as the district will know it
    town: str | None = None

    @property
    def code(self) -> str:
        return "-".join(self.code_groups)


def issue_invitation(node: Node, *, uai: str, address: str, expires_days: int = 7, name: str | None = None,
                     town: str | None = None, member: str = "school", school_address: str | None = None) -> IssuedInvitation:
    """A one-time invitation for a school (or a district below this one): the command line's and the web's."""
    inv = node.create_invitation(uai, [address], ttl=expires_days * 86400, name=name, school_address=school_address,
                                 member=member, town=town)
    return IssuedInvitation(inv.uai, member, address, expires_days, inv.expires_at, inv.id.hex(), inv.to_string(),
                            JoinCode.from_secret(inv.secret).groups, name, town)


def create_invitation(settings: Any, *, uai: str, name: str | None = None, expires_days: int = 7,
                      school_url: str | None = None, district: bool = False, town: str | None = None,
                      allow_loopback: bool = False, **_: Any) -> IssuedInvitation:
    require_role(settings, "district", "action.invite_district_only")
    if not 1 <= expires_days <= 90:
        raise refuse("action.invite_days")
    uai = uai_of(uai)
    # As the web's form keeps them: spaces tidied, a sensible length ("  École  A " was stored as typed).
    name = " ".join((name or "").split())[:120] or None
    town = " ".join((town or "").split())[:80] or None
    address = settings.advertised_url
    school_address = _school_url(school_url)  # a malformed --school-url is named first
    if is_loopback(address) and not allow_loopback:
        raise refuse("action.invite_loopback_district" if district else "action.invite_loopback",
                     address=address, file=settings.settings_file)
    with opened_node(settings) as node:
        return issue_invitation(node, uai=uai, address=address, expires_days=expires_days, name=name, town=town,
                                member="district" if district else "school", school_address=school_address)


def is_loopback(url: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _school_url(value: str | None) -> str | None:
    if value is None:
        return None
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise refuse("action.school_url", value=repr(value))
    return value.rstrip("/")


@dataclass(frozen=True, slots=True)
class Joined:
    district: str  # node id of the district now pinned
    address: str
    documents: int  # documents received in the first session
    clock: Words | None  # the two clocks differ by more than a day: which is wrong
    name: str | None = None  # the district's own name, as its handshake gave it
    # `join --again` moved the pin from another key: (its name, its node id), said so the head teacher can
    # check the move (nothing tells a district's new key from another district's: see docs/operations.md)
    replaced: tuple[str | None, str] | None = None


def join(settings: Any, *, invitation: str, district: str | None = None, progress: Progress | None = None,
         again: bool = False, **_: Any) -> Joined:
    """Enrol this school with its district: `invitation` is the short code (then `district` is the district's
    address, printed with it) or the long invitation text, as the caller read them."""
    require_node(settings)
    store = open_store(settings)
    try:
        uai = store.school()["uai"]
    finally:
        store.close()
    text = invitation.strip()
    if looks_like_code(text):
        checked_code(text)  # a typo is refused here, before anything is opened or sent
    with opened_node(settings) as node:
        tell(progress, "action.join_contacting", uai=uai)
        before = node.federation.upstream()
        try:
            report = asyncio.run(node.join(text, uai, district, again=again))
        except LocalProtocolError as exc:
            # The protocol checks the invitation against this node (its UAI, its expiry) before
            # connecting; those refusals are the person's to fix, not bugs.
            raise UserError(exc.message) from None
        up = node.federation.upstream()
    remark = None if looks_like_code(text) else clock_remark(Invitation.parse(text), int(time.time()))
    replaced = (before.get("name"), before["node_id"]) if before and before["key"] != up["key"] else None
    return Joined(up["node_id"], up["address"], len(report.accepted), remark, up.get("name"), replaced)


def clock_remark(inv: Invitation, now: int) -> Words | None:
    """The district made the invitation further than a day from this machine's time: say both clocks."""
    if inv.issued_at is None or abs(inv.issued_at - now) <= MAX_CLOCK_SKEW:
        return None
    hours = abs(inv.issued_at - now) // 3600
    key = "action.clock_ahead" if inv.issued_at > now else "action.clock_behind"
    return said(key, hours=hours, issued=utc(inv.issued_at), now=utc(now))


@dataclass(frozen=True, slots=True)
class Revoked:
    who: str  # "UAI node-id"
    revoked: bool  # False: it was revoked already, and only its counts were removed now
    counts_removed: int | None  # campaigns whose statistics lost its counts (None: not asked)


def revoke(settings: Any, *, node: str, reason: str, forget_counts: bool = False, **_: Any) -> Revoked:
    require_role(settings, "district", "action.revoke_district_only")
    if not reason.strip():
        raise refuse("action.revoke_reason")
    with opened_node(settings) as n:
        target = find_peer(n, node, revoked_too=forget_counts)
        who = f"{target['uai'] or ''} {peer_id(target)}".strip()
        revoked = n.fed.revoke_peer(target["key"])
        if revoked:
            n.fed.log_event("revoked", f"{who}: {reason}", uai=target["uai"], node_id=peer_id(target), reason=reason)
        elif not forget_counts:
            raise refuse("action.already_revoked", Conflict, who=who)
        dropped = None
        if forget_counts:
            keys = [target["key"], *n.fed.predecessors(target["key"])]
            dropped = n.fed.forget_counts(keys)
            n.fed.log_event("counts_forgotten", f"{who}: {dropped} statistics entr{'y' if dropped == 1 else 'ies'} "
                                                f"removed ({reason})", uai=target["uai"], node_id=peer_id(target),
                            entries=dropped, reason=reason)
    return Revoked(who, revoked, dropped)


def peer_id(peer: dict) -> str:
    """A peer's node id, computed from its pinned key (the stored copy can lag after a key rotation)."""
    return node_id_of(bytes.fromhex(peer["key"]))


def find_peer(node: Node, text: str, *, revoked_too: bool = False) -> dict:
    """The peer named by a UAI or a node id; its active pin first, else the latest other one."""
    text = text.strip()
    try:
        wanted = parse_node_id(text)
    except LocalProtocolError:
        wanted = None
    matches = [p for p in node.fed.peers()
               if (p["uai"] and p["uai"] == "".join(text.split()).upper()) or (wanted and peer_id(p) == wanted)]
    if not matches:
        raise refuse("action.no_such_peer", NotFound, text=repr(text))
    active = [p for p in matches if p["status"] == "active"]
    if active:
        return active[0]
    revoked = [p for p in matches if p["status"] == "revoked"]
    if revoked_too and revoked:
        return revoked[-1]
    states = {p["status"] for p in matches}
    raise refuse("action.peer_already", Conflict, text=text,
                 status=said(PEER_STATUS["revoked" if "revoked" in states else matches[-1]["status"]]))
