"""Nodes in one process for federation tests: a data folder each, a sync endpoint on 127.0.0.1."""
from __future__ import annotations

from aiohttp import web

from preau.crdt.campaign import parse_campaign
from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
from preau.node.runtime import Node, create_identity
from preau.node.federation.transport import SYNC_PATH, Limits, serve_session

CAMPAIGN = parse_campaign({
    "id": "2026-debut-cp", "name": "Début de CP", "level": "CP", "school_year": "2026-2027",
    "opens": "2026-09-01", "closes": "2026-09-30",
    "policy": {"min_cohort": 10, "min_batch": 10},
    "exercises": [
        {"id": "fr-mots", "name": "Comprendre des mots", "subject": "français", "score_kind": "items", "items": 15,
         "thresholds": [6, 10]},
        {"id": "ma-nombres", "name": "Lire des nombres", "subject": "mathématiques", "score_kind": "items", "items": 10,
         "thresholds": [4, 7]},
    ],
})


def make_node(tmp_path, name, role):
    path = tmp_path / name
    create_identity(path)
    return Node(path, role=role, limits=Limits(idle_timeout=5, session_timeout=30))


async def serve(node, aiohttp_server):
    """Serve the node's /v1/sync on 127.0.0.1 and note its address in `node.url`."""
    async def endpoint(request):
        return await serve_session(request, node.federation, node.limits, node.gate)

    app = web.Application()
    app.router.add_get(SYNC_PATH, endpoint)
    server = await aiohttp_server(app, host="127.0.0.1")
    node.url = str(server.make_url("")).rstrip("/")
    return node


def outcomes(n, group="seuil2"):
    return [PupilOutcome(f"p{i}", ex.id, group if i % 3 else "besoin") for i in range(n) for ex in CAMPAIGN.exercises]


def school_release(school, n):
    decision = next_release(outcomes(n), CAMPAIGN, ReleaseHistory(CAMPAIGN.id), closing=False)
    assert decision.release, decision.reason
    return school.federation.publish_release(decision.content, to_peer="district")


def switch_off(monkeypatch, *names: str) -> None:
    """Switch these protections off in this process (preau.node.testhooks), for a test's "off" run."""
    monkeypatch.setenv("PREAU_TESTING", "1")
    monkeypatch.setenv("PREAU_TEST_UNPROTECT", ",".join(names))
