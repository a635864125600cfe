"""One function per `preau` command: `fn(settings, **options)`, returning text, an exit code or None.

Secrets never come from flags (they would show in `ps` and shell history):
passwords and recovery keys are read from PREAU_PASSWORD / PREAU_RECOVERY_KEY
when set (scripts, the demo), else asked for on the terminal, else read as one
line from standard input. Long operations say what they are doing on stderr
when it is a terminal (`progress`); what a script reads stays the result only.
"""
from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import pathlib
import sys
import time
import urllib.parse
from typing import Any, Iterator

from preau.crdt.campaign import Campaign
from preau.protocol.errors import LocalProtocolError
from preau.protocol.identity import node_id as node_id_of, parse_node_id
from preau.protocol.invitation import Invitation, clock_remark as invitation_clock_remark
from preau.protocol.joincode import JoinCode, looks_like_code

from preau.node.records import csvio
from preau.node.records.vault import ARGON2
from preau.node.records.backup import restore_backup, write_backup
from preau.node.errors import EXIT_DATA, Conflict, NotFound, UserError, checked_uai
from preau.node.federation import pools as fpools
from preau.node.federation.joincode import checked_code
from preau.node.oplock import refuse_while_served
from preau.node.federation.store import FedStore
from preau.node.release import approve_release, preview_release
from preau.node.runtime import DEFAULT_OVERLAP_DAYS, FEDERATION_DB, IDENTITY_FILE, Node, create_identity, open_node as runtime_open_node
from preau.node.settings import from_settings_file, given_on_command_line, render_toml
from preau.node import i18n
from preau.node.records.store import MIN_PASSWORD, Store
from preau.node.records.errors import BackupError


def argon2_cost(settings):
    return ARGON2[settings.argon2_profile]


def progress(message: str) -> None:
    """Say what a long operation is doing, on a terminal only: scripts and logs get just the result."""
    stream = sys.stderr
    if stream is not None and stream.isatty():
        print(message, file=stream, flush=True)


def _on_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def read_secret(prompt: str, env: str, *, confirm: bool = False, again: str = "Again, to check: ") -> str:
    """A secret from the environment, the terminal (never echoed), or one line of standard input.

    With `confirm`, a secret typed on the terminal is asked twice, since nobody
    can see a typo in what they typed blind.
    """
    value = os.environ.get(env)
    if value:
        return value
    if _on_terminal():
        try:
            value = getpass.getpass(prompt)
            if confirm and value and getpass.getpass(again) != value:
                raise UserError("the two entries differ; nothing was changed: run the command again")
        except EOFError:
            value = ""
        if not value:
            raise UserError(f"{prompt.rstrip(': ')} is needed: type it when asked, or set {env}")
        return value
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line.strip():
        raise UserError(f"{prompt.rstrip(': ')} is needed: type it when asked, or set {env}")
    return line.rstrip("\n")


def open_store(settings) -> Store:
    return Store.open(settings.data_dir, cost=argon2_cost(settings))


def open_node(settings, **kw) -> Node:
    return runtime_open_node(settings, **kw)


def admin_session(store: Store, username: str | None = None):
    """Log in as a head teacher account: the command's --user, else PREAU_USER, else the school's only head
    teacher account (whatever `preau init --admin` named it), else admin."""
    user = username or os.environ.get("PREAU_USER")
    if not user:
        admins = [r["username"] for r in store.db.query(
            "SELECT username FROM accounts WHERE role = 'admin' AND active = 1 ORDER BY username")]
        if len(admins) > 1:
            raise UserError(f"this school has several head teacher accounts ({', '.join(admins)}): "
                            "say which one with --user")
        user = admins[0] if admins else "admin"
    return store.login(user, read_secret(f"Password for {user}: ", "PREAU_PASSWORD"))


def require_node(settings) -> None:
    """A clear error for a folder with no node, before role checks that would blame the wrong thing."""
    if not (pathlib.Path(settings.data_dir) / IDENTITY_FILE).exists():
        raise NotFound(f"no Préau node in {settings.data_dir}: run `preau init` there first "
                       "(or give the right --data-dir)")


def require_role(settings, role: str, refusal: str) -> None:
    """The command is for one role only: say so (after checking there is a node at all)."""
    require_node(settings)
    if settings.role != role:
        raise UserError(refusal)


@contextlib.contextmanager
def opened_node(settings) -> Iterator[Node]:
    """The node of the data folder, for the time of one command; closed whatever happens."""
    require_node(settings)
    node = open_node(settings)
    try:
        yield node
    finally:
        node.close()


def _uai(text: str) -> str:
    return checked_uai(text)


# -- init, serve -------------------------------------------------------------------


def init_node(settings, *, uai: str, name: str | None = None, admin: str = "admin", password: str | None = None,
              lang: str = "en", **_: Any) -> str:
    """Set up a node; `password` is for callers in Python (the demo), the command line always asks."""
    data = pathlib.Path(settings.data_dir)
    if any((data / f).exists() for f in (FEDERATION_DB, IDENTITY_FILE, "preau.db")):
        raise Conflict(f"{data} already holds a Préau node; choose another --data-dir or remove it first")
    uai = _uai(uai)
    if settings.mdns:  # say now, not at the first `preau serve`, that the optional library is missing
        from preau.node.federation.mdns import zeroconf_module

        zeroconf_module()
    if password is None:
        password = _new_admin_password(admin, lang)
    data.mkdir(parents=True, exist_ok=True)
    label = name or (f"École {uai}" if settings.role == "school" else f"Circonscription {uai}")
    store, recovery = Store.create(data, uai=uai, school_name=label, admin_username=admin,
                                   admin_password=password, cost=argon2_cost(settings))
    store.close()
    identity = create_identity(data)
    FedStore(data / FEDERATION_DB).close()
    # Merged into what the file already says (a public_url set first, as the docs' order has it), never over it.
    settings.settings_file.write_text(render_toml({**from_settings_file(settings), **given_on_command_line(settings)}))
    t = lambda key, **kw: i18n.translate(lang, key, **kw)  # noqa: E731
    return "\n".join([
        t(f"cli.init_done_{settings.role}", data=data),
        t("cli.init_uai", uai=uai, name=label),
        t("cli.init_node_id", node_id=identity.node_id),
        t("cli.init_admin", admin=admin),
        "",
        t("cli.init_recovery"),
        f"  {recovery}",
    ])


def _new_admin_password(admin: str, lang: str, tries: int = 3) -> str:
    """The first head teacher's password; one too short is asked again (typed blind, the long command
    should not have to be typed again), except from PREAU_PASSWORD, which cannot be asked again."""
    prompt = i18n.translate(lang, "cli.prompt_admin_password", admin=admin)
    again = i18n.translate(lang, "cli.prompt_again")
    for attempt in range(tries):
        password = read_secret(prompt, "PREAU_PASSWORD", confirm=True, again=again)
        if len(password) >= MIN_PASSWORD or os.environ.get("PREAU_PASSWORD") or attempt == tries - 1:
            return password  # Store.create refuses it with its reason if it is still too short
        problem = i18n.translate(lang, "store.password_short", n=MIN_PASSWORD)
        print(i18n.translate(lang, "cli.password_again", problem=problem), file=sys.stderr, flush=True)
    raise AssertionError("unreachable")


# -- enrollment ------------------------------------------------------------------------


def create_invitation(settings, *, uai: str, name: str | None = None, expires_days: int = 7,
                      school_url: str | None = None, district: bool = False, town: str | None = None,
                      allow_loopback: bool = False, announce: bool = True, lang: str = "en", **_: Any) -> str:
    require_role(settings, "district", "only a district node invites schools; this node is a school")
    if not 1 <= expires_days <= 90:
        raise UserError("--expires-days must be between 1 and 90")
    uai = _uai(uai)
    address = settings.advertised_url
    school_address = _school_url(school_url)  # a malformed --school-url is named first
    if _is_loopback(address) and not allow_loopback:
        raise UserError(
            f"this invitation would point at {address}, which only this machine can reach: set public_url in "
            f"{settings.settings_file} to the address the {'districts' if district else 'schools'} use "
            "(docs/operations.md, \"Running a district node\"), or add --allow-loopback for a trial on this machine")
    with opened_node(settings) as node:
        inv = node.create_invitation(uai, [address], ttl=expires_days * 86400, name=name,
                                     school_address=school_address,
                                     member="district" if district else "school", town=town)
    if announce:  # on stderr, terminal or not: the invitation alone goes to stdout (scripts redirect it to a file)
        short = JoinCode.from_secret(inv.secret).text
        print(i18n.translate(lang, "joincode.cli_invite", uai=uai, days=expires_days, code=short, address=address),
              file=sys.stderr, flush=True)
    return inv.to_string()


def _is_loopback(url: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

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
        raise UserError(f"--school-url must be an http:// or https:// address like http://10.0.0.5:8080, got {value!r}")
    return value.rstrip("/")


def _invitation_text(value: str) -> str:
    if value == "-":
        return sys.stdin.read().strip()
    path = pathlib.Path(value)
    if not value.upper().startswith("PREAU1-") and path.is_file():
        try:
            return path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError as exc:
            raise UserError(f"cannot read {value}: {exc.strerror}") from None
    if ("/" in value or value.lower().endswith(".txt")) and not path.exists():
        raise UserError(f"there is no file {value}: give the invitation code (4 groups of 5 characters), "
                        "the long invitation text (PREAU1-...) or the file holding it")
    return value.strip()


def join(settings, *, invitation: str, district: str | None = None, **_: Any) -> str:
    require_node(settings)
    store = open_store(settings)
    try:
        uai = store.school()["uai"]
    finally:
        store.close()
    text = _invitation_text(invitation)
    if looks_like_code(text):
        checked_code(text)  # a typo is refused here, before anything is opened or sent
    with opened_node(settings) as node:
        progress(f"Contacting the district named in the invitation, as {uai} ...")
        try:
            report = asyncio.run(node.join(text, uai, district))
        except LocalProtocolError as exc:
            # The protocol checks the invitation against this node (its UAI, its expiry) before
            # connecting; those refusals are the person's to fix, not bugs.
            raise UserError(exc.message) from None
        up = node.federation.upstream()
    done = f"Joined the district {up['node_id']} at {up['address']}; {len(report.accepted)} document(s) received."
    remark = None if looks_like_code(text) else invitation_clock_remark(Invitation.parse(text), int(time.time()))
    return done + (f"\nNote: {remark}." if remark else "")


def revoke(settings, *, node: str, reason: str, forget_counts: bool = False, **_: Any) -> str:
    require_role(settings, "district", "only a district node revokes the nodes it enrolled; this node is a school")
    if not reason.strip():
        raise UserError("--reason must say why (it is kept in the district's journal)")
    lines = []
    with opened_node(settings) as n:
        target = _find_peer(n, node, revoked_too=forget_counts)
        who = f"{target['uai'] or ''} {_peer_id(target)}".strip()
        if n.fed.revoke_peer(target["key"]):
            n.fed.log_event("revoked", f"{who}: {reason}", uai=target["uai"], node_id=_peer_id(target), reason=reason)
            lines.append(f"Revoked {who}; its sessions and releases are refused from now on.")
        elif not forget_counts:
            raise Conflict(f"{who} is already revoked")
        if forget_counts:
            keys = [target["key"], *n.fed.predecessors(target["key"])]
            dropped = n.fed.forget_counts(keys)
            n.fed.log_event("counts_forgotten", f"{who}: {dropped} statistics entr{'y' if dropped == 1 else 'ies'} "
                                                f"removed ({reason})", uai=target["uai"], node_id=_peer_id(target),
                            entries=dropped, reason=reason)
            lines.append(f"Removed {who}'s counts from {dropped} campaign(s) of this district's statistics; "
                         "the node above gets the new totals at the next sync.")
    return "\n".join(lines)


def _peer_id(peer: dict) -> str:
    """A peer's node id, computed from its pinned key (the stored copy can lag after a key rotation)."""
    return node_id_of(bytes.fromhex(peer["key"]))


def _find_peer(node: Node, text: str, *, revoked_too: bool = False) -> dict:
    """The peer named by a UAI or a node id; its active pin first, else the latest other one."""
    text = text.strip()
    try:
        wanted = parse_node_id(text)
    except LocalProtocolError:
        wanted = None
    matches = [p for p in node.fed.peers()
               if (p["uai"] and p["uai"] == "".join(text.split()).upper()) or (wanted and _peer_id(p) == wanted)]
    if not matches:
        raise NotFound(f"no enrolled node matches {text!r}: give a school's UAI or its node id (see `preau status`)")
    active = [p for p in matches if p["status"] == "active"]
    if active:
        return active[0]
    revoked = [p for p in matches if p["status"] == "revoked"]
    if revoked_too and revoked:
        return revoked[-1]
    states = {p["status"] for p in matches}
    raise Conflict(f"{text} is already {'revoked' if 'revoked' in states else matches[-1]['status']}: nothing to do")


# -- sync, status ------------------------------------------------------------------------


def sync_now(settings, **_: Any) -> str:
    with opened_node(settings) as node:
        up = node.federation.upstream()
        if up is not None:
            progress(f"Synchronising with the district at {up['address']} ...")
        report = asyncio.run(node.sync_upstream())
    parts = [f"Synced with {report.peer}: sent {report.bytes_sent} bytes, received {report.bytes_received} bytes."]
    for a in report.accepted:
        parts.append(f"  received {a.kind} {a.doc_id} (release {a.release})")
    for r in report.receipts:
        parts.append(f"  the district acknowledged {r['doc_id']} release {r['release']}")
    for r in report.refused:
        parts.append(f"  refused {r}")
    return "\n".join(parts)


def node_status(node: Node) -> dict[str, Any]:
    up = node.federation.upstream()
    docs = node.fed.documents()
    return {
        "role": node.role,
        "node_id": node.node_id,
        "upstream": None if up is None else {"node_id": _peer_id(up), **{k: up[k] for k in ("address", "last_contact", "last_error")}},
        "peers": [{"node_id": _peer_id(p), **{k: p[k] for k in ("role", "uai", "status", "last_contact", "last_error")}}
                  for p in node.fed.peers()],
        "documents": [{"doc_id": d.doc_id, "kind": d.kind, "campaign": d.campaign,
                       "release": (node.fed.latest_release(d.doc_id) or (0,))[0]} for d in docs],
        "unacknowledged": [t["doc_id"] + f"#{t['number']}" for t in node.fed.transparency() if t["receipt"] is None],
        "oldest_unacknowledged": node.oldest_unacknowledged() if up is not None else None,
        "events": [{k: e[k] for k in ("at", "kind", "detail", "params")} for e in node.fed.events(10)],
    }


def status(settings, *, json: bool = False, **_: Any) -> str:
    with opened_node(settings) as node:
        info = node_status(node)
    if json:
        return _json.dumps(info, indent=2, ensure_ascii=False)
    now = int(time.time())
    lines = [f"{info['role']} node {info['node_id']}"]
    up = info["upstream"]
    if node.role == "school" or up:
        lines.append("district: " + ("not joined yet (preau join)" if up is None else
                                     f"{up['node_id']} at {up['address']}" + (f" - last error: {up['last_error']}" if up["last_error"] else "")))
        if up is not None:
            lines.append(f"last sync: {_ago(now, up['last_contact'])}"
                         + (" (the attempts since failed: see the last error above)" if up["last_error"] else ""))
    for role, label in (("school", "schools"), ("child", "districts")):
        children = [p for p in info["peers"] if p["role"] == role]
        if children:
            lines.append(f"{label} enrolled: {sum(p['status'] == 'active' for p in children)}")
            for p in children:
                lines.append(f"  {p['uai']}  {p['node_id']}  {p['status']}"
                             + (f"  last sync {_ago(now, p['last_contact'])}" if p["status"] == "active" else "")
                             + (f"  last error: {p['last_error']}" if p["last_error"] and p["status"] == "active" else ""))
    if info["unacknowledged"]:
        lines.append("waiting for the district's receipt: " + ", ".join(info["unacknowledged"]))
    if info["oldest_unacknowledged"] is not None:
        lines.append(f"oldest release waiting for its receipt: approved {_ago(now, info['oldest_unacknowledged'])}")
    return "\n".join(lines)


def _ago(now: int, then: int | None) -> str:
    """A time in words a person reads at a glance ("3 hours ago"), with the date for the record."""
    if then is None:
        return "never"
    delta = max(0, now - then)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if delta >= size or size == 1:
            n = delta // size
            stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(then))
            return f"{n} {unit}{'' if n == 1 else 's'} ago ({stamp})"
    raise AssertionError("unreachable")


_json = json


# -- release, stats ------------------------------------------------------------------------


def release(settings, *, campaign: str, approve: bool = False, final: bool = False, user: str | None = None,
            **_: Any) -> str:
    """Preview (and with approve, sign) a school's release; `final` makes it the campaign's closing release."""
    require_role(settings, "school", "releases are made on a school node; on a district, see `preau stats`")
    with opened_node(settings) as node:
        store = node.store
        session = admin_session(store, user)
        preview = preview_release(store, session, node.federation, campaign, closing=True if final else None)
        lines = [f"Campaign {campaign}: {preview.decision.reason or 'ready'}"
                 + (" (closing release: the campaign's last)" if preview.closing else "")]
        lines.append("Privacy rules applied:")
        lines.extend(f"  - {st.text}" for st in preview.policy)
        for ex, (t1, t2) in preview.thresholds:
            lines.append(f"  Thresholds kept for {ex} (used by earlier releases): {t1}, {t2}")
        for a in preview.asked:
            lines.append(f"  The newest campaign version asked {a.setting}"
                         f"{' of ' + a.exercise if a.exercise else ''} = {a.asked}; kept: {a.kept}")
        doc = preview.document()
        if doc is not None:
            lines.append("What would leave the school (exactly this document):")
            lines.append(_json.dumps(doc, indent=2, ensure_ascii=False))
        for v in fpools.pools(node.federation, campaign):
            lines.append("Pool proposed by the district (secure aggregation): " + v.line().replace("\n", "\n  "))
            if v.status == "proposed":
                lines.append(f"  Only a masked vector of this school's counts would leave, which only the pool's sum "
                             f"can open. To take part: `preau pool approve {v.pool_id[:8]}`")
        if approve:
            signed = approve_release(store, session, node.federation, preview)
            lines.append(f"Release {signed.release} signed; it is sent to the district at the next sync (or run `preau sync`).")
        elif preview.will_release:
            lines.append("Run again with --approve" + (" --final" if final else "") + " to sign and send it.")
    return "\n".join(lines)


def stats_rows(stats: dict) -> list[dict[str, Any]]:
    from preau.crdt.statistics import CampaignStatistics

    s = CampaignStatistics.from_dict(stats)
    rows = []
    for ex in s.exercise_ids():
        e = s.exercise(ex)
        # "≥N" where a district hid part of the cell (an académie's statistics): never a bound passed off as a count.
        rows.append({"exercise": ex, **{k: e.shown(k) for k in e.counts}, "schools": e.schools_contributing})
    return rows


def _school_stats(node: Node, campaign: str) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """A school's own counts: its latest signed release, read at its signed heads (exactly what the district got)."""
    from preau.crdt.docio import load_document
    from preau.crdt.documents import read_release
    from preau.crdt.schema import document_id
    from preau.crdt.signing import SignedRelease

    rid = document_id("release", node.federation.key, campaign)
    latest = node.fed.latest_release(rid)
    stored = node.fed.document(rid)
    if latest is None or stored is None:
        raise NotFound(f"this school has not released anything for campaign {campaign!r} yet: "
                       f"`preau release {campaign}` shows what would leave, --approve sends it")
    signed = SignedRelease.decode(latest[1])
    content = read_release(load_document(stored.data), list(signed.heads))
    rows = [{"exercise": r.exercise, **r.to_dict()} for r in content.rows]
    head = (f"Campaign {campaign}: this school's release {content.release} ({content.status}"
            + (f": {content.reason}" if content.reason and content.status != "published" else "")
            + (", closing" if content.final else "") + "), as the district received it")
    meta = {"release": content.release, "status": content.status, "reason": content.reason, "final": content.final}
    return head, rows, meta


def _pool_summary(v) -> str:
    if v.status == "complete":
        return f"Pool {v.pool_id[:8]}: {v.survivors} écoles regroupées, {v.pupils} élèves (one row above)"
    return f"Pool {v.pool_id[:8]}: {v.status}" + (f" ({v.reason})" if v.reason else "") + " — no figures"


def stats(settings, *, campaign: str, format: str = "table", **_: Any) -> str:
    """A district's merged statistics, or on a school the counts of its latest release."""
    from preau.crdt.statistics import CampaignStatistics

    with opened_node(settings) as node:
        if settings.role == "school":
            head, rows, meta = _school_stats(node, campaign)
            data = None
        else:
            data = node.fed.stats(campaign)
            known = sorted(c.id for c in node.federation.campaigns())
            pool_views = fpools.pools(node.federation, campaign)
    if settings.role != "school":
        if data is None:
            if campaign not in known:
                raise NotFound(f"no campaign {campaign!r} on this district"
                               + (f"; its campaigns: {', '.join(known)}" if known else "; load one with `preau campaign load`"))
            raise NotFound(f"no statistics for campaign {campaign!r} yet: no school release has arrived")
        s = CampaignStatistics.from_dict(data)
        rows = stats_rows(data)
        if s.districts_contributing:
            head = (f"Campaign {campaign}: {s.schools_contributing} district(s) contributing, covering "
                    f"{s.schools_represented} school(s); {s.schools_withheld} with nothing publishable. "
                    "A count marked ≥ is a lower bound: a district hid a small value in it")
        else:
            head = (f"Campaign {campaign}: {s.schools_contributing} school(s) contributing, "
                    f"{s.schools_withheld} withheld (small cohort)")
        meta = {"schools_contributing": s.schools_contributing, "schools_withheld": s.schools_withheld,
                **({"districts_contributing": s.districts_contributing, "schools_represented": s.schools_represented}
                   if s.districts_contributing else {})}
        if pool_views:  # a completed pool is one contributing row: its schools' sum, never one school's counts
            head += "".join("\n" + _pool_summary(v) for v in pool_views)
            meta["pools"] = [{"pool": v.pool_id, "status": v.status, "schools": v.survivors, "pupils": v.pupils}
                             for v in pool_views]
    if format == "json":
        if settings.role != "school":  # per cell, how many districts hid it (an académie's sums are lower bounds there)
            rows = [{**r, "hidden_by": {c: n for c, n in s.exercise(r["exercise"]).hidden.items() if n}} for r in rows]
        return _json.dumps({"campaign": campaign, **meta, "exercises": rows}, indent=2, ensure_ascii=False)
    cols = list(rows[0]) if rows else ["exercise"]
    if format == "csv":
        text = csvio.write_csv(cols, ([r[c] for c in cols] for r in rows), delimiter=",", bom=False, lineterminator="\n")
        return text.rstrip("\n")
    widths = {c: max([len(c), *(len(str(r[c])) for r in rows)]) for c in cols}
    lines = [head, "  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)


# -- backup, bundles, keys, campaigns ----------------------------------------------------------


def _output_file(output: str, example: str) -> pathlib.Path:
    """Refuse an output path that cannot be written before doing any work."""
    out = pathlib.Path(output)
    if out.is_dir():
        raise UserError(f"{output} is a folder: give a file name, e.g. {out / example}")
    if not out.parent.is_dir():
        raise UserError(f"cannot write {output}: the folder {out.parent} does not exist")
    return out


def new_recovery_key(settings, *, user: str | None = None, **_: Any) -> str:
    require_node(settings)
    store = open_store(settings)
    try:
        key = store.new_recovery_key(admin_session(store, user))
    finally:
        store.close()
    return "\n".join([
        "New recovery key (shown once; write it down and keep it somewhere safe, away from the box):",
        f"  {key}",
        "The old recovery key no longer opens this node, but backups made before still open with it: make a new "
        "backup now and destroy the old ones.",
    ])


def backup(settings, *, output: str, user: str | None = None, **_: Any) -> str:
    out = _output_file(output, "preau.backup")
    require_node(settings)
    store = open_store(settings)
    try:
        session = admin_session(store, user)
        progress(f"Writing an encrypted backup to {output} ...")
        path = write_backup(store, session, out)
    finally:
        store.close()
    return f"Encrypted backup written to {path}; it opens with the recovery key or an administrator's password."


def restore(settings, *, file: str, force: bool = False, user: str | None = None, **_: Any) -> str:
    """Restore the school store from a backup; with --user, an administrator's password opens it instead of the recovery key.

    The backup holds the node's keys and federation state too, so the node
    keeps its enrolment. An older backup without them gives the node new keys,
    and the district must enrol it again.
    """
    data = pathlib.Path(settings.data_dir)
    if not pathlib.Path(file).is_file():
        raise UserError(f"no backup file at {file}", EXIT_DATA)
    refuse_while_served(data, "restoring")
    try:
        with open(file, "rb"):
            pass
    except PermissionError:
        me = getpass.getuser()
        raise UserError(f"cannot read {file}: the user {me} may not read it. Copy it where {me} can, for example "
                        f"`install -o {me} -m 0600 {file} {data}/incoming.backup`, and restore that copy") from None
    if (data / "preau.db").exists() and not force:
        raise Conflict(f"{data} already holds a Préau node; restore into an empty folder, "
                       "or add --force to replace it (the current files are kept aside)")
    if user:
        password = read_secret(f"Password for {user}: ", "PREAU_PASSWORD")
        secrets = {"username": user, "password": password}
    else:
        secrets = {"recovery_key": read_secret("Recovery key: ", "PREAU_RECOVERY_KEY")}
    progress(f"Checking and restoring {file} into {data} ...")
    aside_before = set(data.glob("preau.toml.before-restore-*"))
    try:
        restore_backup(file, data, replace=force, **secrets)
    except BackupError as exc:
        if exc.code in ("corrupt", "not_a_backup", "backup_version"):
            raise UserError(exc.message, EXIT_DATA, code=exc.code) from None
        raise
    lines = [f"Restored into {data}."]
    kept = sorted(set(data.glob("preau.toml.before-restore-*")) - aside_before)
    if kept:
        lines.append(f"The settings file from the backup replaces the one that was there, kept as {kept[-1].name}: "
                     "copy back any setting you still want (a new public_url, say).")
    if not (data / IDENTITY_FILE).exists():
        identity = create_identity(data)
        FedStore(data / FEDERATION_DB).close()
        lines.append(f"This (older) backup does not hold the node's keys: this node has new ones ({identity.node_id}); "
                     "ask the district for a new invitation and run `preau join`.")
    return "\n".join(lines)


def export_bundle(settings, *, output: str, **_: Any) -> str:
    out = _output_file(output, "preau.bundle")
    with opened_node(settings) as node:
        data = node.federation.export_bundle()
    out.write_bytes(data)
    count = len(_json.loads(data)["documents"])
    if settings.role == "district":  # bundles carry releases up only: school -> district -> académie
        return (f"{count} signed document(s) written to {output}; import them on the node above this district "
                "(its académie) with `preau bundle import`. Schools get campaigns by syncing, not by bundle.")
    return f"{count} signed document(s) written to {output}; import them on the district with `preau bundle import`."


def import_bundle(settings, *, file: str, carry: bool = False, **_: Any) -> str:
    try:
        data = pathlib.Path(file).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror}", EXIT_DATA) from None
    with opened_node(settings) as node:
        if carry and node.federation.upstream() is None:
            raise UserError("this node has no district to pass the documents to: join one first (preau join), "
                            "or import the bundle on the district itself")
        accepted = node.federation.import_bundle(data, carry=carry)
        carried = [a for a in accepted if node.federation.is_carried(a.owner.hex())]
    if carried:
        return (f"{len(accepted)} document(s) checked and imported; {len(carried)} to carry to the district at the "
                "next sync, where each is verified against its own school's key.")
    return f"{len(accepted)} document(s) verified and imported."


def rotate_keys(settings, *, yes: bool = False, overlap_days: int = DEFAULT_OVERLAP_DAYS, **_: Any) -> str:
    if not yes and _on_terminal():
        answer = input("Replace this node's long-term keys? Peers learn the new ones at the next sync. [y/N] ")
        if answer.strip().lower() not in ("y", "yes", "o", "oui"):
            return "Nothing changed."
    with opened_node(settings) as node:
        old = node.node_id
        new = node.rotate_keys(overlap_days)
        members = bool(node.federation.children())
    lines = [f"New keys: {old} -> {new.node_id}. The district updates its pin at the next sync."]
    if members and overlap_days:
        lines.append(f"The nodes enrolled here still know the old key: for {overlap_days} days this node answers "
                     "on it and tells each of them of the new one at its next sync.")
    elif members:
        lines.append("The old key is dropped now: the nodes enrolled here cannot reach this node any more "
                     "and must be invited again.")
    lines.append("Make a new backup now: a backup made before this rotation brings back the old key.")
    return "\n".join(lines)


def load_campaign(settings, *, campaign: Campaign, file: str, **_: Any) -> str:
    require_role(settings, "district", "campaigns are published by a district node")
    from preau.crdt.schema import document_id

    with opened_node(settings) as node:
        before = node.fed.latest_release(document_id("campaign", node.federation.key, campaign.id))
        signed = node.federation.publish_campaign(campaign)
    if before is not None and before[0] == signed.release:
        return f"Campaign {campaign.id} is unchanged (version {signed.release}): nothing new for the schools."
    return f"Campaign {campaign.id} published (version {signed.release}); schools receive it at their next sync."
