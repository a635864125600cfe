"""The node's pages on real data, through the real `create_app`: what each form does, and what it refuses."""
from __future__ import annotations

import html
import json
import logging
import re

import aiohttp

import pytest

from node_fixtures import (
    CAMPAIGN_TOML, PASSWORD, SCHOOL_UAI, build_district, build_school, campaign, free_port, login,
)
from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
from preau.node.app import create_app
from preau.node.records.backup import MAGIC
from preau.node.runtime import Node, create_identity
from preau.node.federation.transport import Limits
from web_helpers import csrf_of


@pytest.fixture
async def school(tmp_path, aiohttp_client):
    built = build_school(tmp_path)
    return await aiohttp_client(create_app(built.settings)), built.ids


@pytest.fixture
async def district(tmp_path, aiohttp_server, aiohttp_client):
    port = free_port()
    built = build_district(tmp_path, port=port)
    server = await aiohttp_server(create_app(built.settings), host="127.0.0.1", port=port)
    client = await aiohttp_client(server)
    await login(client, "ien")
    return client


def grid_url(ids, exercise="fr-mots") -> str:
    return f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}/exercises/{exercise}"


async def post_form(client, path: str, data: dict, token_page: str):
    token = await csrf_of(client, token_page)
    return await client.post(path, data={"csrf_token": token, **data})


def upload(token: str, data: bytes | None, name: str = "liste.csv") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    if data is not None:
        form.add_field("file", data, filename=name, content_type="text/csv")
    return form


async def text_of(resp) -> str:
    """The page as a person reads it (entities such as &#39; decoded)."""
    return html.unescape(await resp.text())


async def invite(client, member: str = "school") -> str:
    """On the district's pages: publish the test campaign, then invite SCHOOL_UAI as `member`; the invitation's text."""
    token = await csrf_of(client, "/district/campaigns")
    await client.post("/district/campaigns", data=upload(token, CAMPAIGN_TOML.encode(), "c.toml"))
    resp = await post_form(client, "/district/invitations",
                           {"action": "create", "uai": SCHOOL_UAI, "days": "7", "member": member},
                           "/district/invitations")
    return re.search(r'class="invitation-text">([^<]+)<', await text_of(resp)).group(1).strip()


async def district_below(client, tmp_path):
    """A district node enrolled below this one (then an académie), with an invitation made on its pages."""
    invitation = await invite(client, member="district")
    create_identity(tmp_path / "lower-district")
    below = Node(tmp_path / "lower-district", role="district", limits=Limits(idle_timeout=5, session_timeout=30))
    try:
        await below.join(invitation, SCHOOL_UAI)
    except BaseException:
        below.close()
        raise
    return below


# -- pupils ------------------------------------------------------------------------------

async def test_class_list_import_reports_every_bad_line_and_adds_nothing(school):
    client, ids = school
    await login(client, "mme.a")
    page = f"/classes/{ids['class_a']}"
    token = await csrf_of(client, page)
    bad = "nom;prénom\nDurand;Léo\nPetit\n;Inès\nMartin;Lucie\n".encode()
    resp = await client.post(page + "/import", data=upload(token, bad))
    text = await text_of(resp)
    assert resp.status == 422
    assert "Rien n'a été importé : 2 ligne(s) à corriger" in text
    assert "Ligne 3 : Il faut 2 colonnes (nom;prénom), il y en a 1" in text and "Ligne 4 : Le nom est vide" in text
    assert "Léo" not in text  # nothing was added
    # a pupil already in the class is not an error: the review says so, and nothing changes before confirming
    resp = await client.post(page + "/import", data=upload(token, "Durand;Léo\nMartin;Lucie\n".encode()))
    text = await text_of(resp)
    assert resp.status == 200 and "À ajouter (1)" in text and "1 élève(s) déjà dans la classe, inchangé(s)." in text
    assert "Léo Durand" not in await text_of(await client.get(page))
    data = re.search(r'name="data" value="([^"]+)"', text).group(1)
    resp = await client.post(page + "/import", data={"csrf_token": token, "data": data, "apply": "yes"})
    text = await text_of(resp)
    assert resp.status == 200 and "Import fait : 1 élève(s) ajouté(s)" in text and "Léo Durand" in text
    resp = await client.post(page + "/import", data=upload(token, None))
    assert resp.status == 400 and "Choisissez un fichier CSV" in await text_of(resp)


async def test_add_rename_and_erase_in_own_class(school):
    client, ids = school
    await login(client, "mme.a")
    page = f"/classes/{ids['class_a']}"
    resp = await post_form(client, page + "/pupils", {"last_name": "Roux", "first_name": "Zoé"}, page)
    assert "Zoé Roux a été ajouté·e." in await text_of(resp)
    resp = await post_form(client, page + "/pupils", {"last_name": "Roux", "first_name": "zoe"}, page)
    text = await text_of(resp)
    assert resp.status == 409 and "L'opération n'a pas été faite. Zoé Roux est déjà dans cette classe." in text
    resp = await post_form(client, f"{page}/pupils/{ids['pupil_a']}/rename", {"last_name": "Martin-Roy", "first_name": "Lucie"}, page)
    assert "Nom enregistré : Lucie Martin-Roy." in await text_of(resp)
    # a teacher cannot erase a pupil, even with the confirmation: only the head teacher can
    pupil = f"{page}/pupils/{ids['pupil_a']}"
    assert "Seule la direction peut supprimer un élève" in await text_of(await client.get(pupil))
    resp = await post_form(client, pupil + "/erase", {"confirm": "yes"}, page)
    assert resp.status == 403
    assert (await client.get(f"{page}/pupils/{ids['pupil_a']}")).status == 200


async def test_the_head_teacher_erases_a_pupil_after_confirming(school):
    client, ids = school
    await login(client, "direction")
    page = f"/classes/{ids['class_a']}"
    pupil = f"{page}/pupils/{ids['pupil_a']}"
    text = await text_of(await client.get(pupil))
    assert "Supprimer Lucie Martin et tous ses résultats…" in text
    confirm = await text_of(await client.get(pupil + "/erase"))
    assert "Lucie Martin (CP A) et ses 0 résultat(s) saisi(s) seront effacés définitivement" in confirm
    resp = await post_form(client, pupil + "/erase", {}, page)  # no confirmation: back to the question
    assert resp.status == 200 and str(resp.url).endswith("/erase")
    assert (await client.get(pupil)).status == 200
    resp = await post_form(client, pupil + "/erase", {"confirm": "yes"}, page)
    text = await text_of(resp)
    assert resp.status == 200 and str(resp.url).endswith(page) and resp.history[0].status == 303
    assert "Lucie Martin et ses résultats ont été supprimés." in text
    assert (await client.get(pupil)).status == 404


async def test_a_database_held_by_another_process_is_a_page_saying_to_try_again(school, tmp_path):
    """A real lock on the school's database (a backup or a command elsewhere): a write waits for it, and
    past the wait gets 503 and a page in French, the pupil not added; the form works once the lock is gone."""
    import sqlite3
    import threading

    from preau.node.appkeys import NODE

    client, ids = school
    await login(client, "mme.a")
    page = f"/classes/{ids['class_a']}"
    holder = sqlite3.connect(tmp_path / "school" / "preau.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    # Released after half a second: the save waits for it (BEGIN IMMEDIATE with the busy timeout) and succeeds.
    threading.Timer(0.5, holder.execute, ["ROLLBACK"]).start()
    resp = await post_form(client, page + "/pupils", {"last_name": "Petit", "first_name": "Inès"}, page)
    assert "Inès Petit a été ajouté·e." in await text_of(resp)
    # Held longer than the wait (shortened here from 10 s): refused, nothing added.
    client.app[NODE].store.db.execute("PRAGMA busy_timeout = 300")
    token = await csrf_of(client, page)
    holder.execute("BEGIN IMMEDIATE")
    try:
        resp = await client.post(page + "/pupils", data={"csrf_token": token, "last_name": "Roux", "first_name": "Zoé"})
        text = await text_of(resp)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert resp.status == 503 and "La base de données de l'école est occupée" in text and "réessayez" in text
    assert "Zoé" not in await text_of(await client.get(page))
    resp = await post_form(client, page + "/pupils", {"last_name": "Roux", "first_name": "Zoé"}, page)
    assert "Zoé Roux a été ajouté·e." in await text_of(resp)


# -- result entry ----------------------------------------------------------------------------------

async def test_row_saves_reload_and_fallback_form(school):
    client, ids = school
    await login(client, "mme.a")
    url = grid_url(ids)
    token = await csrf_of(client, url)
    save = lambda body: client.post(url + "/row", json=body, headers={"X-CSRF-Token": token})  # noqa: E731
    resp = await save({"pupil": ids["pupil_a"], "cells": ["1", "1", "0", "1", ""]})
    assert (await resp.json()) == {"ok": True, "score_text": "en cours", "group": None, "group_label": ""}
    resp = await save({"pupil": ids["pupil_a"], "cells": ["1", "1", "0", "1", "1"]})
    assert (await resp.json())["group"] == "seuil2"
    resp = await save({"pupil": ids["pupil_a"], "cells": ["1", "2", "0", "1", "1"]})
    assert resp.status == 400 and (await resp.json())["error"] == "Case 2 : tapez 1, 0 ou a (absent)."
    resp = await save({"pupil": ids["pupil_b"], "cells": ["1"] * 5})  # a pupil of class B
    assert resp.status == 400 and "Élève inconnu" in (await resp.json())["error"]
    page = await (await client.get(url)).text()
    assert re.search(rf'name="c-{ids["pupil_a"]}-4" value="1"', page)
    assert "4/5" in page
    # the no-JavaScript form: every row at once
    pupils = re.findall(r'data-pupil="([0-9a-f]{16})"', page)
    form = {f"c-{p}-{i}": "a" for p in pupils for i in range(5)}
    resp = await client.post(url, data={"csrf_token": token, **form})
    assert "Résultats enregistrés." in await text_of(resp)
    # an emptied row is kept as "not assessed" (no group, no score) rather than left at its old value
    resp = await save({"pupil": ids["pupil_a"], "cells": [""] * 5})
    assert (await resp.json())["ok"]
    csv = await (await client.get(f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}/export.csv")).text()
    assert "Non évalué" in csv and "Absent" in csv


async def test_timed_exercise_profile_pupil_page_and_csv_export(school):
    client, ids = school
    await login(client, "mme.a")
    url = grid_url(ids, "fr-lire-texte")
    token = await csrf_of(client, url)
    for pupil, value in ((ids["pupil_a"], "45"),):
        resp = await client.post(url + "/row", json={"pupil": pupil, "cells": [value]}, headers={"X-CSRF-Token": token})
        assert (await resp.json())["score_text"] == "45 mots/min"
    resp = await client.post(url + "/row", json={"pupil": ids["pupil_a"], "cells": ["251"]}, headers={"X-CSRF-Token": token})
    assert resp.status == 400 and "0 à 250" in (await resp.json())["error"]
    profile = await (await client.get(f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}/profile")).text()
    assert "Au-dessus du seuil 2" in profile and "Lucie Martin" in profile
    pupil = await (await client.get(f"/classes/{ids['class_a']}/pupils/{ids['pupil_a']}")).text()
    assert "Profil de Lucie Martin" in pupil and "45 mots/min" in pupil
    resp = await client.get(f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}/export.csv")
    assert resp.headers["Content-Disposition"] == 'attachment; filename="resultats-2026-test-cp.csv"'
    text = await text_of(resp)
    # the columns are named as the grid page names the exercises, with what the number counts
    assert text.lstrip("\ufeff").startswith("Nom;Prénom;Comprendre des mots lus par l'enseignant — score sur 5;"
                                             "Comprendre des mots lus par l'enseignant — groupe;"
                                             "Lire à voix haute un texte — mots lus en 1 min;")
    assert "Martin;Lucie;;;45;Au-dessus du seuil 2" in text
    # and in English when the interface is in English
    english = await text_of(await client.get(f"/classes/{ids['class_a']}/campaigns/{ids['campaign']}/export.csv?lang=en"))
    assert english.lstrip("\ufeff").startswith("Last name;First name;Comprendre des mots lus par l'enseignant — score out of 5;")
    assert "Martin;Lucie;;;45;Above threshold 2" in english


async def test_no_pupil_name_in_urls_or_logs(school, caplog):
    client, ids = school
    caplog.set_level(logging.DEBUG)
    await login(client, "mme.a")
    page = f"/classes/{ids['class_a']}"
    await post_form(client, page + "/pupils", {"last_name": "Zyxwvu", "first_name": "Quentin"}, page)
    for path in (page, grid_url(ids), f"{page}/campaigns/{ids['campaign']}/profile", f"{page}/pupils/{ids['pupil_a']}"):
        html = await (await client.get(path)).text()
        for target in re.findall(r'(?:href|action|data-save-url)="([^"]*)"', html):
            assert "Zyxwvu" not in target and "Martin" not in target and "Lucie" not in target, target
    assert "Zyxwvu" not in caplog.text and "Lucie" not in caplog.text


async def test_english_switch(school):
    client, ids = school
    await login(client, "mme.a")
    text = await (await client.get(f"/classes/{ids['class_a']}?lang=en")).text()
    assert '<html lang="en">' in text and "Import a class list" in text
    text = await (await client.get(f"/classes/{ids['class_a']}")).text()  # the choice is remembered
    assert "Import a class list" in text


# -- head teacher ------------------------------------------------------------------------------------

async def test_accounts_classes_and_assignment(school):
    client, ids = school
    await login(client, "direction")
    resp = await post_form(client, "/admin/accounts", {"action": "create", "username": "mme.c", "password": "court"},
                           "/admin/accounts")
    assert resp.status == 422 and "L'opération n'a pas été faite. Un mot de passe doit avoir au moins 10 caractères ;" in await text_of(resp)
    resp = await post_form(client, "/admin/accounts", {"action": "create", "username": "mme.c", "password": PASSWORD,
                                                       "role": "teacher"}, "/admin/accounts")
    assert "Compte mme.c créé." in await text_of(resp)
    resp = await post_form(client, "/admin/classes", {"action": "create", "name": "CE1 C", "level": "CE1",
                                                      "school_year": "2026-2027"}, "/admin/classes")
    text = await text_of(resp)
    assert "Classe CE1 C créée." in text
    class_c = re.search(r'<option value="([0-9a-f]{16})">CE1 C</option>', text).group(1)
    resp = await post_form(client, "/admin/classes", {"action": "assign", "username": "mme.c", "class_id": class_c},
                           "/admin/classes")
    assert "Classe attribuée à mme.c." in await text_of(resp)
    resp = await post_form(client, "/admin/accounts", {"action": "reset", "username": "mme.c",
                                                       "password": "un autre mot de passe"}, "/admin/accounts")
    assert "Mot de passe de mme.c réinitialisé." in await text_of(resp)
    client.session.cookie_jar.clear()
    await login(client, "mme.c", "un autre mot de passe")
    assert "CE1 C" in await (await client.get("/classes")).text()
    assert (await client.get(f"/classes/{class_c}")).status == 200


async def test_release_preview_needs_a_district_and_backup_download(school):
    client, ids = school
    await login(client, "mme.a")
    url = grid_url(ids)
    token = await csrf_of(client, url)
    for pupil in (ids["pupil_a"],):
        await client.post(url + "/row", json={"pupil": pupil, "cells": ["1"] * 5}, headers={"X-CSRF-Token": token})
    client.session.cookie_jar.clear()
    await login(client, "direction")
    text = await text_of(await client.get(f"/admin/release/{ids['campaign']}"))
    assert "rien à envoyer pour l'instant" in text and "trop peu d'élèves évalués (1)" in text
    sync = await text_of(await client.get("/admin/sync"))
    assert "pas encore rattachée" in sync and "Tapez le code d'invitation" in sync
    resp = await post_form(client, "/admin/join", {"invitation": "PREAU1-NOPE"}, "/admin/sync")
    assert resp.status == 400 and "L'opération n'a pas été faite" in await text_of(resp)
    resp = await post_form(client, "/admin/backup", {}, "/admin/backup")
    body = await resp.read()
    assert resp.status == 200 and body.startswith(MAGIC)
    assert "attachment" in resp.headers["Content-Disposition"]
    log = await (await client.get("/admin/transparency.json")).json()
    assert log["sent"] == []


# -- district ----------------------------------------------------------------------------------------------

async def test_campaign_upload_with_located_error_and_thresholds(district):
    client = district
    broken = CAMPAIGN_TOML.replace('score_kind = "wpm"', 'score_kind = "minutes"')
    token = await csrf_of(client, "/district/campaigns")
    resp = await client.post("/district/campaigns", data=upload(token, broken.encode(), "debut.toml"))
    text = await text_of(resp)
    assert resp.status == 422 and "Campagne refusée, rien n'a été publié." in text
    line = next(n for n, l in enumerate(broken.splitlines(), 1) if "minutes" in l)
    assert f"debut.toml, ligne {line} — exercice n° 2, type de score : doit être l'une de ces valeurs" in html.unescape(text)
    assert "2026-test-cp" not in await (await client.get("/district/stats")).text()
    resp = await client.post("/district/campaigns", data=upload(token, CAMPAIGN_TOML.encode(), "c.toml"))
    assert "publiée (version 1)" in await text_of(resp)
    page = "/district/campaigns/2026-test-cp"
    resp = await post_form(client, page, {"t1-fr-mots": "3", "t2-fr-mots": "x", "t1-fr-lire-texte": "20",
                                          "t2-fr-lire-texte": "40"}, page)
    assert resp.status == 422 and "donnez deux nombres entiers" in await text_of(resp)
    resp = await post_form(client, page, {"t1-fr-mots": "3", "t2-fr-mots": "5", "t1-fr-lire-texte": "",
                                          "t2-fr-lire-texte": ""}, page)
    text = await text_of(resp)
    assert "Seuils publiés (version 2)." in text and 'value="5"' in text


async def test_invitation_qr_revoke_and_bad_uai(district):
    client = district
    resp = await post_form(client, "/district/invitations", {"action": "create", "uai": "0751234K", "days": "7"},
                           "/district/invitations")
    assert resp.status == 422 and "L'opération n'a pas été faite" in await text_of(resp)
    resp = await post_form(client, "/district/invitations", {"action": "create", "uai": SCHOOL_UAI, "days": "7"},
                           "/district/invitations")
    text = await text_of(resp)
    assert "PREAU1-" in text and '<svg aria-hidden="true"' in text and "style=" not in text.split("<svg", 1)[1].split("</svg>")[0]
    inv_id = re.search(r'name="id" value="([0-9a-f]+)"', text).group(1)
    resp = await post_form(client, "/district/invitations", {"action": "revoke", "id": inv_id}, "/district/invitations")
    assert "Invitation révoquée" in await text_of(resp)
    resp = await post_form(client, "/district/invitations", {"action": "revoke", "id": inv_id}, "/district/invitations")
    assert resp.status == 400


async def test_statistics_pages_and_exports_after_a_school_release(district, tmp_path):
    client = district
    camp = campaign()
    invitation = await invite(client)
    create_identity(tmp_path / "bare-school")
    school = Node(tmp_path / "bare-school", role="school", limits=Limits(idle_timeout=5, session_timeout=30))
    try:
        await school.join(invitation, SCHOOL_UAI)
        outcomes = [PupilOutcome(f"p{i}", ex.id, ("besoin", "fragile", "seuil2", "seuil2")[i % 4])
                    for i in range(12) for ex in camp.exercises]
        decision = next_release(outcomes, camp, ReleaseHistory(camp.id), closing=False)
        school.federation.publish_release(decision.content, to_peer="district")
        await school.sync_upstream()
    finally:
        school.close()
    text = await (await client.get("/district/stats/2026-test-cp")).text()
    assert "1 école(s) comptée(s), 0 retenue(s)" in text and 'class="chart"' in text
    assert text.count("<rect class=\"g-") >= 6
    schools = await (await client.get("/district/schools")).text()
    assert SCHOOL_UAI in schools and "n° 1" in schools
    csv = await (await client.get("/district/stats/2026-test-cp.csv")).text()
    # in French throughout: « pending » was the one English word of the header (seen by hand on a fresh clone)
    assert csv.lstrip("\ufeff").startswith("exercice;nom;besoin;fragile;seuil2;absent;en_attente;écoles")
    assert "fr-mots;Comprendre des mots lus par l'enseignant;3;3;6;0;0;1" in csv
    data = json.loads(await (await client.get("/district/stats/2026-test-cp.json")).text())
    assert data["schools_contributing"] == 1 and data["exercises"][0]["seuil2"] == 6
    api = await (await client.get("/v1/stats/2026-test-cp", headers={"Accept": "application/json"})).json()
    assert api["ok"] and api["exercises"] == data["exercises"]


def test_sync_status_in_plain_words():
    from types import SimpleNamespace

    from preau.node.runtime import SyncStatus
    from preau.node.i18n import translate
    from preau.node.web.school import sync_words

    t = lambda key, **kw: translate("fr", key, **kw)  # noqa: E731
    up = {"node_id": "abcd-efgh", "address": "http://10.0.0.1:8080", "last_contact": 1_800_000_000, "last_error": None}
    node = SimpleNamespace(status=SyncStatus(), federation=SimpleNamespace(upstream=lambda: None),
                           fed=SimpleNamespace(transparency=lambda: []))
    words = sync_words(node, "fr", t)
    assert words["state"] == "L'école n'est pas encore rattachée à sa circonscription." and "Tapez le code" in words["todo"]
    node.federation.upstream = lambda: up
    node.fed.transparency = lambda: [{"receipt": None}, {"receipt": {"release": 1}}]
    node.status = SyncStatus(failures=3, last_error="cannot reach http://10.0.0.1:8080: connection refused",
                             next_attempt=1_800_000_600)
    words = sync_words(node, "fr", t)
    assert words["state"].startswith("Dernier échange réussi : ") and words["waiting"] == 1
    assert words["problem"].startswith("3 tentative(s) échouée(s) d'affilée.")
    assert words["todo"].startswith("Vérifiez que le réseau de l'école fonctionne")
    node.status = SyncStatus(failures=1, last_error="cannot reach http://10.0.0.1:8080 (ClientConnectorError: ...)",
                             last_error_code="unreachable")  # PeerUnreachable's code: said in French, not as it came
    assert sync_words(node, "fr", t)["problem_detail"].startswith("injoignable par le réseau : vérifiez son adresse")
    node.status = SyncStatus(failures=1, last_error="the peer hung up", last_error_code="connection_lost")
    assert sync_words(node, "fr", t)["problem_detail"].startswith("la connexion a été coupée pendant l'échange")
    node.status = SyncStatus(failures=1, last_error="the peer sent a bad sync message for d1: ...",
                             last_error_code="bad_sync_message")  # a code without words of its own: said in general
    assert sync_words(node, "fr", t)["problem_detail"].startswith(
        "l'échange s'est arrêté sur une erreur du protocole de synchronisation (bad_sync_message)")
    node.status = SyncStatus(failures=1, last_error="the district has revoked this node's key: ...",
                             last_error_code="peer_revoked")
    assert "nouvelle invitation" in sync_words(node, "fr", t)["todo"]
    assert "la circonscription a révoqué la clé de ce serveur" in sync_words(node, "fr", t)["problem_detail"]
    node.status = SyncStatus(failures=1, last_error="a message that mentions revoked, with no code")
    assert "nouvelle invitation" not in sync_words(node, "fr", t)["todo"]  # the code decides, not the English


def test_store_messages_in_the_persons_language():
    """Errors carry their catalog key and parameters (node.errors.Words): no English prose is parsed back."""
    from preau.node.errors import UserError, checked_uai
    from preau.node.records import csvio

    assert csvio.check_name("11", "first name").to("fr") == "le prénom « 11 » n'a aucune lettre"
    assert csvio.check_name("", "class name").to("fr") == "le nom de la classe est vide"
    assert UserError("something new the store says").words.to("fr") == "something new the store says"  # never hidden
    with pytest.raises(UserError) as caught:
        checked_uai("0201234H")  # accepted by the store's own check before there was one UAI parser
    assert caught.value.words.to("fr").startswith("0201234H n'est pas un UAI : ses trois premiers chiffres (020)")
    assert caught.value.message.startswith("0201234H is not a UAI: its first three digits (020)")


def test_disclosure_reasons_in_the_persons_language():
    """The reasons come from disclosure control as codes and values (`ReleaseDecision.reasons`), never read back
    from its English."""
    from preau.crdt.disclosure import PupilOutcome, ReleaseHistory, next_release
    from preau.node.codes import reasons_words

    c = campaign()
    few = [PupilOutcome(f"p{i}", c.exercises[0].id, "seuil2") for i in range(4)]
    many = [PupilOutcome(f"p{i}", ex.id, "seuil2") for i in range(12) for ex in c.exercises]
    first = next_release(many, c, ReleaseHistory(c.id), closing=False)
    assert first.release and reasons_words(first).to("fr") == "envoi n° 1 : 2 exercice(s) mis à jour"
    assert reasons_words(first).to("en").startswith("release 1: 2 ")
    again = next_release(many, c, first.history, closing=False)
    assert reasons_words(again).to("fr") == "rien n'a changé depuis l'envoi n° 1"
    small = next_release(few, c, ReleaseHistory(c.id), closing=False)
    assert reasons_words(small).to("fr").startswith(
        "retenu : trop peu d'élèves évalués (4) ; cette campagne en demande au moins 10 ")
    assert reasons_words(type(small)(False, "a reason not known yet", None, small.history)).to("fr") == \
        "a reason not known yet"  # a decision without codes is shown as it is, never hidden


async def test_an_academie_page_marks_lower_bounds_and_draws_no_share_it_cannot_know(district, tmp_path):
    from preau.crdt.documents import ReleaseContent, Row

    client = district  # this node is the académie: a district enrols below it
    camp = campaign()
    below = await district_below(client, tmp_path)
    try:
        # The district's aggregate as build_aggregate shapes it: "fragile" of fr-mots hidden as ≤10.
        rows = [Row("fr-mots", (14, "≤10", 30, 0, 0), 47)] + [
            Row(ex.id, (12, 11, 20, 0, 0), 43) for ex in camp.exercises if ex.id != "fr-mots"]
        content = ReleaseContent(camp.id, 1, "published", "", camp.policy, tuple(rows), 47, scope="district",
                                 schools_contributing=3, schools_withheld=0)
        below.federation.publish_release(content, to_peer="académie")
        assert (await below.sync_upstream()).receipts
    finally:
        below.close()
    text = await (await client.get("/district/stats/2026-test-cp")).text()
    assert "1 circonscription(s) comptée(s), représentant 3 école(s)" in text and "« ≥ » est un minimum" in text
    fr_mots = text.split('<th scope="row">Comprendre des mots lus', 1)[1].split("</tr>", 1)[0]
    assert ">≥1<" in fr_mots and ">—<" in fr_mots  # a lower bound, and no rate computed from it
    chart = text.split('class="chart"', 1)[1].split("</svg>", 1)[0]
    # no shares drawn for the row with a hidden part, and it says why (14e88b2: « taux non calculés… »)
    assert chart.count("taux non calculés") == 1 and "aucune donnée" not in chart
    csv = await (await client.get("/district/stats/2026-test-cp.csv")).text()
    assert "fr-mots;Comprendre des mots lus par l'enseignant;14;≥1;30;0;0;1" in csv
    data = json.loads(await (await client.get("/district/stats/2026-test-cp.json")).text())
    row = next(e for e in data["exercises"] if e["exercise"] == "fr-mots")
    assert row["hidden_by"] == {"fragile": 1} and row["rates"]["seuil2"] is None
    members = await (await client.get("/district/schools")).text()
    assert f"{SCHOOL_UAI} (circonscription)" in members


# -- refusals a person can meet, each with its status and French text ----------------------------------

async def test_an_approval_of_a_stale_preview_is_refused_and_shows_the_new_one(school):
    client, ids = school
    await login(client, "direction")
    page = f"/admin/release/{ids['campaign']}"
    resp = await post_form(client, page, {"digest": "0" * 64}, page)  # the preview the person read is gone
    text = await text_of(resp)
    assert resp.status == 409 and "Les résultats ont changé depuis l'affichage de cet aperçu." in text
    assert "Relisez le nouvel aperçu ci-dessous avant d'approuver." in text


async def test_a_class_list_too_big_is_refused(school):
    client, ids = school
    await login(client, "mme.a")
    page = f"/classes/{ids['class_a']}"
    resp = await client.post(page + "/import", data=upload(await csrf_of(client, page), b"Nom;Prenom\n" * 60_000))
    text = await text_of(resp)
    assert resp.status == 400 and "Ce fichier est trop gros pour une liste de classe (512 Ko au plus)." in text


async def test_joining_without_an_invitation_or_a_reachable_district(school, monkeypatch):
    from preau.node.appkeys import NODE

    client, _ = school
    await login(client, "direction")
    resp = await post_form(client, "/admin/join", {"invitation": "  "}, "/admin/sync")
    assert resp.status == 400 and "Tapez le code d'invitation (ou collez le texte de l'invitation) avant de valider." in await text_of(resp)

    async def unreachable(text, uai, district=None):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(client.app[NODE], "join", unreachable)
    resp = await post_form(client, "/admin/join", {"invitation": "PREAU1-X"}, "/admin/sync")
    text = await text_of(resp)
    assert resp.status == 502 and "Le serveur de la circonscription ne répond pas. Vérifiez le réseau" in text
    assert "la connexion a été refusée" in text and "Connection refused" not in text  # why, in words


async def test_a_campaign_file_too_big_is_refused(district):
    token = await csrf_of(district, "/district/campaigns")
    resp = await district.post("/district/campaigns", data=upload(token, b"# \n" * 100_000, "c.toml"))
    text = await text_of(resp)
    assert resp.status == 400 and "Ce fichier est trop gros pour une définition de campagne." in text


@pytest.mark.parametrize("days", ["0", "91", "sept"])
async def test_an_invitation_for_too_long_or_no_time_is_refused(district, days):
    resp = await post_form(district, "/district/invitations", {"action": "create", "uai": SCHOOL_UAI, "days": days},
                           "/district/invitations")
    text = await text_of(resp)
    assert resp.status == 400
    assert "L'opération n'a pas été faite. La durée de validité va de 1 à 90 jours" in text
