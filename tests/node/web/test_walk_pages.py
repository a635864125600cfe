"""Pages as a checker reads them on a fresh clone, without a browser: what a French head teacher would stumble on."""
from __future__ import annotations

import html
import re

from node_fixtures import PASSWORD, build_school, login
from preau.node.app import create_app
from preau.node.records.store import Store
from preau.node.records.vault import TEST_COST


async def test_the_release_preview_follows_the_campaign_and_names_the_exercise_it_waits_for(tmp_path, aiohttp_client):
    """12 pupils on the words, 3 on the reading: the words go, the reading waits. The page said « sur l'exercice
    fr-lire-texte » (an id) and listed the exercises by id (reading before words), not as the campaign does."""
    built = build_school(tmp_path)
    store = Store.open(tmp_path / "school", cost=TEST_COST)
    try:
        s = store.login("direction", PASSWORD)
        store.add_pupils(s, built.ids["class_a"], [(f"Nom{i}", f"Prénom{i}") for i in range(10)])
        pupils = store.list_pupils(s, built.ids["class_a"])
        for i, p in enumerate(pupils):
            store.save_result(s, built.ids["campaign"], p.id, "fr-mots", answers=[1, 1, i % 2, 0, 1])
        for p in pupils[:3]:
            store.save_result(s, built.ids["campaign"], p.id, "fr-lire-texte", wpm=30)
        s.logout()
    finally:
        store.close()
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "direction")
    resp = await client.get(f"/admin/release/{built.ids['campaign']}")
    page = html.unescape(await resp.text())
    assert resp.status == 200, page
    assert "sur l'exercice « Lire à voix haute un texte »" in page
    assert "fr-lire-texte »" not in page and "exercice fr-lire-texte" not in page
    rows = re.findall(r"<tr><th scope=\"row\">([^<]+)</th>", page)
    assert rows == ["Comprendre des mots lus par l'enseignant", "Lire à voix haute un texte"], rows


async def test_assigning_a_class_says_which_of_the_two_is_missing(tmp_path, aiohttp_client):
    """With a teacher's account made and no class yet, the page said « Créez d'abord une classe et un compte
    enseignant » (seen by hand): it says what is missing."""
    from node_fixtures import SCHOOL_UAI, _node_files, settings_for

    data = tmp_path / "school"
    store, _ = Store.create(data, uai=SCHOOL_UAI, school_name="École des Tilleuls", admin_username="direction",
                            admin_password=PASSWORD, cost=TEST_COST)
    store.close()
    _node_files(data)
    client = await aiohttp_client(create_app(settings_for(data, "school")))
    await login(client, "direction")

    async def said() -> str:
        page = html.unescape(await (await client.get("/admin/classes")).text())
        return page.split("<legend>", 2)[2]  # the « Attribuer une classe » box

    assert "Créez d'abord une classe et un compte enseignant." in await said()
    node = client.server.app
    from preau.node.appkeys import NODE

    def teacher() -> None:
        s = node[NODE].store.login("direction", PASSWORD)
        node[NODE].store.create_account(s, "mme.martin", PASSWORD, "teacher")
        s.logout()

    node[NODE].call(teacher)
    text = await said()
    assert "Créez d'abord une classe (ci-dessus)." in text and "compte" not in text


async def test_the_register_entry_names_the_school_once(tmp_path, aiohttp_client):
    """The register's « Responsable du traitement » read « le directeur de l'école École Jean Jaurès » (seen by
    hand): the school's own name starts with « École » more often than not."""
    built = build_school(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "direction")
    page = html.unescape(await (await client.get("/admin/gdpr/register")).text())
    assert "de l'école « École des Tilleuls » (UAI 0751234J)" in " ".join(page.split())
    assert "l'école École" not in page


async def test_the_gdpr_page_dates_backups_as_the_other_pages_do(tmp_path, aiohttp_client):
    """« 2026-11-30 17:20 — /media/usb/preau.backup » (UTC, ISO) on a page whose other dates read « 30/11/2026
    17:20 » in the server's time (seen by hand): the same way everywhere."""
    from preau.node.records import backup

    built = build_school(tmp_path)
    store = Store.open(tmp_path / "school", cost=TEST_COST)
    try:
        s = store.login("direction", PASSWORD)
        backup.write_backup(store, s, tmp_path / "preau.backup")
        s.logout()
    finally:
        store.close()
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "direction")
    page = html.unescape(await (await client.get("/admin/gdpr")).text())
    assert re.search(r"<li>\d\d/\d\d/\d{4} \d\d:\d\d — " + re.escape(str(tmp_path / "preau.backup")), page), page


async def test_the_backup_page_says_how_a_backup_is_restored(tmp_path, aiohttp_client):
    """The page made a backup and said nothing of what to do with it; restoring is a command on the server."""
    built = build_school(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "direction")
    page = html.unescape(await (await client.get("/admin/backup")).text())
    assert "<pre>preau restore FICHIER --user direction</pre>" in page and "Préau arrêté" in page


async def test_a_class_of_another_level_is_told_no_campaign_is_for_it_not_that_none_arrived(tmp_path, aiohttp_client):
    """A CE1 class, the school holding only a CP campaign: its page said « Aucune campagne n'est encore arrivée
    de la circonscription » (seen by hand), which sends the teacher to ask the district for nothing."""
    built = build_school(tmp_path)
    store = Store.open(tmp_path / "school", cost=TEST_COST)
    try:
        s = store.login("direction", PASSWORD)
        ce1 = store.create_class(s, "CE1 A", "CE1", "2026-2027")
        (pupil,) = store.add_pupils(s, ce1.id, [("Petit", "Inès")])
        s.logout()
    finally:
        store.close()
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "direction")
    for path in (f"/classes/{ce1.id}", f"/classes/{ce1.id}/pupils/{pupil.id}"):
        page = html.unescape(await (await client.get(path)).text())
        assert "Aucune des campagnes reçues de la circonscription ne concerne le niveau de cette classe (CE1)." in page
        assert "Aucune campagne n'est encore arrivée" not in page
