"""The use cases of a node, one module per family, shared by the command line and the web.

Each use case takes the node's settings (or, for the web, an open node, a
store and a session) and the person's choices, and returns data: dataclasses
or plain values, never text. It never prompts: a password or the recovery key
is asked for by the caller and passed in (`Login`). What it says to a person
(a refusal, a progress step) is `Words` (catalog key + parameters); the
command line (`preau.cli`) and the web (`preau.node.web`) render them in the
person's language from the one catalog (`node/locales/<lang>/*.json`).

    common.py      the node of a data folder, role checks, Login, said()
    setup.py       init                      status.py    status, sync
    enrollment.py  invite, join, revoke      releases.py  release preview and approval
    stats.py       campaign statistics       backups.py   backup, restore, recovery key
    bundles.py     bundle export, import     keys.py      key rotation
    campaigns.py   campaign load             gdpr.py      the head teacher's GDPR duties
    pools.py       secure-aggregation pools
"""
from __future__ import annotations

from .campaigns import load_campaign
from .common import Login, admin_session, argon2_cost, checked_output, head_teacher, open_node, open_store, \
    opened_node, require_node, require_role
from .enrollment import create_invitation, issue_invitation
from .setup import init_node
from .stats import stats_rows
from .status import node_status

__all__ = ["Login", "admin_session", "argon2_cost", "checked_output", "create_invitation", "head_teacher",
           "init_node", "issue_invitation", "load_campaign", "node_status", "open_node", "open_store", "opened_node",
           "require_node", "require_role", "stats_rows"]
