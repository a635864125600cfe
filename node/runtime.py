"""A node on disk and at run time: its identity, its federation store, its upstream sync loop.

The same code runs a school, a district, and a district with a parent
(académie): only the peers it has pinned differ.

Why one module of about 590 lines: `Node` is one object with one life (open,
enrol, sync on a schedule, report its health, rotate its keys, close); what
could stand alone has gone (the database thread to node/database.py, the
sessions to federation/transport.py, the rules to federation/rules.py).
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import os
import pathlib
import random
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Callable

from preau.crdt.campaign import Campaign
from preau.protocol.errors import LocalProtocolError
from preau.protocol.identity import Identity, PublicIdentity
from preau.protocol.invitation import DEFAULT_TTL, Invitation, expired_message, utc
from preau.protocol.joincode import code_slot

from preau.node import testhooks
from preau.node.aio import within
from preau.node.database import DatabaseThread, T, check_private_files, inline
from preau.node.federation import pools as fpools
from preau.node.federation.backoff import Backoff
from preau.node.records.store import DB_NAME, Store
from preau.node.records.vault import ARGON2
from . import faults, keyfiles
from .codes import refusal_words
from .errors import Conflict, NotFound, UserError, checked_uai, said, words
from preau.node.federation.live_stats import LiveStatistics
from preau.node.federation.rules import MEMBER_ROLES, RESTORED, Federation
from preau.node.federation.store import FedStore
from preau.node.federation.transport import Limits, PeerUnreachable, SessionGate, SessionReport, open_session
from preau.node.federation.joincode import checked_code, district_url, fetch_invitation
from preau.protocol.joincode import looks_like_code
from preau.node import datadir

log = logging.getLogger("preau.node")

IDENTITY_FILE = datadir.IDENTITY_KEY
FEDERATION_DB = datadir.FEDERATION_DB
PENDING_ROTATION = "pending_rotation"  # JSON list of rotation statements (hex) the node above has not heard of
RETIRED_KEYS = "retired_keys"  # JSON list of {"seed", "statement", "until"}: keys still answered on (overlap)
DEFAULT_OVERLAP_DAYS = 90
SLOT_MEMORY = 400 * 86400  # a short code's slot is not given again within this time (a code lives 90 days at most)


def pending_rotations(fed: FedStore) -> list[str]:
    """The chain of rotation statements not yet taken by the node above, oldest first."""
    raw = fed.get_meta(PENDING_ROTATION)
    if not raw:
        return []
    return [raw] if isinstance(raw, str) else list(raw)  # a str: written by a version that kept one statement


def create_identity(data_dir: pathlib.Path, seed: bytes | None = None) -> Identity:
    path = pathlib.Path(data_dir) / IDENTITY_FILE
    if path.exists():
        raise Conflict(said("msg.node.has_keys", path=str(path)))
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = seed or os.urandom(32)
    keyfiles.write_key_file(path, seed)
    return Identity(seed)


def load_identity(data_dir: pathlib.Path) -> Identity:
    """The node's identity; a key file that fails its checksum, is cut short or is not text is refused
    (DamagedKeyFile, naming the file and how to restore it), never read as another key."""
    path = pathlib.Path(data_dir) / IDENTITY_FILE
    try:
        seed = keyfiles.read_key_file(path)
    except FileNotFoundError:
        raise NotFound(said("msg.node.no_keys", folder=str(data_dir))) from None
    return Identity(seed)


@dataclass
class SyncStatus:
    """The upstream link in plain words, for the status page."""

    last_attempt: int | None = None
    last_success: int | None = None
    failures: int = 0
    last_error: str | None = None  # English, for logs and scripts
    last_error_code: str | None = None  # the same as a stable code, which the pages say in words
    next_attempt: int | None = None


class Node:
    def __init__(self, data_dir: pathlib.Path, *, role: str, limits: Limits = Limits(),
                 backoff: Backoff = Backoff(), sync_interval: float = 300.0, pool_round_timeout: float = 86400.0,
                 academie: str | None = None,
                 on_campaign: Callable[[Campaign], None] | None = None,
                 clock: Callable[[], int] = lambda: int(time.time())):
        self.data_dir = pathlib.Path(data_dir)
        self.role = role
        academie = fpools.academie_setting(academie)  # a mistyped id is refused before anything opens
        self._identity_seen = self._identity_stamp()
        self.identity = load_identity(self.data_dir)
        self.fed = FedStore(self.data_dir / FEDERATION_DB, clock=clock)
        self.federation = Federation(self.identity, self.fed, role=role, clock=clock, on_campaign=on_campaign)
        self.federation.academie = academie  # pools: whose countersignature a school needs
        self.live_stats = LiveStatistics(self.fed)  # merged statistics in memory, kept up to date (pages read these)
        self.limits = limits
        self.gate = SessionGate(limits)  # the server side's admission: concurrency and per-peer rate
        self.backoff = backoff
        self.sync_interval = sync_interval
        self.pool_round_timeout = pool_round_timeout
        self.status = SyncStatus()
        self.wakeup = asyncio.Event()
        self._clock = clock

    store: Any = None  # the school's encrypted store, when this node has one
    db_thread: DatabaseThread | None = None  # while serving: the one thread that writes both files

    def start_database_thread(self) -> DatabaseThread:
        """From now on both files are written only by one thread, through `await node.run(...)` (serve);
        the event loop reads them through query-only connections of its own."""
        self.db_thread = DatabaseThread()
        self.db_thread.own(self.fed.writer, self.store.writer if self.store is not None else None)
        self.federation.run = self.run
        return self.db_thread

    def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """`run` for code that is not a coroutine (a test, another thread): waits for the database thread."""
        return fn(*args, **kw) if self.db_thread is None else self.db_thread.call(fn, *args, **kw)

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """`fn(*args, **kw)` on the database thread while serving (the event loop never waits on SQLite);
        inline when the node is used by a command, without a thread."""
        if self.db_thread is None:
            return fn(*args, **kw)
        return await self.db_thread.run(fn, *args, **kw)
    _retention_day: Any = None  # the day the retention purge last ran (docs/gdpr.md)

    def apply_retention(self) -> None:
        """Erase named results past retention: when the node opens, then at most once a day."""
        if self.store is None or self.role != "school" or self._retention_day == _dt.date.today():
            return
        try:
            report = self.store.apply_retention(self.store.node)
        except (UserError, sqlite3.Error) as exc:  # a busy or damaged file: said, and tried again next round
            log.warning("retention: the purge of named results past retention did not run (%s); retrying later", exc)
            return
        self._retention_day = _dt.date.today()
        if not report.empty:
            log.info("retention: erased the named results of %s (%s pupils' results, %s pupil records)",
                     ", ".join(report.campaigns) or "no campaign", report.results, report.pupils)

    def close(self) -> None:
        if self.db_thread is not None:
            self.db_thread.close()  # the running job ends first; then the connections are closed here
            self.db_thread = None
            self.federation.run = inline
        self.fed.close()
        if self.store is not None:
            self.store.close()

    @property
    def node_id(self) -> str:
        return self.identity.node_id

    # -- enrollment ------------------------------------------------------------------

    def create_invitation(self, uai: str, addresses: list[str], *, ttl: int = DEFAULT_TTL,
                          name: str | None = None, school_address: str | None = None,
                          member: str = "school", town: str | None = None) -> Invitation:
        """An invitation for one school (or, with member="district", for a district below this académie);
        `school_address`, if the member's node is reachable from here, lets this node open sessions to it
        too (see `sync_children`). What the member may send follows from `member`: a school's release, or
        a district's aggregate, never the other."""
        if member not in MEMBER_ROLES:
            raise UserError(said("msg.node.invite_member", member=str(member)))
        uai = checked_uai(uai)
        now = self._clock()
        for _ in range(64):  # the short code's slot must name this invitation alone (docs/protocol.md, "Short join codes")
            secret = os.urandom(32)
            slot = code_slot(secret)
            if not self.fed.slot_taken(slot, now - SLOT_MEMORY):
                break
        else:
            slot = None  # the slots are all taken (a district never makes thousands in a year): long text only
        inv = Invitation.create(self.identity, uai=uai, addresses=addresses, now=now, secret=secret, ttl=ttl)
        self.fed.add_invitation(inv.id.hex(), uai, inv.secret.hex(), inv.expires_at, name=name,
                                address=school_address, member=member, town=town, code_slot=slot)
        self.fed.log_event("invited", f"invitation {inv.id.hex()[:8]} for {uai}", invitation=inv.id.hex()[:8], uai=uai)
        return inv

    async def join(self, text: str, uai: str, district: str | None = None, *, again: bool = False) -> SessionReport:
        """Enrol with a district from its invitation (the long text, or the short code and the district's
        address); the first sync runs in the same session. A mistyped code is refused before any traffic.

        `again`: this node has joined before, and its district changed its keys while this node could not hear
        of it (the overlap ran out, or the old key was dropped at once): enrol with a new invitation, and stop
        trusting the old district key once the new one has answered."""
        addresses: list[str] = []
        before = await self.run(self.federation.upstream)
        if looks_like_code(text):
            code = checked_code(text)
            url = district_url(district) if district and district.strip() else await self._find_district()
            if before is not None and not again:
                raise self._already_joined()
            inv = await fetch_invitation(url, code)
            addresses.append(url)
        else:
            try:
                inv = Invitation.parse(text)
            except LocalProtocolError as exc:
                raise UserError(words(exc.message, "joincode.long_malformed")) from None
            if district and district.strip():  # given by hand: the district moved since it wrote the invitation
                addresses.append(district_url(district))
        # Checked here too (the protocol checks them again), so the head teacher reads them in French.
        if inv.uai != uai:
            raise UserError(words(f"this invitation is for school {inv.uai}, but this node is school {uai}: ask your "
                                  f"district for an invitation for {uai}", "joincode.other_school",
                                  invited=inv.uai, uai=uai))
        now = self._clock()
        if now > inv.expires_at:
            raise UserError(words(expired_message(inv, now), "joincode.expired_here", expires=utc(inv.expires_at),
                                  now=utc(now), issued=utc(inv.issued_at) if inv.issued_at else "?"))
        if before is not None and not again:
            raise self._already_joined()
        if before is not None and before["key"] != inv.issuer_signing_key.hex():
            return await self._rejoin(inv, addresses + [a for a in inv.addresses if a not in addresses], before, uai)
        if before is not None:  # --again with the key already pinned: a join would only fail (and lose the pin)
            raise Conflict(words("this node already knows this district by the key this invitation names: there is "
                                 "nothing to join again; run `preau sync`, and if it fails, read its message",
                                 "node.rejoin_same_key"))
        issuer = inv.issuer_signing_key.hex()
        return await self._enrol(inv, uai, addresses + [a for a in inv.addresses if a not in addresses], None,
                                 pin=self.federation.pin_upstream, undo=lambda: self.fed.forget_peer(issuer), again=False)

    async def _rejoin(self, inv: Invitation, addresses: list[str], before: dict, uai: str) -> SessionReport:
        """`join --again`: the district still knows this node, under the same key, but this node pins a district
        key that the district dropped. The new invitation, handed over by the same trusted channel as the first,
        names the district's new key: pin it once it has proved it in the handshake, trust the old one no more,
        and sync as usual. The invitation is presented as in a first join, so the district marks it used (nobody
        else can enrol with it afterwards) when it admits this node. A failure before that puts the old pin back:
        nothing changes. Once admitted, the new pin stays whatever happens to the rest of the session (the
        district has used the invitation up: going back to the dropped key would leave this node with neither)."""
        new = PublicIdentity(inv.issuer_signing_key, inv.issuer_static_key)

        def repin(peer: PublicIdentity, url: str) -> None:
            self.federation.pin_upstream(peer, url, name=before["name"])
            self.fed.revoke_peer(before["key"])

        def undo() -> None:
            self.fed.forget_peer(new.signing_key.hex())
            self.fed.add_peer(before["key"], node_id=before["node_id"], role=before["role"], uai=before["uai"],
                              name=before["name"], address=before["address"], static_key=before["static_key"],
                              town=before["town"])

        return await self._enrol(inv, uai, addresses, new, pin=repin, undo=undo, again=True)

    async def _enrol(self, inv: Invitation, uai: str, addresses: list[str], peer: PublicIdentity | None, *,
                     pin: Callable[[PublicIdentity, str], None], undo: Callable[[], None], again: bool) -> SessionReport:
        """One enrolment session at each address in turn until one answers. `pin(district, url)` as soon as the
        district has proved its key and admitted this node (so that this very session offers it our documents);
        before that, a refusal or an error runs `undo` (nothing changes); after it, the pin stays whatever
        happens to the rest of the session: the district has used the invitation up, and another address would
        present it again."""
        admitted = False

        def pin_at(url: str) -> Callable[[PublicIdentity], None]:
            def established(district: PublicIdentity) -> None:
                nonlocal admitted
                pin(district, url)
                admitted = True
            return established

        last: Exception | None = None
        for address in addresses:
            try:
                report = await self._session(address, peer, join=inv, uai=uai, on_established=pin_at(address))
            except PeerUnreachable as exc:
                if admitted:
                    raise self._unfinished(exc.words, again=again) from None
                last = exc
                continue
            except BaseException:
                if not admitted:
                    await self.run(undo)
                raise
            if report.error and admitted:
                raise self._unfinished(refusal_words(report.error_code, report.error), again=again)
            if report.error:
                await self.run(undo)  # not enrolled after all
                raise UserError(words(f"the district refused to enrol this node: {report.error}",
                                      "node.enrol_refused", detail=refusal_words(report.error_code, report.error)))
            return report
        raise last or UserError(said("msg.node.invite_no_address"))

    @staticmethod
    def _unfinished(detail: Any, *, again: bool) -> UserError:
        """The district admitted this node, then the rest of that first session failed: nothing to join again."""
        if again:
            return UserError(words(f"this node has joined its district again, but the first sync did not finish "
                                   f"({detail}): run `preau sync`", "node.rejoined_sync_unfinished", detail=detail))
        return UserError(words(f"this node has joined its district, but the first sync did not finish ({detail}): "
                               "run `preau sync`", "node.joined_sync_unfinished", detail=detail))

    @staticmethod
    def _already_joined() -> Conflict:
        return Conflict(words("this node has already joined a district; it cannot join a second one. If it is the "
                              "same district, which changed its keys while this node could not sync (it asked you "
                              "for a new invitation), run the same command with --again", "node.already_joined_again"))

    mdns_interfaces: list[str] | None = None  # where to look for a district on the LAN (None: every interface)
    mdns_timeout: float = 3.0  # how long to listen for it

    async def _find_district(self) -> str:
        """The one district announcing itself on the LAN (mDNS), for a short code typed without an address."""
        from preau.node.federation.mdns import MdnsError, find_districts

        try:
            found = await find_districts(interfaces=self.mdns_interfaces, timeout=self.mdns_timeout)
        except (MdnsError, OSError):
            found = []
        if len(found) == 1:
            return found[0]
        if not found:
            raise UserError(words("no district answers on this network (mDNS): give its address with the code "
                                  "(--district ADDRESS)", "joincode.not_found"))
        raise UserError(words(f"several districts answer on this network ({', '.join(found)}): give yours with "
                              "--district ADDRESS", "joincode.several", found=", ".join(found)))

    # -- sync with the upstream peer ---------------------------------------------------

    async def _session(self, url: str, peer: PublicIdentity | None, **kw: Any) -> SessionReport:
        chain = await self.run(pending_rotations, self.fed)
        return await open_session(self.federation, url, peer, self.limits,
                                  rotation=[bytes.fromhex(st) for st in chain] or None, **kw)

    def _identity_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = (self.data_dir / IDENTITY_FILE).stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def reload_identity(self) -> bool:
        """Pick up keys rotated by another process (`preau keys rotate` while the service runs); True if changed.

        The file is read again only when it changed (inode, time or size), not for every session."""
        stamp = self._identity_stamp()
        if stamp is not None and stamp == self._identity_seen:
            return False
        current = load_identity(self.data_dir)
        self._identity_seen = stamp
        if current.seed == self.identity.seed:
            return False
        self.identity = current
        self.federation.identity = current
        log.info("this node's keys were rotated; now %s", current.node_id)
        return True

    async def sync_upstream(self) -> SessionReport:
        self.reload_identity()
        up, presented = await self.run(self._before_upstream)
        peer = PublicIdentity(bytes.fromhex(up["key"]), bytes.fromhex(up["static_key"]))
        self.status.last_attempt = self._clock()
        try:
            report = await self._session(up["address"], peer)
        except PeerUnreachable as exc:
            await self.run(self._failed, up["key"], str(exc), exc.code)
            raise
        if report.error:
            await self.run(self._failed, up["key"], report.error, report.error_code)
            raise UserError(words(f"sync with the district failed: {report.error}", "codes.sync_failed",
                                  detail=refusal_words(report.error_code, report.error)))
        await self.run(self._after_upstream, up["key"], presented)
        self.status.last_success = self._clock()
        self.status.failures = 0
        self.status.last_error = self.status.last_error_code = None
        return report

    def _before_upstream(self) -> tuple[dict, Any]:
        up = self.federation.upstream()
        if up is None:
            raise UserError(words("this node has not joined a district yet: paste the district's invitation first "
                                  "(preau join)", "node.not_joined"))
        self.federation.relay_parent_campaigns()  # a district passes its parent's campaigns down
        self.federation.refresh_aggregates()  # a district reports its merged counts, never a school's own
        return up, self.fed.get_meta(PENDING_ROTATION)

    def _after_upstream(self, key: str, presented: Any) -> None:
        up = self.federation.upstream()  # the node above may have told us of its new key in this session
        self.fed.touch_peer(up["key"] if up is not None else key)
        if self.fed.get_meta(RESTORED):
            self.fed.set_meta(RESTORED, None)  # restored: this sync took back what the node above held
        if presented and self.fed.get_meta(PENDING_ROTATION) == presented:
            self.fed.set_meta(PENDING_ROTATION, None)  # the node above has moved its pin

    async def sync_children(self) -> list[SessionReport]:
        """Open a session to each enrolled school whose node has an address (the district pulls).

        Schools behind a router sync by themselves; a school whose box the
        district can reach also gets its campaigns and receipts, and gives its
        releases, when the district calls. A failure is noted on that school
        (`preau status`) and does not stop the others.
        """
        reports = []
        for child in await self.run(self.federation.children):
            if child["status"] != "active" or not child["address"] or not child["static_key"]:
                continue
            peer = PublicIdentity(bytes.fromhex(child["key"]), bytes.fromhex(child["static_key"]))
            try:
                report = await open_session(self.federation, child["address"], peer, self.limits)
            except PeerUnreachable as exc:
                await self.run(self.fed.touch_peer, child["key"], error=str(exc), error_code=exc.code)
                continue
            await self.run(self.fed.touch_peer, child["key"], error=report.error, error_code=report.error_code)
            reports.append(report)
        return reports

    def _failed(self, key: str, error: str, code: str | None) -> None:
        self.status.failures += 1
        self.status.last_error, self.status.last_error_code = error, code
        self.fed.touch_peer(key, error=error, error_code=code)

    def news(self) -> int:
        """A number that grows whenever this node stores a document it may have to pass upstream.

        Read by the sync loop between rounds, so a release approved by another
        process (`preau release --approve`, the web UI of another worker)
        leaves within `news_poll` seconds instead of at the next scheduled sync.
        """
        return self.fed.db.execute(
            "SELECT count(*) FROM releases JOIN documents USING (doc_id) "
            "WHERE from_peer IS NULL AND kind IN ('release', 'aggregate')").fetchone()[0]

    async def sync_loop(self, rng: random.Random | None = None, *, news_poll: float = 2.0) -> None:
        """Sync whenever something waits to be sent or on schedule; back off while the upstream is unreachable.

        After n failures in a row the wait is drawn uniformly from 0 to
        min(backoff_max, 2**n seconds) (full jitter), so boxes that lost the
        district together do not come back together; news does not cut a
        backoff short, or a school with a new release would hammer a district
        that is down.
        """
        seen = await self.run(self.news)
        while True:
            try:
                await self.run(self.apply_retention)
                if await self.run(self.federation.upstream) is not None:
                    seen = await self.run(self.news)
                    try:
                        report = await self.sync_upstream()
                    except UserError as exc:
                        log.warning("upstream sync failed (%s failure%s in a row): %s", self.status.failures,
                                    "" if self.status.failures == 1 else "s", exc)
                    else:
                        log.info("synced with %s: sent %d bytes, received %d bytes", report.peer, report.bytes_sent,
                                 report.bytes_received)
                else:
                    self.status.failures = 0  # no node above: only a fault of this round counted (space freed)
                if self.role == "district":
                    await self.run(fpools.close_overdue_rounds, self.federation, self.pool_round_timeout)
                    await self.sync_children()
            except Exception as exc:
                # A full disk (or a damaged file) is a failed round, retried with the backoff once space is
                # freed: it used to end the loop, so the node stopped syncing until someone restarted it.
                fault = faults.classify(exc, self.data_dir)
                if fault is None:
                    raise
                self.status.failures += 1
                self.status.last_error, self.status.last_error_code = str(fault), getattr(fault, "code", None)
                log.warning("sync round failed (%s failure%s in a row): %s", self.status.failures,
                            "" if self.status.failures == 1 else "s", fault)
            delay = self.sync_interval
            if await self.run(fpools.moving, self.federation):  # a pool under way: its rounds move at each sync
                delay = min(delay, fpools.MOVING_SYNC_INTERVAL)
            if self.status.failures:
                delay = max(0.2, self.backoff.delay(self.status.failures, rng))
            self.status.next_attempt = self._clock() + int(delay)
            self.wakeup.clear()
            deadline = time.monotonic() + delay
            while (left := deadline - time.monotonic()) > 0:
                try:
                    await within(self.wakeup.wait(), min(left, news_poll))
                    break
                except asyncio.TimeoutError:
                    pass
                if not self.status.failures and await self.run(self.news) != seen:
                    break

    # -- health ----------------------------------------------------------------------------

    loop_task: "asyncio.Task | None" = None  # set by the app that runs sync_loop

    def oldest_unacknowledged(self) -> int | None:
        """When the oldest release still waiting for the node above's receipt was approved (its latest number
        per document: a release replaced by a newer one before it left is not waiting)."""
        return self.fed.db.execute(
            "SELECT min(t.sent_at) FROM transparency t WHERE t.receipt IS NULL "
            "AND t.number = (SELECT max(number) FROM transparency t2 WHERE t2.doc_id = t.doc_id)").fetchone()[0]

    def health(self, *, max_sync_age: int | None = None, max_unsent_age: int | None = None) -> dict[str, Any]:
        """The sync loop and the upstream link, for /healthz: ok only while the loop runs (and, when asked,
        the last successful sync and the oldest unacknowledged release are recent enough)."""
        now = self._clock()
        task = self.loop_task
        if task is None:
            loop, error = "not started", None
        elif not task.done():
            loop, error = "running", None
        elif task.cancelled():
            loop, error = "stopped", None
        else:
            loop, error = ("crashed", repr(task.exception())) if task.exception() else ("stopped", None)
        up = self.federation.upstream()
        last = max([t for t in (self.status.last_success, up["last_contact"] if up else None) if t], default=None)
        oldest = self.oldest_unacknowledged() if up else None
        problems = [] if loop == "running" else [f"the sync loop is {loop}" + (f": {error}" if error else "")]
        if up and max_sync_age is not None and (last is None or now - last > max_sync_age):
            problems.append("no successful sync with the node above " + (
                "yet" if last is None else f"for {now - last} s (more than {max_sync_age})"))
        if oldest is not None and max_unsent_age is not None and now - oldest > max_unsent_age:
            problems.append(f"a release has waited {now - oldest} s for the node above's receipt "
                            f"(more than {max_unsent_age})")
        return {"ok": not problems, "problems": problems, "role": self.role, "node_id": self.node_id,
                "sync": {"loop": loop, "upstream": up is not None, "last_success": last,
                         "last_success_age": None if last is None else now - last,
                         "failures": self.status.failures, "last_error": self.status.last_error,
                         "oldest_unacknowledged_age": None if oldest is None else now - oldest}}

    # -- keys ------------------------------------------------------------------------------

    def rotate_keys(self, overlap_days: int = DEFAULT_OVERLAP_DAYS) -> Identity:
        """Move to a new key signed by the old one.

        The node above learns it at the next sync (the chain of statements it has not heard of rides in the
        handshake). The nodes below still pin the old key: for `overlap_days` this node keeps it and answers
        on it, telling each of them of the rotation (see docs/protocol.md, "Rotation and revocation"). An
        overlap of 0 drops every old key at once (a compromise: the members enrol again)."""
        self.reload_identity()
        if overlap_days < 0:
            raise UserError(said("msg.node.overlap"))
        new, statement = self.identity.rotate(os.urandom(32))
        path = self.data_dir / IDENTITY_FILE
        now = self._clock()
        with self.fed.transaction():
            chain = pending_rotations(self.fed) + [statement.hex()]
            self.fed.set_meta(PENDING_ROTATION, chain)
            retired = [r for r in self.federation.retired_records() if r["until"] > now] if overlap_days else []
            if overlap_days:
                retired.append({"seed": self.identity.seed.hex(), "statement": statement.hex(),
                                "until": now + overlap_days * 86400})
            self.fed.set_meta(RETIRED_KEYS, retired or None)
            fpools.rekey_pools(self.federation, self.identity, new)  # a pool runs to its end under its own key
            keyfiles.write_key_file(path, new.seed)
        self.identity = new
        self.federation.identity = new
        self.fed.log_event("key_rotated", f"this node is now {new.node_id}", whose="self", new=new.node_id)
        return new


def limits_from(settings: Any) -> Limits:
    return Limits(
        max_message_bytes=settings.max_message_bytes,
        max_docs_per_session=settings.max_docs_per_session,
        idle_timeout=float(settings.session_idle_timeout),
        sessions_per_minute=settings.sync_rate_limit,
    )


def open_node(settings: Any, **kw: Any) -> Node:
    """The node in a data folder; a school's node also opens its encrypted store, unattended.

    Campaign documents that arrive by sync go straight into the store (as the
    node, with nobody logged in), so teachers can enter results for them.
    """
    testhooks.apply_at_start()
    data = pathlib.Path(settings.data_dir)
    check_private_files(data)
    store = None
    if (data / DB_NAME).exists():
        store = Store.open(data, cost=ARGON2[settings.argon2_profile])
        if settings.role == "school":
            kw.setdefault("on_campaign", lambda campaign: store.put_campaign(store.node, campaign))
    try:
        node = Node(
            data,
            role=settings.role,
            limits=limits_from(settings),
            backoff=Backoff(cap=float(settings.backoff_max)),
            sync_interval=float(settings.sync_interval),
            pool_round_timeout=float(settings.pool_round_timeout),
            academie=settings.academie,
            **kw,
        )
    except BaseException:
        if store is not None:
            store.close()
        raise
    node.store = store
    if store is not None and settings.role == "district":
        node.federation.display_name = (store.school()["name"] or "")[:200] or None  # schools show it, not a fingerprint
    node.apply_retention()
    if settings.parent_url:
        node.federation.move_upstream(settings.parent_url)
    return node
