"""One function per `preau` command: `fn(settings, **options)`, returning text, an exit code or None.

Secrets never come from flags (they would show in `ps` and shell history):
passwords and recovery keys are read from PREAU_PASSWORD / PREAU_RECOVERY_KEY
when set (scripts, the demo), else asked for on the terminal, else read as one
line from standard input.
"""
from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
import os
import pathlib
import sys
from typing import Any

from preau.crdt.campaign import Campaign
from preau.protocol.errors import LocalProtocolError
from preau.protocol.identity import parse_node_id
from preau.protocol.uai import parse_uai

from .vault import ARGON2
from .backup import restore_backup, write_backup
from .errors import EXIT_DATA, Conflict, NotFound, UserError
from .fedstore import FedStore
from .release import approve_release, preview_release
from .runtime import FEDERATION_DB, Node, create_identity
from .settings import given_on_command_line, render_toml
from .store import Store

def argon2_cost(settings):
    return ARGON2[settings.argon2_profile]


def read_secret(prompt: str, env: str) -> str:
    value = os.environ.get(env)
    if value:
        return value
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line.strip():
        raise UserError(f"{prompt.rstrip(': ')} is needed: type it when asked, or set {env}")
    return line.rstrip("\n")


def open_store(settings) -> Store:
    return Store.open(settings.data_dir, cost=argon2_cost(settings))


def open_node(settings, **kw) -> Node:
    from .app import open_node as _open

    return _open(settings, **kw)


def admin_session(store: Store, username: str | None = None):
    user = username or os.environ.get("PREAU_USER") or "admin"
    return store.login(user, read_secret(f"Password for {user}: ", "PREAU_PASSWORD"))


# -- init, serve -------------------------------------------------------------------


def init_node(settings, *, uai: str, name: str | None = None, admin: str = "admin", **_: Any) -> str:
    data = pathlib.Path(settings.data_dir)
    if (data / FEDERATION_DB).exists() or (data / "identity.key").exists():
        raise Conflict(f"{data} already holds a Préau node; choose another --data-dir or remove it first")
    uai = parse_uai(uai)
    password = read_secret(f"Password for the administrator '{admin}': ", "PREAU_PASSWORD")
    data.mkdir(parents=True, exist_ok=True)
    label = name or (f"École {uai}" if settings.role == "school" else f"Circonscription {uai}")
    store, recovery = Store.create(data, uai=uai, school_name=label, admin_username=admin,
                                   admin_password=password, cost=argon2_cost(settings))
    store.close()
    identity = create_identity(data)
    FedStore(data / FEDERATION_DB).close()
    settings.settings_file.write_text(render_toml(given_on_command_line(settings)))
    return "\n".join([
        f"Préau {settings.role} node created in {data}",
        f"  UAI: {uai}   name: {label}",
        f"  node id (read it to the other side when enrolling): {identity.node_id}",
        f"  administrator: {admin}",
        "",
        "Recovery key (shown once; write it down and keep it somewhere safe, away from the box):",
        f"  {recovery}",
    ])


def serve(settings, **_: Any) -> None:
    from aiohttp import web

    from .app import create_app

    access_log_class = None
    try:
        from .web.security import PrivateAccessLogger
        access_log_class = PrivateAccessLogger
    except ImportError:  # pragma: no cover - the web layer is part of the package
        pass
    kw = {"access_log_class": access_log_class} if access_log_class else {}
    print(f"Préau {settings.role} node on {settings.advertised_url}", flush=True)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None, **kw)


# -- enrollment ------------------------------------------------------------------------


def create_invitation(settings, *, uai: str, name: str | None = None, expires_days: int = 7, **_: Any) -> str:
    if settings.role != "district":
        raise UserError("only a district node invites schools; this node is a school")
    if not 1 <= expires_days <= 90:
        raise UserError("--expires-days must be between 1 and 90")
    node = open_node(settings)
    try:
        inv = node.create_invitation(uai, [settings.advertised_url], ttl=expires_days * 86400)
    finally:
        node.close()
    return inv.to_string()


def _invitation_text(value: str) -> str:
    if value == "-":
        return sys.stdin.read().strip()
    path = pathlib.Path(value)
    if not value.upper().startswith("PREAU1-") and path.exists():
        return path.read_text().strip()
    return value


def join(settings, *, invitation: str, **_: Any) -> str:
    store = open_store(settings)
    try:
        uai = store.school()["uai"]
    finally:
        store.close()
    node = open_node(settings)
    try:
        report = asyncio.run(node.join(_invitation_text(invitation), uai))
        up = node.federation.upstream()
    finally:
        node.close()
    return f"Joined the district {up['node_id']} at {up['address']}; {len(report.accepted)} document(s) received."


def revoke(settings, *, node: str, reason: str, **_: Any) -> str:
    n = open_node(settings)
    try:
        target = _find_peer(n, node)
        if not n.fed.revoke_peer(target["key"]):
            raise Conflict(f"{node} is already revoked")
        n.fed.log_event("revoked", f"{target['uai'] or ''} {target['node_id']}: {reason}")
    finally:
        n.close()
    return f"Revoked {target['uai'] or ''} {target['node_id']}; its sessions and releases are refused from now on."


def _find_peer(node: Node, text: str) -> dict:
    text = text.strip()
    for p in node.fed.peers():
        if p["uai"] and p["uai"] == text.upper():
            if p["status"] == "active":
                return p
    try:
        wanted = parse_node_id(text)
    except LocalProtocolError:
        wanted = None
    for p in node.fed.peers():
        if wanted and p["node_id"] == wanted:
            return p
    raise NotFound(f"no enrolled node matches {text!r}: give a school's UAI or its node id (see `preau status`)")


# -- sync, status ------------------------------------------------------------------------


def sync_now(settings, **_: Any) -> str:
    node = open_node(settings)
    try:
        report = asyncio.run(node.sync_upstream())
    finally:
        node.close()
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
        "upstream": None if up is None else {k: up[k] for k in ("node_id", "address", "last_contact", "last_error")},
        "peers": [{k: p[k] for k in ("node_id", "role", "uai", "status", "last_contact", "last_error")}
                  for p in node.fed.peers()],
        "documents": [{"doc_id": d.doc_id, "kind": d.kind, "campaign": d.campaign,
                       "release": (node.fed.latest_release(d.doc_id) or (0,))[0]} for d in docs],
        "unacknowledged": [t["doc_id"] + f"#{t['number']}" for t in node.fed.transparency() if t["receipt"] is None],
        "events": [{k: e[k] for k in ("at", "kind", "detail")} for e in node.fed.events(10)],
    }


def status(settings, *, json: bool = False, **_: Any) -> str:
    node = open_node(settings)
    try:
        info = node_status(node)
    finally:
        node.close()
    if json:
        return _json.dumps(info, indent=2, ensure_ascii=False)
    lines = [f"{info['role']} node {info['node_id']}"]
    up = info["upstream"]
    if node.role == "school" or up:
        lines.append("district: " + ("not joined yet (preau join)" if up is None else
                                     f"{up['node_id']} at {up['address']}" + (f" - last error: {up['last_error']}" if up["last_error"] else "")))
    children = [p for p in info["peers"] if p["role"] == "school"]
    if children:
        lines.append(f"schools enrolled: {sum(p['status'] == 'active' for p in children)}")
        for p in children:
            lines.append(f"  {p['uai']}  {p['node_id']}  {p['status']}")
    if info["unacknowledged"]:
        lines.append("waiting for the district's receipt: " + ", ".join(info["unacknowledged"]))
    return "\n".join(lines)


_json = json


# -- release, stats ------------------------------------------------------------------------


def release(settings, *, campaign: str, approve: bool = False, **_: Any) -> str:
    if settings.role != "school":
        raise UserError("releases are made on a school node")
    node = open_node(settings)
    store = node.store
    try:
        session = admin_session(store)
        preview = preview_release(store, session, node.federation, campaign)
        lines = [f"Campaign {campaign}: {preview.decision.reason or 'ready'}"]
        doc = preview.document()
        if doc is not None:
            lines.append("What would leave the school (exactly this document):")
            lines.append(_json.dumps(doc, indent=2, ensure_ascii=False))
        if approve:
            signed = approve_release(store, session, node.federation, preview)
            lines.append(f"Release {signed.release} signed; it is sent to the district at the next sync (or run `preau sync`).")
        elif preview.will_release:
            lines.append("Run again with --approve to sign and send it.")
    finally:
        node.close()
    return "\n".join(lines)


def stats_rows(stats: dict) -> list[dict[str, Any]]:
    from preau.crdt.statistics import CampaignStatistics

    s = CampaignStatistics.from_dict(stats)
    rows = []
    for ex in s.exercise_ids():
        e = s.exercise(ex)
        rows.append({"exercise": ex, **{k: v for k, v in e.counts.items()}, "schools": e.schools})
    return rows


def stats(settings, *, campaign: str, format: str = "table", **_: Any) -> str:
    from preau.crdt.statistics import CampaignStatistics

    node = open_node(settings)
    try:
        data = node.fed.stats(campaign)
    finally:
        node.close()
    if data is None:
        raise NotFound(f"no statistics for campaign {campaign!r} yet: no school release has arrived")
    s = CampaignStatistics.from_dict(data)
    rows = stats_rows(data)
    if format == "json":
        return _json.dumps({"campaign": campaign, "schools_contributing": s.schools_contributing,
                            "schools_withheld": s.schools_withheld, "exercises": rows}, indent=2)
    if format == "csv":
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["exercise"])
        w.writeheader()
        w.writerows(rows)
        return out.getvalue().rstrip("\n")
    cols = list(rows[0]) if rows else ["exercise"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = [f"Campaign {campaign}: {s.schools_contributing} school(s) contributing, {s.schools_withheld} withheld (small cohort)",
             "  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)


# -- backup, bundles, keys, campaigns ----------------------------------------------------------


def backup(settings, *, output: str, **_: Any) -> str:
    store = open_store(settings)
    try:
        path = write_backup(store, admin_session(store), output)
    finally:
        store.close()
    return f"Encrypted backup written to {path}; it opens with the recovery key or an administrator's password."


def restore(settings, *, file: str, force: bool = False, **_: Any) -> str:
    key = read_secret("Recovery key: ", "PREAU_RECOVERY_KEY")
    restore_backup(file, settings.data_dir, recovery_key=key, replace=force)
    return f"Restored into {settings.data_dir}."


def export_bundle(settings, *, output: str, **_: Any) -> str:
    node = open_node(settings)
    try:
        data = node.federation.export_bundle()
    finally:
        node.close()
    pathlib.Path(output).write_bytes(data)
    count = len(_json.loads(data)["documents"])
    return f"{count} signed document(s) written to {output}; import them on the district with `preau bundle import`."


def import_bundle(settings, *, file: str, **_: Any) -> str:
    try:
        data = pathlib.Path(file).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror}", EXIT_DATA) from None
    node = open_node(settings)
    try:
        accepted = node.federation.import_bundle(data)
    finally:
        node.close()
    return f"{len(accepted)} document(s) verified and imported."


def rotate_keys(settings, *, yes: bool = False, **_: Any) -> str:
    node = open_node(settings)
    try:
        old = node.node_id
        new = node.rotate_keys()
    finally:
        node.close()
    return f"New keys: {old} -> {new.node_id}. The district updates its pin at the next sync."


def load_campaign(settings, *, campaign: Campaign, file: str, **_: Any) -> str:
    if settings.role != "district":
        raise UserError("campaigns are published by a district node")
    node = open_node(settings)
    try:
        signed = node.federation.publish_campaign(campaign)
    finally:
        node.close()
    return f"Campaign {campaign.id} published (version {signed.release}); schools receive it at their next sync."
