"""Optional mDNS advertisement, so teachers can type http://preau.local:8080 instead of an IP address.

Off by default (`mdns = true` turns it on). It uses the `zeroconf` library,
an optional extra (`pip install 'preau[mdns]'`) imported only when the
setting is on, so a node that does not want it never loads it. What is
advertised is planned by a pure function (`plan`), tested without a network;
`Advertiser` only hands that plan to zeroconf.

A school box usually has one network; a node listening on 127.0.0.1 cannot be
reached by anyone else, so advertising it would only mislead: `plan` refuses.
"""
from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable

from preau.node.errors import EXIT_CONFIG, UserError, said

log = logging.getLogger("preau.mdns")

SERVICE_TYPE = "_http._tcp.local."
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MISSING = (
    "mdns = true needs the optional zeroconf library, which is not installed: "
    "run `pip install 'preau[mdns]'` in Préau's environment, or set mdns = false"
)


class MdnsError(UserError):
    code = "mdns"
    exit_code = EXIT_CONFIG


@dataclass(frozen=True, slots=True)
class Advertisement:
    """What the node announces: a host name (NAME.local) and an HTTP service pointing at it."""

    host_name: str  # "preau.local."
    instance: str  # "Préau 0751234J._http._tcp.local."
    port: int
    addresses: tuple[str, ...]
    properties: tuple[tuple[str, str], ...]

    @property
    def url(self) -> str:
        host = self.host_name.rstrip(".")
        return f"http://{host}" + ("" if self.port == 80 else f":{self.port}")


def usable_addresses(host: str, interface_addresses: Iterable[str]) -> tuple[str, ...]:
    """The addresses to announce for a server bound to `host`.

    Bound to every interface (0.0.0.0 or ::): the machine's addresses except
    loopback and link-local ones. Bound to one address: that address, unless
    it is loopback (nobody else could connect).
    """
    def fit(a: str) -> bool:
        ip = ipaddress.ip_address(a.split("%")[0])
        return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)

    if host in ("0.0.0.0", "::", ""):
        seen: dict[str, None] = {}
        for a in interface_addresses:
            try:
                if fit(a):
                    seen.setdefault(a.split("%")[0], None)
            except ValueError:
                continue
        return tuple(seen)
    try:
        return (host,) if fit(host) else ()
    except ValueError:  # a host name, not an address: announce what it resolves to is not our job
        return ()


def plan(*, name: str, port: int, host: str, role: str, uai: str | None,
         interface_addresses: Iterable[str]) -> Advertisement:
    """What to advertise, or an MdnsError saying why nothing sensible can be."""
    label = name.strip().lower()
    if label.endswith(".local"):
        label = label[: -len(".local")]
    if not _LABEL.match(label):
        raise MdnsError(
            said("msg.mdns.bad_name", name=name)
        )
    addresses = usable_addresses(host, interface_addresses)
    if not addresses:
        raise MdnsError(
            said("msg.mdns.unreachable_host", host=host)
        )
    who = f"Préau {uai}" if uai else f"Préau {label}"
    props = (("path", "/"), ("role", role)) + ((("uai", uai),) if uai else ())
    return Advertisement(f"{label}.local.", f"{who}.{SERVICE_TYPE}", port, addresses, props)


def zeroconf_module() -> Any:
    """Import zeroconf on demand; a clear MdnsError when it is not installed."""
    try:
        import zeroconf
        import zeroconf.asyncio  # noqa: F401 - the part Advertiser uses
    except ImportError:
        raise MdnsError(said("msg.mdns.missing")) from None
    return zeroconf


def interface_addresses() -> list[str]:
    """Every address of this machine's interfaces (ifaddr comes with zeroconf)."""
    import ifaddr

    out = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            out.append(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
    return out


class Advertiser:
    """Registers an Advertisement with zeroconf while the node runs; never stops the node if it fails."""

    def __init__(self, ad: Advertisement, *, interfaces: list[str] | None = None):
        self.ad = ad
        self.interfaces = interfaces or list(ad.addresses)
        self._zc: Any = None
        self._info: Any = None

    def service_info(self) -> Any:
        zc = zeroconf_module()
        return zc.ServiceInfo(
            SERVICE_TYPE, self.ad.instance, port=self.ad.port, properties=dict(self.ad.properties),
            server=self.ad.host_name, parsed_addresses=list(self.ad.addresses),
        )

    async def start(self) -> bool:
        zc = zeroconf_module()
        from zeroconf.asyncio import AsyncZeroconf

        self._info = self.service_info()
        try:
            self._zc = AsyncZeroconf(interfaces=self.interfaces)
            await self._zc.async_register_service(self._info, allow_name_change=True)
        except zc.NonUniqueNameException:
            log.warning("another device already answers to %s; set mdns_name to another name", self.ad.host_name)
            await self.stop()
            return False
        except OSError as exc:
            log.warning("mDNS advertisement failed (%s); the node still answers at its address", exc)
            await self.stop()
            return False
        log.info("advertised on the local network as %s", self.ad.url)
        return True

    async def stop(self) -> None:
        if self._zc is None:
            return
        try:
            if self._info is not None:
                await self._zc.async_unregister_service(self._info)
        except Exception as exc:  # pragma: no cover - shutting down anyway
            log.warning("mDNS: could not withdraw the announcement: %s", exc)
        finally:
            await self._zc.async_close()
            self._zc = None


def district_urls(services: Iterable[tuple[dict, list[str], int]]) -> list[str]:
    """The districts among services heard on the LAN ((properties, addresses, port) each), as base URLs.

    Only services announcing role=district count; an IPv4 address is preferred (what people type)."""
    urls: list[str] = []
    for props, addresses, port in services:
        role = props.get(b"role") or props.get("role")
        if role not in (b"district", "district") or not addresses or not port:
            continue
        v4 = [a for a in addresses if ":" not in a]
        host = v4[0] if v4 else f"[{addresses[0]}]"
        url = f"http://{host}" + ("" if port == 80 else f":{port}")
        if url not in urls:
            urls.append(url)
    return urls


async def find_districts(*, timeout: float = 3.0, interfaces: list[str] | None = None) -> list[str]:
    """Listen `timeout` seconds for districts announcing themselves on the LAN (a district with mdns = true);
    their base URLs. MdnsError when zeroconf is not installed."""
    import asyncio

    zc = zeroconf_module()
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

    heard: set[str] = set()

    def on_change(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        if state_change is zc.ServiceStateChange.Added:
            heard.add(name)

    kwargs = {"interfaces": interfaces, "ip_version": zc.IPVersion.V4Only} if interfaces else {}
    azc = AsyncZeroconf(**kwargs)
    browser = AsyncServiceBrowser(azc.zeroconf, SERVICE_TYPE, handlers=[on_change])
    try:
        await asyncio.sleep(timeout)
        services = []
        for name in sorted(heard):
            info = await azc.async_get_service_info(SERVICE_TYPE, name, timeout=1000)
            if info is not None:
                services.append((info.properties or {}, info.parsed_addresses(), info.port))
        return district_urls(services)
    finally:
        await browser.async_cancel()
        await azc.async_close()


def advertiser_for(settings: Any, uai: str | None) -> Advertiser | None:
    """The Advertiser `preau serve` runs, None when mdns is off; an MdnsError when it cannot work."""
    if not settings.mdns:
        return None
    zeroconf_module()
    ad = plan(name=settings.mdns_name, port=settings.port, host=settings.host, role=settings.role, uai=uai,
              interface_addresses=interface_addresses())
    return Advertiser(ad)
