"""What `preau sync` prints names the district as the head teacher knows it, and a campaign by its id."""
from __future__ import annotations

from preau.cli.commands import network
from preau.node.actions.status import Received, Synced


def test_sync_names_the_district_and_the_campaign(monkeypatch):
    done = Synced("DRTTR5UG-CGUF24N5-JR4SUACF-FUSN35CY", 742, 3801,
                  (Received("campaign", "campaign:2026-debut-cp:b5fb546c828298f8", 2),
                   Received("receipts", "receipts:-:b5fb546c828298f8:4cc804ce62447027", 1)), (), (),
                  peer_name="Circonscription de Lyon 3")
    monkeypatch.setattr(network.node_status, "sync_now", lambda settings, **kw: done)
    out = network.sync(None, lang="fr").splitlines()
    assert out[0] == ("Synchronisé avec Circonscription de Lyon 3 (DRTTR5UG-CGUF24N5-JR4SUACF-FUSN35CY) : "
                      "742 octets envoyés, 3801 octets reçus.")
    assert out[1] == "  reçu : campagne 2026-debut-cp (version 2)"
    assert out[2] == "  reçu : accusés de réception receipts:-:b5fb546c828298f8:4cc804ce62447027 (version 1)"
    # A district that gave no name (an older node) is named by its fingerprint, as before.
    monkeypatch.setattr(network.node_status, "sync_now",
                        lambda settings, **kw: Synced("DRTTR5UG-CGUF24N5-JR4SUACF-FUSN35CY", 1, 2, (), (), ()))
    assert network.sync(None, lang="en") == "Synced with DRTTR5UG-CGUF24N5-JR4SUACF-FUSN35CY: sent 1 bytes, received 2 bytes."
