"""Settings that are never lost: `preau init` merges into an existing preau.toml, and the invitation then points
where the settings say (the district's address is shown, and a loopback one refused unless asked)."""
from __future__ import annotations

from cli_helpers import DISTRICT_UAI, preau, user_error
from preau.node.settings import load_settings


def test_init_keeps_the_settings_written_before_it(tmp_path):
    data = tmp_path / "circo"
    data.mkdir()
    (data / "preau.toml").write_text('public_url = "https://circo.example"\nsync_interval = 120\n')
    r = preau("init", "--role", "district", "--uai", DISTRICT_UAI, "--port", "8091", "--data-dir", str(data))
    assert r.code == 0, r.err
    settings = load_settings({"data_dir": str(data)}, env={})
    assert (settings.public_url, settings.sync_interval, settings.role, settings.port) == (
        "https://circo.example", 120, "district", 8091)
    r = preau("invite", "--uai", "0751234J", "--data-dir", str(data))
    assert r.code == 0 and "with the district's address: https://circo.example\n" in r.err, r.err


def test_invite_refuses_an_address_only_this_machine_can_reach(tmp_path):
    data = tmp_path / "circo"
    assert preau("init", "--role", "district", "--uai", DISTRICT_UAI, "--data-dir", str(data)).code == 0
    r = preau("invite", "--uai", "0751234J", "--data-dir", str(data))
    user_error(r, "this invitation would point at http://127.0.0.1:8080, which only this machine can reach: "
                  f"set public_url in {data / 'preau.toml'}")
    assert r.out == ""
    r = preau("invite", "--uai", "0751234J", "--allow-loopback", "--data-dir", str(data))
    assert r.code == 0 and r.out.startswith("PREAU1-")
