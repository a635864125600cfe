"""Refused forms keep what was typed (without a browser): the accounts pages of a school and of a district."""
from __future__ import annotations

import html
import re

import pytest

from node_fixtures import build_classroom, build_district, login
from preau.node.app import create_app
from web_helpers import csrf_of


@pytest.mark.parametrize("node", ["school", "district"])
async def test_a_refused_password_reset_keeps_the_account_it_was_for(node, tmp_path, aiohttp_client):
    """Redrawn with the first account chosen, the form's next Enter would reset the head teacher's own
    password; it keeps the account the reset was for, with the cursor on the new password."""
    if node == "school":
        built, me, url, other = build_classroom(tmp_path), "direction", "/admin/accounts", "mme.martin"
    else:
        built, me, url, other = build_district(tmp_path), "ien", "/district/accounts", "m.conseiller"
    client = await aiohttp_client(create_app(built.settings))
    await login(client, me)
    if node == "district":
        resp = await client.post(url, data={"action": "create", "username": other, "password": "x" * 12,
                                            "role": "inspector", "csrf_token": await csrf_of(client, url)})
        assert resp.status == 200, await resp.text()
    resp = await client.post(url, data={"action": "reset", "username": other, "password": "court",
                                        "csrf_token": await csrf_of(client, url)})
    page = html.unescape(await resp.text())
    assert resp.status == 422, page
    assert f"<option selected>{other}</option>" in page
    assert 'id="reset-password" name="password" type="password" required minlength="10" ' \
           'autocomplete="new-password" autofocus' in page


async def test_a_refused_gdpr_correction_keeps_what_was_typed(tmp_path, aiohttp_client):
    """A result correction « 11x01 » for a parent's request was refused with the three fields emptied and the
    first exercise chosen again (seen by hand); an identity correction the same. What was typed is put back."""
    from node_fixtures import build_school

    built = build_school(tmp_path)
    ids = built.ids
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "direction")
    url = f"/admin/gdpr/pupils/{ids['pupil_a']}"
    resp = await client.post(url + "/result", data={
        "exercise": f"{ids['campaign']}/fr-lire-texte", "value": "11x01", "request": "mère, 30 novembre",
        "csrf_token": await csrf_of(client, url)})
    page = html.unescape(await resp.text())
    assert resp.status in (400, 422) and "« 11x01 »" in page
    assert f'<option value="{ids["campaign"]}/fr-lire-texte" selected>' in page
    assert 'name="value" maxlength="100" aria-describedby="value-help" value="11x01" autofocus' in page
    assert 'id="res-request" name="request" required maxlength="200" value="mère, 30 novembre"' in page
    resp = await client.post(url + "/identity", data={
        "last_name": "Martin", "first_name": "", "request": "père", "csrf_token": await csrf_of(client, url)})
    page = html.unescape(await resp.text())
    assert resp.status in (400, 422), page
    assert 'id="id-request" name="request" required maxlength="200" value="père"' in page


async def test_a_refused_invitation_keeps_what_the_district_typed(tmp_path, aiohttp_client):
    """An UAI with a wrong check letter (0751235J) was refused with the UAI, the school's name and its town
    emptied (seen by hand): they are put back, the cursor on the UAI to correct."""
    built = build_district(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "ien")
    url = "/district/invitations"
    resp = await client.post(url, data={"action": "create", "uai": "0751235J", "name": "École Victor Hugo",
                                        "town": "Lyon", "member": "school", "days": "10",
                                        "csrf_token": await csrf_of(client, url)})
    page = html.unescape(await resp.text())
    assert resp.status == 422 and "0751235J n'est pas un UAI valide" in page, page
    assert 'autocomplete="off" value="0751235J" autofocus' in page
    assert 'value="École Victor Hugo"' in page and 'value="Lyon"' in page and 'value="10"' in page


async def test_a_refused_class_keeps_its_name_level_and_year(tmp_path, aiohttp_client):
    """« CE1 B », CE1, « 2026-2028 » was refused (two years that do not follow) with the name emptied and the
    level back to CP (seen by hand): all three are put back, the cursor on the name."""
    built = build_classroom(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "direction")
    url = "/admin/classes"
    resp = await client.post(url, data={"action": "create", "name": "CE1 B", "level": "CE1", "school_year": "2026-2028",
                                        "csrf_token": await csrf_of(client, url)})
    page = html.unescape(await resp.text())
    assert resp.status == 422 and "« 2026-2028 »" in page, page
    assert 'name="name" required maxlength="100" value="CE1 B" autofocus' in page
    assert "<option selected>CE1</option>" in page and 'value="2026-2028"' in page


async def test_a_refused_rename_keeps_what_the_teacher_typed(tmp_path, aiohttp_client):
    """A rename with an empty last name was refused and the boxes showed the old names again, the new first
    name lost (seen by hand): the page shows what was typed, the cursor on « Nom »."""
    built = build_classroom(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "mme.martin")
    url = f"/classes/{built.ids['cp-a']}/pupils/{built.ids['p04']}"
    resp = await client.post(url + "/rename", data={"last_name": "   ", "first_name": "Léon",
                                                    "csrf_token": await csrf_of(client, url)})
    page = html.unescape(await resp.text())
    assert "L'opération n'a pas été faite. Le nom est vide." in page, page
    assert 'name="last_name" value="" required maxlength="100" autocomplete="off" autofocus' in page
    assert 'name="first_name" value="Léon"' in page
    page = html.unescape(await (await client.get(url)).text())  # once: the next visit shows the pupil as saved
    assert 'name="first_name" value="Léo"' in page


async def test_a_refusal_is_a_sentence_of_its_own_in_both_languages(tmp_path, aiohttp_client):
    """« L'opération n'a pas été faite. Détail : le nom est vide » (seen by hand): the refusal's own words
    follow as a sentence, with a capital and a full stop, in French and in English; a file or user name that
    starts it is left as written."""
    built = build_classroom(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "mme.martin")
    url = f"/classes/{built.ids['cp-a']}/pupils/{built.ids['p04']}"
    for lang, said in (("fr", "L'opération n'a pas été faite. Le nom est vide.</p>"),
                       ("en", "Nothing was done. The last name is empty.</p>")):
        resp = await client.post(f"{url}/rename?lang={lang}", data={"last_name": "", "first_name": "Léon",
                                                                    "csrf_token": await csrf_of(client, url)})
        assert said in html.unescape(await resp.text())
    from preau.node.web.context import sentence
    assert [sentence(t) for t in ("l'identifiant « x » est déjà pris", "debut.toml, ligne 3 : x", "mme.b est là", "Fini.")] == [
        "L'identifiant « x » est déjà pris.", "debut.toml, ligne 3 : x.", "mme.b est là.", "Fini."]


def _tag(page: str, element_id: str) -> str:
    return re.search(rf'<input id="{element_id}"[^>]*>', page).group(0)


async def test_after_creating_an_account_or_a_class_the_cursor_is_back_in_the_name(tmp_path, aiohttp_client):
    """A head teacher makes several accounts (or classes) by keyboard: after each one the page opened with the
    cursor nowhere, eleven Tabs from the form (seen by hand). It is back in the name box; not on a plain visit."""
    built = build_classroom(tmp_path)
    client = await aiohttp_client(create_app(built.settings))
    await login(client, "direction")
    for url, form, box in (("/admin/accounts", {"action": "create", "username": "m.durand",
                                                 "password": "un long mot de passe", "role": "teacher"}, "new-username"),
                           ("/admin/classes", {"action": "create", "name": "CP C", "level": "CP",
                                                "school_year": "2026-2027"}, "class-name")):
        assert "autofocus" not in _tag(html.unescape(await (await client.get(url)).text()), box)
        resp = await client.post(url, data={**form, "csrf_token": await csrf_of(client, url)})
        page = html.unescape(await resp.text())
        assert resp.status == 200 and 'class="notice"' in page, page
        assert "autofocus" in _tag(page, box) and 'value="' not in _tag(page, box)
