"""An académie's statistics page says why a district sent no figures, in French (and in English)."""
from __future__ import annotations

from node_fixtures import campaign
from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
from preau.crdt.statistics import CampaignStatistics, build_aggregate
import pytest

from node_fixtures import build_district, free_port, login
from preau.cli.commands.releases import stats as stats_command
from preau.node.app import create_app
from test_web_pages import district_below


@pytest.fixture
async def academie(tmp_path, aiohttp_server, aiohttp_client):
    """test_web_pages' district fixture, with its settings too (for the command line's view)."""
    port = free_port()
    built = build_district(tmp_path, port=port)
    client = await aiohttp_client(await aiohttp_server(create_app(built.settings), host="127.0.0.1", port=port))
    await login(client, "ien")
    return client, built.settings


async def test_a_district_with_one_school_sends_no_figures_and_the_academie_says_why(academie, tmp_path):
    client, settings = academie  # this node is the académie: a district enrols below it
    camp = campaign()
    below = await district_below(client, tmp_path)
    try:
        # The lower district's one school (30 pupils) released; its aggregate is built as refresh_aggregates does.
        school = next_release([PupilOutcome(f"p{i}", ex.id, "seuil2" if i % 3 else "besoin")
                               for i in range(30) for ex in camp.exercises], camp, ReleaseHistory(camp.id),
                              closing=True).content
        stats = CampaignStatistics(camp.id)
        stats.replace_entry("aa" * 32, {"release": 1, "time": 0, "heads": "00", "content": school.to_dict()})
        content = build_aggregate(stats, camp, release=1, final=True)
        assert (content.status, content.reason, content.rows) == ("withheld", "too_few_schools", ())
        below.federation.publish_release(content, to_peer="académie")
        assert (await below.sync_upstream()).receipts
    finally:
        below.close()
    text = await (await client.get("/district/stats/2026-test-cp/ecoles")).text()  # one row per district
    assert "une seule école de la circonscription a publié ses résultats" in text
    assert "il en faut au moins 2" in text
    page = await (await client.get("/district/stats/2026-test-cp")).text()  # counted as a district, not a school
    assert "0 circonscription(s) comptée(s), représentant 0 école(s) ; 1 sans résultat publiable" in page
    assert "pour effectif trop petit" not in page
    english = await (await client.get("/district/stats/2026-test-cp/ecoles?lang=en")).text()
    assert "only one school of the district has published results" in english
    # `preau stats` says the same level: a district with nothing publishable, not a school withheld.
    said = stats_command(settings, campaign="2026-test-cp", lang="fr")
    assert said.startswith("Campagne 2026-test-cp : 0 circonscription(s) comptée(s), couvrant 0 école(s) ; "
                           "1 sans rien de publiable"), said
