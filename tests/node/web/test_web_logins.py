"""Login throttling on the real node app: growing delays for one computer, and a password reset unlocks."""
from __future__ import annotations

from node_fixtures import PASSWORD, build_school, login
from preau.node.app import create_app
from web_helpers import csrf_of
from web_helpers import login as try_login


async def test_a_head_teachers_password_reset_unlocks_a_teacher_at_once(tmp_path, aiohttp_client):
    app = create_app(build_school(tmp_path).settings)
    teacher = await aiohttp_client(app)
    for _ in range(5):
        assert (await try_login(teacher, "mme.a", "wrong password")).status == 401
    assert (await try_login(teacher, "mme.a", PASSWORD)).status == 429  # this computer waits now

    head = await aiohttp_client(teacher.server)
    await login(head, "direction")
    token = await csrf_of(head, "/admin/accounts")
    resp = await head.post("/admin/accounts", data={"csrf_token": token, "action": "reset", "username": "mme.a",
                                                     "password": "un nouveau mot de passe"})
    assert resp.status == 200 and "réinitialisé" in await resp.text()
    assert (await try_login(teacher, "mme.a", "un nouveau mot de passe")).status == 303  # no wait after the reset
