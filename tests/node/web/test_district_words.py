"""Campaign-file and UAI errors in the district's words, French first (issue 15)."""
from __future__ import annotations

import html

import aiohttp
import pytest

from node_fixtures import CAMPAIGN_TOML, build_district, free_port, login
from preau.node.app import create_app
from preau.node.campaign_file import parse_campaign_bytes
from preau.node.errors import UserError, checked_uai
from preau.node.web.district_words import district_words
from web_helpers import csrf_of


def _campaign_error(text: str) -> str:
    with pytest.raises(UserError) as e:
        parse_campaign_bytes(text.encode(), "debut.toml")
    return e.value.message


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
    message = _campaign_error(broken)
    said = district_words(message, "fr")
    assert french in said, (message, said)
    assert said != message


@pytest.mark.parametrize("uai, french", [
    ("0751234K", "la lettre de contrôle devrait être J, pas K"),
    ("12345", "« 12345 » n'est pas un UAI : un UAI a 8 caractères, 7 chiffres puis une lettre"),
    ("0201234A", "0201234A n'est pas un UAI : ses trois premiers chiffres (020) ne sont pas un département"),
])
def test_uai_mistakes_are_said_in_french(uai, french):
    """A UAI typed at the district reaches the page as `checked_uai` words it (one wording, the CLI's too);
    `district_words` has no rule of its own for UAIs."""
    with pytest.raises(UserError) as e:
        checked_uai(uai)
    assert french in e.value.words.to("fr")
    assert district_words(e.value.message, "fr") == e.value.message


def test_an_unknown_message_is_shown_as_it_is():
    assert district_words("disk full", "fr") == "disk full"


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
