"""Campaign-file and UAI errors in the district's words, French first (issue 15).

The pure layer gives each mistake as a code and its values (`CampaignError.code`, `.params`); the node says
them from the catalog (`preau.node.codes`). Nothing reads the English back.
"""
from __future__ import annotations

import html

import aiohttp
import pytest

from node_fixtures import CAMPAIGN_TOML, build_district, free_port, login
from preau.node.app import create_app
from preau.node.campaign_file import parse_campaign_bytes
from preau.node.errors import UserError, checked_uai
from web_helpers import csrf_of


def _campaign_error(text: str) -> UserError:
    with pytest.raises(UserError) as e:
        parse_campaign_bytes(text.encode(), "debut.toml")
    return e.value


@pytest.mark.parametrize("broken, french", [
    (CAMPAIGN_TOML.replace("thresholds = [2, 4]", "thresholds = [4, 2]"),
     "debut.toml, ligne 20 — exercice n° 1, seuils : le seuil 1 (4) ne peut pas dépasser le seuil 2 (2)."),
    (CAMPAIGN_TOML.replace("opens = 2026-09-01", "opens = 2031-09-01"),
     "la clôture (2030-06-30) est avant l'ouverture (2031-09-01)."),
    (CAMPAIGN_TOML.replace('level = "CP"', 'level = "GS"'), "niveau : doit être l'une de ces valeurs"),
    (CAMPAIGN_TOML.replace("items = 5", "itemz = 5"), "n'est pas un champ connu"),
    (CAMPAIGN_TOML.replace('school_year = "2026-2027"', 'school_year = "2026"'),
     "année scolaire : doit être deux années qui se suivent"),
    ("id = [", "debut.toml n'est pas un fichier TOML valide"),
])
def test_campaign_file_mistakes_are_said_in_french_with_file_line_and_field(broken, french):
    error = _campaign_error(broken)
    said = error.words.to("fr")
    assert french in said, (error.message, said)
    assert said != error.message
    assert error.words.to("en") == error.message  # the English catalog says what the pure layer wrote


@pytest.mark.parametrize("uai, french", [
    ("0751234K", "la lettre de contrôle devrait être J, pas K"),
    ("12345", "« 12345 » n'est pas un UAI : un UAI a 8 caractères, 7 chiffres puis une lettre"),
    ("0201234A", "0201234A n'est pas un UAI : ses trois premiers chiffres (020) ne sont pas un département"),
])
def test_uai_mistakes_are_said_in_french(uai, french):
    """A UAI typed at the district reaches the page as `checked_uai` words it (one wording, the CLI's too)."""
    with pytest.raises(UserError) as e:
        checked_uai(uai)
    assert french in e.value.words.to("fr")


def test_an_error_without_catalog_words_is_shown_as_it_is():
    assert UserError("disk full").words.to("fr") == "disk full"


async def test_the_invitation_and_campaign_forms_refuse_in_french(tmp_path, aiohttp_server, aiohttp_client):
    port = free_port()
    built = build_district(tmp_path, port=port)
    client = await aiohttp_client(await aiohttp_server(create_app(built.settings), host="127.0.0.1", port=port))
    await login(client, "ien")
    token = await csrf_of(client, "/district/invitations")
    resp = await client.post("/district/invitations", data={"csrf_token": token, "action": "create",
                                                            "uai": "0751234K", "days": "7"})
    assert resp.status == 422
    assert "la lettre de contrôle devrait être J, pas K" in html.unescape(await resp.text())
    token = await csrf_of(client, "/district/campaigns")
    form = aiohttp.FormData({"csrf_token": token})
    form.add_field("file", CAMPAIGN_TOML.replace("thresholds = [2, 4]", "thresholds = [4, 2]").encode(),
                   filename="debut.toml")
    resp = await client.post("/district/campaigns", data=form)
    assert resp.status == 422
    assert "ligne 20 — exercice n° 1, seuils : le seuil 1 (4) ne peut pas dépasser le seuil 2 (2)" in \
        html.unescape(await resp.text())
