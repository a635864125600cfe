"""Every `preau` command as a person runs it: the real entry point in a subprocess, temp data folders,
a district served on a loopback port. Each command's normal path and its errors, checking the exact
message and the exit code; a user's mistake is one line on stderr, never a traceback."""
from __future__ import annotations

import json
import pathlib
import re
import time

import pytest

from preau.node.errors import EXIT_CONFIG, EXIT_DATA, EXIT_USER

from cli_helpers import (OTHER_UAI, PASSWORD, RECOVERY, SCHOOL_UAI, DISTRICT_UAI, campaign_file, fill, free_port,
                         healthz, init, invite, preau, serve, start_district, user_error)


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    """A served district with the campaign loaded, and a school joined to it with a filled class."""
    root = tmp_path_factory.mktemp("fed")
    district = start_district(root)
    try:
        r = preau("campaign", "load", str(campaign_file(root)), "--data-dir", str(district.data))
        assert r.code == 0, r.err
        school = root / "school"
        school_recovery = init(school, "school", SCHOOL_UAI)
        r = preau("join", invite(district), "--data-dir", str(school))
        assert r.code == 0, r.err
        fill(school)
        yield type("Fed", (), {"root": root, "district": district, "school": school,
                               "school_recovery": school_recovery})
    finally:
        district.stop()


# -- init ------------------------------------------------------------------------------------------


def test_init_school_prints_the_recovery_key_once_and_never_the_password(tmp_path):
    r = preau("init", "--role", "school", "--uai", "0751234j", "--name", "École Jean Jaurès", "--admin", "directrice",
              "--data-dir", str(tmp_path / "n"), "--port", "8099")
    assert r.code == 0, r.err
    assert r.out.startswith(f"Préau school node created in {tmp_path / 'n'}\n  UAI: 0751234J   name: École Jean Jaurès\n")
    assert "administrator: directrice" in r.out
    assert len(RECOVERY.findall(r.out)) == 1
    assert PASSWORD not in r.out + r.err
    settings = (tmp_path / "n" / "preau.toml").read_text()
    assert 'role = "school"' in settings and "port = 8099" in settings
    assert oct((tmp_path / "n" / "identity.key").stat().st_mode & 0o777) == "0o600"


def test_init_district_then_refuses_an_existing_node(tmp_path):
    init(tmp_path, "district", DISTRICT_UAI)
    assert 'role = "district"' in (tmp_path / "preau.toml").read_text()
    before = sorted(p.name for p in tmp_path.iterdir())
    r = preau("init", "--role", "school", "--uai", SCHOOL_UAI, "--data-dir", str(tmp_path))
    user_error(r, f"{tmp_path} already holds a Préau node; choose another --data-dir or remove it first")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("uai, words", [
    ("0751234K", "0751234K is not a valid UAI: the check letter K does not match the digits"),
    ("75-1234", "'75-1234' is not a UAI: a UAI has 8 characters: 7 digits then a letter, like 0751234J"),
    ("0201234X", "0201234X is not a UAI: its first three digits (020) are not a département (001-095 except 020"),
])
def test_init_refuses_a_bad_uai_and_writes_nothing(tmp_path, uai, words):
    r = preau("init", "--role", "school", "--uai", uai, "--data-dir", str(tmp_path / "n"))
    user_error(r, words)
    assert not (tmp_path / "n").exists()


def test_init_needs_a_password_and_a_long_enough_one(tmp_path):
    r = preau("init", "--uai", SCHOOL_UAI, "--data-dir", str(tmp_path / "a"), password=None)
    user_error(r, "Password for the administrator 'admin' is needed: type it when asked, or set PREAU_PASSWORD")
    r = preau("init", "--uai", SCHOOL_UAI, "--data-dir", str(tmp_path / "b"), password="short")
    user_error(r, "a password needs at least 10 characters")
    # One line of standard input also works (for scripts that cannot set the environment).
    r = preau("init", "--uai", SCHOOL_UAI, "--data-dir", str(tmp_path / "c"), password=None, stdin=PASSWORD + "\n")
    assert r.code == 0 and PASSWORD not in r.out + r.err


# -- serve, join, sync ----------------------------------------------------------------------------


def test_serve_answers_then_stops_on_sigterm_and_a_school_sees_it_unreachable(tmp_path):
    district = start_district(tmp_path)
    try:
        assert healthz(district.port)["role"] == "district"
        school = tmp_path / "school"
        init(school, "school", SCHOOL_UAI)
        r = preau("join", invite(district), "--data-dir", str(school))
        assert r.code == 0, r.err
        assert r.out.startswith("Joined the district ") and f"at {district.url}; " in r.out
    finally:
        assert district.stop() == 0
    assert healthz(district.port) is None
    r = preau("sync", "--data-dir", str(school))
    user_error(r, f"{district.url}")
    assert "cannot reach" in r.err or "unreachable" in r.err, r.err
    r = preau("status", "--data-dir", str(school))
    assert r.code == 0 and "last error" in r.out


def test_serve_on_a_port_in_use_or_an_empty_folder_is_one_clear_line(fed, tmp_path):
    r = preau("serve", "--data-dir", str(fed.school), "--port", str(fed.district.port))
    user_error(r, f"cannot listen on 127.0.0.1:{fed.district.port}: another program (or another Préau) "
                  "already uses that port")
    r = preau("serve", "--data-dir", str(tmp_path / "empty"))
    user_error(r, f"no Préau node in {tmp_path / 'empty'}: run `preau init` there first")
    assert r.out == "" and not (tmp_path / "empty").exists()


def test_join_errors(fed, tmp_path):
    other = tmp_path / "other"
    init(other, "school", SCHOOL_UAI)
    # The fixture's school used its invitation: a second school with the same text is refused.
    invitation = invite(fed.district)
    assert preau("join", invitation, "--data-dir", str(fed.school)).code == EXIT_USER  # already joined
    first = tmp_path / "first"
    init(first, "school", SCHOOL_UAI)
    assert preau("join", invitation, "--data-dir", str(first)).code == 0
    r = preau("join", invitation, "--data-dir", str(other))
    user_error(r, "this invitation has already been used: ask your district for a new one")

    r = preau("join", invite(fed.district, OTHER_UAI), "--data-dir", str(other))
    user_error(r, OTHER_UAI)

    r = preau("join", "PREAU1-NOTANINVITATION", "--data-dir", str(other))
    user_error(r, "copy it again")

    r = preau("join", str(tmp_path / "no-such-file.txt"), "--data-dir", str(other))
    user_error(r, f"there is no file {tmp_path / 'no-such-file.txt'}: give the invitation code")

    closed = free_port()
    r = preau("invite", "--uai", SCHOOL_UAI, "--allow-loopback", "--data-dir", str(fed.district.data),
              env={"PREAU_PUBLIC_URL": f"http://127.0.0.1:{closed}"})
    assert r.code == 0  # the invitation was made; it names a port where nothing listens
    stale = r.out.strip()
    r = preau("join", stale, "--data-dir", str(other))
    user_error(r, f"http://127.0.0.1:{closed}")
    assert "status" not in r.err or "preau status" in r.err


JOIN_CODE = re.compile(r"^    ([0-9A-Z]{5}(?:-[0-9A-Z]{5}){3})$", re.M)


@pytest.mark.slow
def test_join_by_short_code_a_typo_is_refused_in_french_before_any_traffic_then_it_enrols(fed, tmp_path):
    """The head teacher types the short code with one typo (refused in French, naming the group, nothing sent),
    then right: enrolled, and the school syncs. Wrong, guessed, expired codes and a fake district:
    tests/node/web/test_joincode_refusals.py (the same Node.join, in one process)."""
    import asyncio
    import sqlite3

    from preau.node.federation.joincode import CodeRefused, fetch_invitation
    from preau.protocol import joincode as jc

    fr = {"LANG": "fr_FR.UTF-8"}
    r = preau("invite", "--uai", SCHOOL_UAI, "--allow-loopback", "--data-dir", str(fed.district.data), env=fr)
    assert r.code == 0 and "Code à taper par la direction de l'école" in r.err and r.out.startswith("PREAU1-"), r.err
    code = JOIN_CODE.search(r.err).group(1)
    assert f"preau join {code} --district {fed.district.url}" in r.err

    def failures() -> int:
        with sqlite3.connect(fed.district.data / "federation.db") as db:
            return db.execute("SELECT code_failures FROM invitations WHERE code_slot = ?",
                              [jc.parse_code(code).slot]).fetchone()[0]

    school = tmp_path / "by-code"
    init(school, "school", SCHOOL_UAI)
    typo = code[:7] + ("0" if code[7] != "0" else "1") + code[8:]  # group 2
    dead = f"http://127.0.0.1:{free_port()}"  # nobody listens there: the typo must be caught before trying it
    r = preau("join", typo, "--district", dead, "--data-dir", str(school), env=fr)
    assert r.code == EXIT_USER and "Traceback" not in r.err
    assert "Le groupe 2 (" in r.err and "est faux" in r.err and "rien n'a été envoyé" in r.err, r.err
    swapped = code[:13] + code[14] + code[13] + code[15:]  # two neighbours of group 3 swapped
    if swapped != code:
        r = preau("join", swapped, "--district", fed.district.url, "--data-dir", str(school), env=fr)
        assert r.code == EXIT_USER and "Le groupe 3 (" in r.err, r.err
    assert failures() == 0  # the district never heard of either
    # (in English: the command's words follow the locale, and this assertion is the English text)
    r = preau("join", code.lower().replace("-", " "), "--district", fed.district.url.removeprefix("http://"),
              "--data-dir", str(school))
    assert r.code == 0 and r.out.startswith("Joined the district "), r.err
    r = preau("sync", "--data-dir", str(school))
    assert r.code == 0 and r.out.startswith("Synced with "), r.err
    # Used once: typed again (by anyone), it gets its own message.
    with pytest.raises(CodeRefused) as exc:
        asyncio.run(fetch_invitation(fed.district.url, jc.parse_code(code)))
    assert exc.value.code == "invitation_used" and "a déjà servi" in exc.value.localized("fr")


def test_join_with_an_expired_invitation(fed, tmp_path):
    from preau.node.runtime import Node

    node = Node(fed.district.data, role="district", clock=lambda: int(time.time()) - 3 * 86400)
    try:
        expired = node.create_invitation(SCHOOL_UAI, [fed.district.url], ttl=86400).to_string()
    finally:
        node.close()
    school = tmp_path / "late"
    init(school, "school", SCHOOL_UAI)
    invitation_file = tmp_path / "invitation.txt"
    invitation_file.write_text(expired + "\n")
    r = preau("join", str(invitation_file), "--data-dir", str(school))
    user_error(r, "This invitation expired at ")
    assert "this machine's clock says" in r.err and "by its own clock" in r.err


def test_sync_before_joining(tmp_path):
    init(tmp_path, "school", SCHOOL_UAI)
    r = preau("sync", "--data-dir", str(tmp_path))
    user_error(r, "this node has not joined a district yet")


def test_status_text_and_json(fed):
    r = preau("status", "--data-dir", str(fed.school))
    assert r.code == 0 and r.err == ""
    assert r.out.startswith("school node ") and "district: " in r.out and fed.district.url in r.out
    assert re.search(r"^district: [^(]+ \([A-Z2-7]{8}(-[A-Z2-7]{8}){3}\) at ", r.out, re.M), r.out  # by its name first
    assert re.search(r"^last sync: \d+ (second|minute)s? ago \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)$", r.out, re.M), r.out
    r2 = preau("status", "--data-dir", str(fed.district.data))
    assert re.search(rf"^  {SCHOOL_UAI}  \S+  active  last sync \d+ \w+ ago", r2.out, re.M), r2.out
    r = preau("status", "--json", "--data-dir", str(fed.district.data))
    info = json.loads(r.out)
    assert info["role"] == "district"
    assert any(p["uai"] == SCHOOL_UAI and p["status"] == "active" for p in info["peers"])
    assert {d["kind"] for d in info["documents"]} >= {"campaign"}
    r = preau("status", "--data-dir", str(fed.root / "nothing-here"))
    user_error(r, "run `preau init` there first")


# -- invite ----------------------------------------------------------------------------------------


def test_invite_is_for_districts_and_checks_the_uai(fed):
    user_error(preau("invite", "--uai", SCHOOL_UAI, "--data-dir", str(fed.school)),
               "only a district node invites schools; this node is a school")
    user_error(preau("invite", "--uai", "0751234K", "--data-dir", str(fed.district.data)),
               "0751234K is not a valid UAI: the check letter K does not match the digits")
    user_error(preau("invite", "--uai", SCHOOL_UAI, "--expires-days", "0", "--data-dir", str(fed.district.data)),
               "--expires-days must be between 1 and 90")
    user_error(preau("invite", "--uai", SCHOOL_UAI, "--data-dir", str(fed.district.data)),
               f"this invitation would point at {fed.district.url}, which only this machine can reach: set public_url")
    r = preau("invite", "--uai", SCHOOL_UAI, "--allow-loopback", "--data-dir", str(fed.district.data))
    assert r.code == 0 and r.out.startswith("PREAU1-") and r.out.count("\n") == 1
    assert r.err.startswith(f"Invitation for {SCHOOL_UAI}, valid 7 day(s). Code for the head teacher to type:\n\n    ")
    assert f"with the district's address: {fed.district.url}\n" in r.err and r.err.endswith("on the next line:\n")
    r = preau("invite", "--uai", SCHOOL_UAI, "--data-dir", str(fed.district.data),
              env={"PREAU_PUBLIC_URL": "https://circo.example"})
    assert r.code == 0 and "with the district's address: https://circo.example\n" in r.err
    user_error(preau("invite", "--uai", SCHOOL_UAI, "--school-url", "10.0.0.5:8080", "--data-dir", str(fed.district.data)),
               "--school-url must be an http:// or https:// address like http://10.0.0.5:8080, got '10.0.0.5:8080'")
    r = preau("invite", "--uai", SCHOOL_UAI, "--name", "École A", "--school-url", "http://127.0.0.1:8099/",
              "--allow-loopback", "--data-dir", str(fed.district.data))
    assert r.code == 0
    # The heading named only the UAI though the school's name was given.
    assert r.err.startswith(f"Invitation for École A ({SCHOOL_UAI}), valid 7 day(s).")
    r = preau("--lang", "fr", "invite", "--uai", SCHOOL_UAI, "--name", " École  Jean Jaurès ", "--town", "Paris",
              "--allow-loopback", "--data-dir", str(fed.district.data))
    assert r.code == 0 and r.err.startswith(f"Invitation pour École Jean Jaurès, Paris ({SCHOOL_UAI}), valable 7 jour(s).")
    from preau.node.federation.store import FedStore
    store = FedStore(fed.district.data / "federation.db")
    try:
        named = [(i["name"], i["address"]) for i in store.invitations() if i["name"]]
    finally:
        store.close()
    assert sorted(named) == [("École A", "http://127.0.0.1:8099"), ("École Jean Jaurès", None)]  # tidied as the web does


# -- release, sync, stats -----------------------------------------------------------------------------


def test_release_preview_wrong_password_approve_then_stats(fed):
    school = str(fed.school)
    user_error(preau("release", "2026-debut-cp", "--data-dir", school, password="not the password"),
               "wrong user name or password")
    user_error(preau("release", "2026-debut-cp", "--user", "nobody", "--data-dir", school),
               "wrong user name or password")
    r = preau("release", "2026-debut-cp", "--data-dir", school)
    assert r.code == 0, r.err
    assert "What would leave the school (exactly this document):" in r.out
    assert "closing release" not in r.out and '"final": false' in r.out
    assert r.out.rstrip().endswith("Run again with --approve to sign and send it.")
    r = preau("release", "2026-debut-cp", "--final", "--data-dir", school)
    assert "(closing release: the campaign's last)" in r.out and '"final": true' in r.out

    # Nothing left before the approval: the district has no statistics yet.
    user_error(preau("stats", "2026-debut-cp", "--data-dir", str(fed.district.data)),
               "no statistics for campaign '2026-debut-cp' yet: no school release has arrived")

    r = preau("release", "2026-debut-cp", "--approve", "--final", "--user", "admin", "--data-dir", school)
    assert r.code == 0, r.err
    assert "Release 1 signed" in r.out
    user_error(preau("release", "2026-debut-cp", "--approve", "--data-dir", school), "nothing to release", 1)

    r = preau("sync", "--data-dir", school)
    assert r.code == 0, r.err
    assert r.out.startswith("Synced with ") and "the district acknowledged release:2026-debut-cp:" in r.out

    district = str(fed.district.data)
    table = preau("stats", "2026-debut-cp", "--data-dir", district)
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0] == "Campaign 2026-debut-cp: 1 school(s) contributing, 0 withheld (small cohort)"
    assert lines[1].split() == ["exercise", "besoin", "fragile", "seuil2", "absent", "pending", "schools"]
    as_json = json.loads(preau("stats", "2026-debut-cp", "--format", "json", "--data-dir", district).out)
    assert as_json["schools_contributing"] == 1
    rows = {r["exercise"]: r for r in as_json["exercises"]}
    assert len(lines) - 2 == len(rows) > 0
    for row in rows.values():
        assert sum(row[g] for g in ("besoin", "fragile", "seuil2", "absent", "pending")) == 20
    csv_lines = preau("stats", "2026-debut-cp", "--format", "csv", "--data-dir", district).out.splitlines()
    assert csv_lines[0] == "exercise,besoin,fragile,seuil2,absent,pending,schools"
    first = rows[csv_lines[1].split(",")[0]]
    assert csv_lines[1] == ",".join(str(first[k]) for k in ("exercise", "besoin", "fragile", "seuil2", "absent", "pending", "schools"))

    user_error(preau("stats", "2027-nope", "--data-dir", district),
               "no campaign '2027-nope' on this district; its campaigns: 2026-debut-cp")
    # On the school: exactly the counts its release carried, the same as the district's merge of this one school.
    own = json.loads(preau("stats", "2026-debut-cp", "--format", "json", "--data-dir", school).out)
    assert (own["release"], own["status"], own["final"]) == (1, "published", True)
    for row in own["exercises"]:
        merged = rows[row["exercise"]]
        assert all(row[g] == merged[g] for g in ("besoin", "fragile", "seuil2", "absent", "pending")), row
    assert preau("stats", "2026-debut-cp", "--data-dir", school).out.startswith(
        "Campaign 2026-debut-cp: this school's release 1 (published, closing), as the district received it\n")
    user_error(preau("stats", "2027-nope", "--data-dir", school),
               "this school has not released anything for campaign '2027-nope' yet: `preau release 2027-nope` shows")
    r = preau("stats", "2026-debut-cp", "--format", "xml", "--data-dir", district)
    assert r.code == 2 and "invalid choice: 'xml'" in r.err


def test_release_is_for_schools(fed):
    user_error(preau("release", "2026-debut-cp", "--data-dir", str(fed.district.data)),
               "releases are made on a school node")


# -- backup, restore --------------------------------------------------------------------------------


def test_backup_and_restore(fed, tmp_path):
    backup = tmp_path / "school.backup"
    r = preau("backup", "-o", str(backup), "--data-dir", str(fed.school))
    assert r.code == 0, r.err
    assert r.out == f"Encrypted backup written to {backup}; it opens with the recovery key or an administrator's password.\n"
    assert r.err == ""  # progress lines only on a terminal
    user_error(preau("backup", "-o", str(tmp_path / "x.backup"), "--data-dir", str(fed.school), password="wrong one!"),
               "wrong user name or password")
    user_error(preau("backup", "-o", str(tmp_path / "no" / "x.backup"), "--data-dir", str(fed.school)),
               f"the folder {tmp_path / 'no'} does not exist")

    restored = tmp_path / "restored"
    r = preau("restore", str(backup), "--data-dir", str(restored), env={"PREAU_RECOVERY_KEY": fed.school_recovery})
    assert r.code == 0, r.err
    assert r.out == f"Restored into {restored}.\n"  # keys and enrolment came back with it
    status = preau("status", "--json", "--data-dir", str(restored))
    original = preau("status", "--json", "--data-dir", str(fed.school))
    assert status.code == 0 and json.loads(status.out)["node_id"] == json.loads(original.out)["node_id"]
    assert json.loads(status.out)["upstream"]["node_id"] == json.loads(original.out)["upstream"]["node_id"]

    again = preau("restore", str(backup), "--data-dir", str(restored), env={"PREAU_RECOVERY_KEY": fed.school_recovery})
    user_error(again, f"{restored} already holds a Préau node; restore into an empty folder, or add --force")
    r = preau("restore", str(backup), "--force", "--data-dir", str(restored), env={"PREAU_RECOVERY_KEY": fed.school_recovery})
    assert r.code == 0 and r.out == f"Restored into {restored}.\n"
    assert list(restored.glob("preau.db.before-restore-*"))

    by_password = tmp_path / "by-password"
    r = preau("restore", str(backup), "--user", "admin", "--data-dir", str(by_password))
    assert r.code == 0, r.err
    user_error(preau("restore", str(backup), "--user", "admin", "--data-dir", str(tmp_path / "p2"), password="wrong one!"),
               "this user name and password do not open school.backup")

    user_error(preau("restore", str(backup), "--data-dir", str(tmp_path / "w"),
                     env={"PREAU_RECOVERY_KEY": fed.district.recovery}),
               "this recovery key does not open school.backup: it belongs to another school or set-up")
    key = fed.school_recovery
    typo = key[:7] + ("A" if key[7] != "A" else "B") + key[8:]
    user_error(preau("restore", str(backup), "--data-dir", str(tmp_path / "w"), env={"PREAU_RECOVERY_KEY": typo}),
               "this is not a valid recovery key")

    corrupt = tmp_path / "corrupt.backup"
    raw = bytearray(backup.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    corrupt.write_bytes(bytes(raw))
    user_error(preau("restore", str(corrupt), "--data-dir", str(tmp_path / "w"), env={"PREAU_RECOVERY_KEY": fed.school_recovery}),
               "corrupt.backup is damaged or was changed (it fails its integrity check); use another backup", EXIT_DATA)
    (tmp_path / "notes.txt").write_text("hello")
    user_error(preau("restore", str(tmp_path / "notes.txt"), "--data-dir", str(tmp_path / "w"),
                     env={"PREAU_RECOVERY_KEY": fed.school_recovery}),
               "notes.txt is not a Préau backup file", EXIT_DATA)
    user_error(preau("restore", str(tmp_path / "missing.backup"), "--data-dir", str(tmp_path / "w")),
               "no backup file at", EXIT_DATA)
    assert not (tmp_path / "w").exists() or not (tmp_path / "w" / "preau.db").exists()


# -- bundles, keys, revoke ------------------------------------------------------------------------


def test_bundle_export_import_and_tampered(fed, tmp_path):
    uai = "0930001W"
    school = tmp_path / "offline"
    init(school, "school", uai)
    assert preau("join", invite(fed.district, uai), "--data-dir", str(school)).code == 0
    fill(school)
    assert preau("release", "2026-debut-cp", "--approve", "--data-dir", str(school)).code == 0
    bundle = tmp_path / "school.bundle"
    user_error(preau("bundle", "export", "-o", str(tmp_path / "usb" / "x.bundle"), "--data-dir", str(school)),
               f"cannot write {tmp_path / 'usb' / 'x.bundle'}: the folder {tmp_path / 'usb'} does not exist")
    r = preau("bundle", "export", "-o", str(bundle), "--data-dir", str(school))
    assert r.code == 0, r.err
    assert r.out == f"1 signed document(s) written to {bundle}; import them on the district with `preau bundle import`.\n"

    def tampered(field: str, at: int) -> pathlib.Path:
        data = json.loads(bundle.read_text())
        entry = data["documents"][-1]
        text = entry[field]
        i = at % len(text)
        entry[field] = text[:i] + ("0" if text[i] != "0" else "1") + text[i + 1:]
        path = tmp_path / f"tampered-{field}.bundle"
        path.write_text(json.dumps(data))
        return path

    district = str(fed.district.data)
    user_error(preau("bundle", "import", str(tampered("document", 1000)), "--data-dir", district),
               "the bundle holds a damaged document (these bytes are not a valid Automerge document: bad checksum); "
               "export it again", EXIT_DATA)
    user_error(preau("bundle", "import", str(tampered("release", -10)), "--data-dir", district),
               "nothing was imported", EXIT_DATA)
    user_error(preau("bundle", "import", str(tmp_path / "none.bundle"), "--data-dir", district),
               f"cannot read {tmp_path / 'none.bundle'}: No such file or directory", EXIT_DATA)
    (tmp_path / "junk.bundle").write_text("{}")
    user_error(preau("bundle", "import", str(tmp_path / "junk.bundle"), "--data-dir", district),
               "this file is not a Préau bundle (or it is damaged); export it again from the school", EXIT_DATA)
    r = preau("bundle", "import", str(tmp_path / "junk.bundle"), "--data-dir", district, env={"LANG": "fr_FR.UTF-8"})
    assert (r.code, r.err) == (EXIT_DATA, "preau : erreur : Ce fichier n'est pas un paquet Préau (ou il est endommagé) : "
                                          "exportez-le de nouveau depuis l'école.\n")  # French, whole

    # Carrying needs a district to carry to: the district itself has none.
    user_error(preau("bundle", "import", "--carry", str(bundle), "--data-dir", district),
               "this node has no district to pass the documents to: join one first (preau join)")
    r = preau("bundle", "import", str(bundle), "--data-dir", district)
    assert (r.code, r.out) == (0, "1 document(s) verified and imported.\n"), r.err
    stats = json.loads(preau("stats", "2026-debut-cp", "--format", "json", "--data-dir", district).out)
    assert stats["schools_contributing"] >= 1


def test_keys_rotate_then_revoke_by_node_id_and_by_uai(fed, tmp_path):
    school = tmp_path / "rotating"
    init(school, "school", OTHER_UAI)
    assert preau("join", invite(fed.district, OTHER_UAI), "--data-dir", str(school)).code == 0
    old = json.loads(preau("status", "--json", "--data-dir", str(school)).out)["node_id"]
    r = preau("keys", "rotate", "--yes", "--data-dir", str(school))
    assert r.code == 0, r.err
    new = json.loads(preau("status", "--json", "--data-dir", str(school)).out)["node_id"]
    assert new != old and r.out == (f"New keys: {old} -> {new}. The district updates its pin at the next sync.\n"
                                    "Make a new backup now: a backup made before this rotation brings back the old key.\n")
    assert preau("sync", "--data-dir", str(school)).code == 0
    peers = json.loads(preau("status", "--json", "--data-dir", str(fed.district.data)).out)["peers"]
    assert {(p["node_id"], p["status"]) for p in peers if p["uai"] == OTHER_UAI} == {(old, "rotated"), (new, "active")}

    district = str(fed.district.data)
    user_error(preau("revoke", old, "--reason", "test", "--data-dir", district), f"{old} is already rotated: nothing to do")
    r = preau("revoke", new, "--reason", "box stolen", "--data-dir", district)
    assert r.code == 0 and r.out == f"Revoked {OTHER_UAI} {new}; its sessions and releases are refused from now on.\n"
    user_error(preau("revoke", OTHER_UAI, "--reason", "again", "--data-dir", district), f"{OTHER_UAI} is already revoked")
    user_error(preau("sync", "--data-dir", str(school)), "the district has revoked this node's key")
    user_error(preau("revoke", "0590001F", "--reason", "x", "--data-dir", district),
               "no enrolled node matches '0590001F': give a school's UAI or its node id (see `preau status`)")
    user_error(preau("revoke", OTHER_UAI, "--reason", "x", "--data-dir", str(school)),
               "only a district node revokes the nodes it enrolled")


def test_revoke_by_uai(fed, tmp_path):
    uai = "0930456R"
    school = tmp_path / "closing"
    init(school, "school", uai)
    assert preau("join", invite(fed.district, uai), "--data-dir", str(school)).code == 0
    r = preau("revoke", uai.lower(), "--reason", "school closed", "--data-dir", str(fed.district.data))
    assert r.code == 0 and r.out.startswith(f"Revoked {uai} ")


# -- campaigns ----------------------------------------------------------------------------------------


def test_campaign_check_and_load(fed, tmp_path):
    r = preau("campaign", "check", "point-etape-cp", password=None)
    assert r.code == 0 and "valid campaign definition" in r.out
    bad = tmp_path / "bad.toml"
    bad.write_text(campaign_file(tmp_path).read_text(encoding="utf-8").replace('level = "CP"', 'level = "CP3"'), encoding="utf-8")
    r = preau("campaign", "check", str(bad), password=None)
    user_error(r, f"{bad}:", EXIT_DATA)
    assert "level" in r.err
    # A district of its own: the shared one keeps a single campaign (see the test below).
    district = tmp_path / "district"
    init(district, "district", DISTRICT_UAI)
    user_error(preau("campaign", "load", str(bad), "--data-dir", str(district)), f"{bad}:", EXIT_DATA)
    user_error(preau("campaign", "load", "debut-ce1", "--data-dir", str(fed.school)),
               "campaigns are published by a district node")
    r = preau("campaign", "load", "debut-ce1", "--data-dir", str(district))
    assert r.code == 0 and r.out == ("Campaign 2026-debut-ce1 published (version 1); "
                                     "schools receive it at their next sync.\n")
    r = preau("campaign", "load", "debut-ce1", "--data-dir", str(district))
    assert (r.code, r.out) == (0, "Campaign 2026-debut-ce1 is unchanged (version 1): nothing new for the schools.\n")
    # Thresholds published later: the same campaign, a new version for the schools.
    from preau.node.campaign_file import resolve_campaign_path

    text = resolve_campaign_path("debut-ce1").read_text(encoding="utf-8")
    changed = tmp_path / "debut-ce1-thresholds.toml"
    changed.write_text(re.sub(r"thresholds = \[(\d+), (\d+)\]", lambda m: f"thresholds = [{m[1]}, {int(m[2]) + 1}]",
                              text, count=1), encoding="utf-8")
    assert changed.read_text(encoding="utf-8") != text
    r = preau("campaign", "load", str(changed), "--data-dir", str(district))
    assert (r.code, r.out) == (0, "Campaign 2026-debut-ce1 published (version 2); schools receive it at their next sync.\n")


def test_a_school_joins_a_district_that_has_two_campaigns(tmp_path):
    district = start_district(tmp_path)
    try:
        for sample in ("debut-cp", "debut-ce1"):
            assert preau("campaign", "load", sample, "--data-dir", str(district.data)).code == 0
        school = tmp_path / "school"
        init(school, "school", SCHOOL_UAI)
        r = preau("join", invite(district), "--data-dir", str(school))
        assert r.code == 0, r.err
        assert "2 document(s) received" in r.out
    finally:
        district.stop()


def test_bad_settings_file_stops_every_command(tmp_path):
    (tmp_path / "preau.toml").write_text("port = '8080'\n")
    r = preau("status", "--data-dir", str(tmp_path))
    user_error(r, "line 1: port must be a whole number from 1 to 65535, got the text '8080' (write the number without quotes)",
               EXIT_CONFIG)


def _with_terminal_stderr(*args: str) -> tuple[int, str, str]:
    """Run preau with stderr on a pseudo-terminal, as when a person runs it by hand."""
    import os
    import pty
    import subprocess

    from cli_helpers import PREAU

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_")}
    env.update(PREAU_ARGON2_PROFILE="minimal", PREAU_PASSWORD=PASSWORD)
    proc = subprocess.run([*PREAU, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                          env=env, timeout=60, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.returncode, proc.stdout, b"".join(chunks).decode().replace("\r\n", "\n")


def test_long_operations_say_what_they_do_on_a_terminal(fed, tmp_path):
    code, out, err = _with_terminal_stderr("backup", "-o", str(tmp_path / "b.backup"), "--data-dir", str(fed.school))
    assert code == 0 and err == f"Writing an encrypted backup to {tmp_path / 'b.backup'} ...\n"
    school = tmp_path / "s"
    init(school, "school", "0590002G")
    code, out, err = _with_terminal_stderr("join", invite(fed.district, "0590002G"), "--data-dir", str(school))
    assert code == 0 and err == "Contacting the district named in the invitation, as 0590002G ...\n", err
    code, out, err = _with_terminal_stderr("sync", "--data-dir", str(school))
    assert code == 0 and err == f"Synchronising with the district at {fed.district.url} ...\n", err


def _init_on_a_terminal(data: pathlib.Path, *typed: str) -> tuple[int, str, str]:
    """Run `preau init` with its standard input and errors on a pseudo-terminal, typing each of `typed` when asked."""
    import os
    import pty
    import select
    import subprocess

    from cli_helpers import PREAU

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREAU_")}
    env["PREAU_ARGON2_PROFILE"] = "minimal"
    # A new session has no controlling terminal, so getpass uses the pty on stdin rather than /dev/tty.
    proc = subprocess.Popen([*PREAU, "init", "--uai", SCHOOL_UAI, "--data-dir", str(data)], stdin=slave,
                            stderr=slave, stdout=subprocess.PIPE, env=env, text=True, start_new_session=True)
    os.close(slave)
    seen = b""
    mark = 0  # answer only a prompt written after the last answer: getpass flushes input typed early
    answers = list(typed)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
                if answers and seen[mark:].rstrip().endswith(b":"):
                    os.write(master, answers.pop(0).encode() + b"\n")
                    mark = len(seen)
            elif proc.poll() is not None:
                break
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return proc.returncode, out, seen.decode()


def test_init_asks_the_password_twice_without_echo(tmp_path):
    code, out, terminal = _init_on_a_terminal(tmp_path / "a", PASSWORD, PASSWORD)
    assert code == 0, terminal
    assert "Password for the administrator 'admin':" in terminal and "Again, to check:" in terminal
    assert PASSWORD not in terminal and PASSWORD not in out
    assert RECOVERY.search(out)
    # A typo in the second entry is asked again, as a short password is: typed blind, the long command
    # (--name "École Jean Jaurès" ...) should not have to be typed again. A short one is refused before the
    # second entry. Three failed tries in all, and nothing is made.
    code, out, terminal = _init_on_a_terminal(tmp_path / "b", PASSWORD, PASSWORD + "x", "court", PASSWORD, PASSWORD)
    assert code == 0, terminal
    assert terminal.count("Again, to check:") == 2 and terminal.count("Password for the administrator") == 3
    assert "The two entries differ. Try again." in terminal and "Password too short" in terminal
    assert RECOVERY.search(out)
    code, out, terminal = _init_on_a_terminal(tmp_path / "c", PASSWORD, "x", PASSWORD, "y", PASSWORD, "z")
    assert code == EXIT_USER and out == ""
    assert "preau: error: the two entries differ; nothing was changed: run the command again" in terminal
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("args", [
    ["status"], ["sync"], ["invite", "--uai", SCHOOL_UAI], ["join", "PREAU1-X"], ["release", "2026-debut-cp"],
    ["stats", "2026-debut-cp"], ["backup", "-o", "{tmp}/b"], ["bundle", "export", "-o", "{tmp}/x"],
    ["bundle", "import", "{tmp}/x"], ["keys", "rotate", "--yes"], ["revoke", SCHOOL_UAI, "--reason", "r"],
    ["campaign", "load", "debut-cp"],
], ids=lambda a: " ".join(a[:2]))
def test_every_command_on_a_folder_without_a_node_says_to_run_init(tmp_path, args):
    (tmp_path / "x").write_text("{}")
    empty = tmp_path / "empty"
    r = preau(*[a.format(tmp=tmp_path) for a in args], "--data-dir", str(empty))
    user_error(r, "run `preau init` there first")
    assert str(empty) in r.err and not empty.exists()


def test_a_command_meeting_a_database_held_by_another_process_says_to_try_again(tmp_path):
    """A real lock: another process holds federation.db's write lock longer than the wait (5 s)."""
    import sqlite3

    from preau.node.errors import EXIT_TEMPFAIL

    init(tmp_path / "d", "district", "0693344K")
    holder = sqlite3.connect(tmp_path / "d" / "federation.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a long write elsewhere (a backup, a stuck command)
    try:
        r = preau("invite", "--uai", SCHOOL_UAI, "--allow-loopback", "--data-dir", str(tmp_path / "d"), timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    user_error(r, "the node's database is busy: another Préau process is writing to it", EXIT_TEMPFAIL)
    # Nothing was half-done: the same command works once the lock is gone.
    assert preau("invite", "--uai", SCHOOL_UAI, "--allow-loopback", "--data-dir", str(tmp_path / "d")).code == 0


def test_parent_url_in_the_settings_is_where_syncs_go(fed, tmp_path):
    """The district moved: parent_url in preau.toml overrides the address recorded at `preau join`."""
    school = tmp_path / "moved"
    init(school, "school", "0751235K")
    assert preau("join", invite(fed.district, "0751235K"), "--data-dir", str(school)).code == 0
    nowhere = free_port()
    settings = school / "preau.toml"
    base = settings.read_text() if settings.exists() else ""
    settings.write_text(base + f'parent_url = "http://127.0.0.1:{nowhere}"\n')
    user_error(preau("sync", "--data-dir", str(school)), f"cannot reach http://127.0.0.1:{nowhere}")
    r = preau("sync", "--data-dir", str(school), env={"LANG": "fr_FR.UTF-8"})  # said in French, whole
    assert f"Impossible de joindre http://127.0.0.1:{nowhere}" in r.err and "cannot reach" not in r.err, r.err
    # Why, in words that say what to check: nothing listens there (not aiohttp's "ClientConnectorError: ...").
    assert "la connexion a été refusée : rien n'écoute à cette adresse" in r.err and "Error" not in r.err, r.err
    r = preau("status", "--data-dir", str(school), env={"LANG": "fr_FR.UTF-8"})  # the recorded failure, in French
    assert "injoignable par le réseau" in r.out and "cannot reach" not in r.out, r.out
    settings.write_text(base + f'parent_url = "http://127.0.0.1:{fed.district.port}"\n')
    r = preau("sync", "--data-dir", str(school))
    assert r.code == 0 and "Synced with" in r.out, r.err


@pytest.mark.parametrize("level, logged", [("info", True), ("warning", False)])
def test_log_level_decides_what_serve_writes(tmp_path, level, logged):
    data = tmp_path / "n"
    init(data, "school", SCHOOL_UAI)
    with open(data / "preau.toml", "a") as f:
        f.write(f'log_level = "{level}"\n')
    proc = serve(data, free_port())  # waits until /healthz answers: one access-log line at INFO
    proc.terminate()
    proc.wait(timeout=20)
    log = (data / "serve.log").read_text()
    assert ("GET /healthz 200" in log) == logged, log
