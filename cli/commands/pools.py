"""`preau pool ...`: secure-aggregation pools (their behaviour is preau.node.federation.pools')."""
from __future__ import annotations

from typing import Any

from preau.node.actions import pools
from preau.node.federation import pools as fpools

from ..say import Say, ask_login


def pool_line(say: Say, v) -> str:
    """A pool in two lines: id, campaign, state (and result), then its schools, all in the person's language."""
    return v.line(say.lang)


def create(settings: Any, *, campaign: str, member: list[str], lang: str = "en", threshold: int | None = None,
           **_: Any) -> str:
    say = Say(lang)
    view = pools.create(settings, campaign=campaign, member=member, threshold=threshold)
    first = "cli.out.pool.created_countersign" if view.status == fpools.COUNTERSIGN else "cli.out.pool.created"
    return pool_line(say, view) + "\n" + say(first)


def list_pools(settings: Any, *, lang: str = "en", campaign: str | None = None, **_: Any) -> str:
    say = Say(lang)
    views = pools.list_pools(settings, campaign=campaign)
    return "\n".join(pool_line(say, v) for v in views) if views else say("cli.out.pool.none")


def approve(settings: Any, *, pool: str, lang: str = "en", user: str | None = None, **_: Any) -> str:
    say = Say(lang)
    pools.check_approve(settings, pool=pool)  # no such pool: said before the password is asked
    login = ask_login(say, settings, user, role="school", refusal="action.pool_school_only")
    done = pools.approve(settings, pool=pool, login=login)
    return pool_line(say, done.pool) + "\n" + say("cli.out.pool.approved", n=done.pupils)


def declare(settings: Any, *, campaign: str, lang: str = "en", user: str | None = None, **_: Any) -> str:
    say = Say(lang)
    login = ask_login(say, settings, user, role="school", refusal="action.pool_declare_school_only")
    done = pools.declare(settings, campaign=campaign, login=login)
    return say("cli.out.pool.declared", n=done.cohort, campaign=done.campaign)


def advance(settings: Any, *, pool: str, lang: str = "en", **_: Any) -> str:
    return pool_line(Say(lang), pools.advance(settings, pool=pool))
