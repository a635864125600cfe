"""The federation from the command line: `preau invite`, `join`, `revoke`, `status`, `sync`."""
from __future__ import annotations

import json
import pathlib
import sys
import time
from typing import Any

from preau.node.actions import enrollment, status as node_status
from preau.node.codes import refusal_words

from ..say import Say


def _error(say: Say, link) -> str:
    """A sync failure as recorded: said from its code in French; in English, as it came (with its address)."""
    return link.last_error if say.lang == "en" else refusal_words(link.last_error_code, link.last_error).to(say.lang)


def invite(settings: Any, *, uai: str, lang: str = "en", name: str | None = None, expires_days: int = 7,
           school_url: str | None = None, district: bool = False, town: str | None = None,
           allow_loopback: bool = False, **_: Any) -> str:
    say = Say(lang)
    inv = enrollment.create_invitation(settings, uai=uai, name=name, expires_days=expires_days, school_url=school_url,
                                       district=district, town=town, allow_loopback=allow_loopback)
    # On stderr, terminal or not: the invitation alone goes to stdout (scripts redirect it to a file).
    # The school as the district will know it: its name (and town), as the web's invitation page heads it.
    label = ", ".join(x for x in (inv.name, inv.town) if x)
    who = f"{label} ({inv.uai})" if label else inv.uai
    # A district invited by its académie types the code on its own node, not a school's head teacher.
    key = "joincode.cli_invite_district" if inv.member == "district" else "joincode.cli_invite"
    print(say(key, who=who, days=inv.expires_days, code=inv.code, address=inv.address), file=sys.stderr, flush=True)
    return inv.text


def invitation_text(say: Say, value: str) -> str:
    """The short code or the long invitation as typed, or read from a file, or from standard input ('-')."""
    if value == "-":
        return sys.stdin.read().strip()
    path = pathlib.Path(value)
    if not value.upper().startswith("PREAU1-") and path.is_file():
        try:
            return path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError as exc:
            raise say.error("action.cannot_read", file=value, reason=exc.strerror) from None
    if ("/" in value or value.lower().endswith(".txt")) and not path.exists():
        raise say.error("cli.join_no_file", file=value)
    return value.strip()


def join(settings: Any, *, invitation: str, lang: str = "en", district: str | None = None, again: bool = False,
         **_: Any) -> str:
    say = Say(lang)
    joined = enrollment.join(settings, invitation=invitation_text(say, invitation), district=district,
                             progress=say.progress, again=again)
    district = say("cli.out.district_named", name=joined.name, node_id=joined.district) if joined.name else joined.district
    # A district's parent is its académie: "joined the district" would name the wrong level.
    above = getattr(settings, "role", "school") == "district"
    done = say("cli.out.join.done_academie" if above else "cli.out.join.done", district=district,
               address=joined.address, n=joined.documents)
    if joined.replaced is not None:
        name, node_id = joined.replaced
        was = say("cli.out.district_named", name=name, node_id=node_id) if name else node_id
        done += "\n" + say("cli.out.join.replaced", was=was, district=district)
    return done + ("\n" + say("cli.out.join.note", remark=say.words(joined.clock)) if joined.clock else "")


def revoke(settings: Any, *, node: str, reason: str, lang: str = "en", forget_counts: bool = False,
           **_: Any) -> str:
    say = Say(lang)
    done = enrollment.revoke(settings, node=node, reason=reason, forget_counts=forget_counts)
    lines = []
    if done.revoked:
        lines.append(say("cli.out.revoke.done", who=done.who))
    if done.counts_removed is not None:
        lines.append(say("cli.out.revoke.counts", who=done.who, n=done.counts_removed))
    return "\n".join(lines)


def status(settings: Any, *, lang: str = "en", json: bool = False, **_: Any) -> str:
    say = Say(lang)
    info = node_status.status(settings)
    if json:
        return _json.dumps(info.as_dict(), indent=2, ensure_ascii=False)
    now = int(time.time())
    # An académie is a district node whose members are districts; a district's parent is its académie.
    academie = info.role == "district" and any(p.role == "child" for p in info.peers) and \
        not any(p.role == "school" for p in info.peers)
    lines = [say("cli.out.status.head_academie" if academie else f"cli.out.status.head_{info.role}",
                 node_id=info.node_id)]
    up = info.upstream
    if info.role == "school" or up:
        if up is None:
            lines.append(say("cli.out.status.not_joined"))
        else:
            named = say("cli.out.district_named", name=up.name, node_id=up.node_id) if up.name else up.node_id
            lines.append(say("cli.out.status.academie" if info.role == "district" else "cli.out.status.district",
                             node_id=named, address=up.address)
                         + (say("cli.out.status.last_error", error=_error(say, up)) if up.last_error else ""))
            lines.append(say("cli.out.status.last_sync", ago=say.ago(now, up.last_contact))
                         + (say("cli.out.status.failed_since") if up.last_error else ""))
    for role in ("school", "child"):
        children = [p for p in info.peers if p.role == role]
        if children:
            lines.append(say(f"cli.out.status.enrolled_{role}", n=sum(p.status == "active" for p in children)))
            for p in children:
                active = p.status == "active"
                lines.append(f"  {p.uai}  {p.node_id}  {say(enrollment.PEER_STATUS[p.status])}"
                             + (say("cli.out.status.peer_sync", ago=say.ago(now, p.last_contact)) if active else "")
                             + (say("cli.out.status.peer_error", error=_error(say, p)) if p.last_error and active else ""))
    if info.unacknowledged:
        lines.append(say("cli.out.status.waiting", releases=", ".join(info.unacknowledged)))
    if info.oldest_unacknowledged is not None:
        lines.append(say("cli.out.status.oldest", ago=say.ago(now, info.oldest_unacknowledged)))
    return "\n".join(lines)


_json = json
KINDS = {"release": "cli.out.kind.release", "aggregate": "cli.out.kind.aggregate", "campaign": "cli.out.kind.campaign",
         "receipts": "cli.out.kind.receipts"}  # a document's kind (crdt.schema.KINDS), in words


def sync(settings: Any, *, lang: str = "en", **_: Any) -> str:
    say = Say(lang)
    done = node_status.sync_now(settings, progress=say.progress)
    peer = f"{done.peer_name} ({done.peer})" if done.peer_name else done.peer
    parts = [say("cli.out.sync.done", peer=peer, sent=done.bytes_sent, received=done.bytes_received)]
    # A campaign by its id (what the head teacher reads on the pages), other documents by their full id.
    parts += [say("cli.out.sync.received", kind=say(KINDS[a.kind]) if a.kind in KINDS else a.kind,
                  doc_id=a.campaign if a.kind == "campaign" and a.campaign else a.doc_id, release=a.release)
              for a in done.received]
    acknowledged = "cli.out.sync.acknowledged_academie" if getattr(settings, "role", "school") == "district" \
        else "cli.out.sync.acknowledged"
    parts += [say(acknowledged, doc_id=d, release=n) for d, n in done.acknowledged]
    parts += [say("cli.out.sync.refused", what=r) for r in done.refused]
    return "\n".join(parts)
