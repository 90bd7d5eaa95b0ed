"""The egress policy: which addresses an outbound call may reach, checked as the socket opens.

Every outbound request goes through the shared ``httpx.AsyncClient`` the composition root
builds (``HttpClients``) on ``AiohttpEgressTransport`` (``aio_transport``), whose connector
resolves through ``EgressPolicy.permitted``; ``EgressTransport`` here is httpx's own
transport, whose connection pool opens its sockets through ``_EgressBackend``. Both resolve
the host themselves, check every address against the policy and connect to a checked
address, so a name that resolves to a public address when a tool is registered and to
169.254.169.254 at call time (DNS rebinding) is refused all the same. TLS is unaffected:
httpcore and aiohttp pass the origin's host name, not the address, as the SNI name and for
certificate checks.

Classes of destination, first match wins:

* the service's own port on this host: refused (calling ourselves with a tenant's
  credentials would get round every check of ours);
* ``allow_networks``: allowed, whatever else they are (e.g. a metadata address
  you really mean to reach);
* ``deny_networks``: refused;
* link-local (169.254/16, fe80::/10) and cloud metadata addresses: refused;
* unspecified, multicast and reserved addresses: refused (0.0.0.0 reaches this host);
* loopback: ``allow_loopback``; other non-global addresses (private ranges,
  100.64/10, fc00::/7): ``allow_private``; the rest of the internet: allowed.

An IPv6 address embedding an IPv4 one (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``,
6to4 ``2002::/16``) is judged as that IPv4 address. A name resolving to several
addresses is refused if any one of them is.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpcore
import httpx

from devmesh.domain.errors import AdapterError

__all__ = [
    "METADATA_HOSTS",
    "EgressDenied",
    "EgressPolicy",
    "EgressTransport",
    "IPAddress",
    "IPNetwork",
    "origin_of",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names of the instance metadata services, refused before any lookup: inside a cloud
# they resolve to a link-local address, and outside one they mean nothing good.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_METADATA_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, ...
        "169.254.170.2/32",  # AWS ECS task credentials
        "fd00:ec2::254/128",  # AWS IMDS over IPv6 (not link-local: a ULA)
        "fd00:ec2::23/128",  # AWS ECS over IPv6
        "100.100.100.200/32",  # Alibaba Cloud
        "168.63.129.16/32",  # Azure WireServer
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_RESOLVE_TIMEOUT_S = 5.0


class EgressDenied(AdapterError):
    """The egress policy refused the destination. Not retriable: the answer will not change."""

    code = "egress_denied"


def origin_of(url: str | httpx.URL) -> str:
    """``scheme://host:port`` with the port always written: what credentials are bound to."""
    return _origin(str(url))


# Every upstream request asks for its URL's origin (credentials go to the tool's
# origin only); the same few URLs come back, so each is parsed once. Bounded.
@functools.lru_cache(maxsize=4096)
def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    host = parsed.host.lower().rstrip(".")
    shown = f"[{host}]" if ":" in host else host
    return f"{parsed.scheme}://{shown}:{port}"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """Where outbound calls may go. The defaults are the embedded default's: a CI server on
    this machine or the local network is the common case there."""

    allow_loopback: bool = True
    allow_private: bool = True
    allow_networks: tuple[IPNetwork, ...] = ()
    deny_networks: tuple[IPNetwork, ...] = ()
    own_port: int | None = None
    own_addresses: frozenset[IPAddress] = field(default_factory=frozenset)

    def host_refusal(self, host: str) -> str | None:
        """Why a host *name* may not be used at all, before any lookup."""
        name = host.lower().rstrip(".")
        if name in METADATA_HOSTS:
            return f"{name} is a cloud metadata service"
        return None

    def refusal(self, address: IPAddress, port: int) -> str | None:
        """Why ``address`` may not be reached on ``port``, or ``None`` when it may."""
        if isinstance(address, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                return self.refusal(embedded, port)
        if port == self.own_port and (
            address.is_loopback or address.is_unspecified or address in self.own_addresses
        ):
            return f"{address} port {port} is this service itself"
        if any(address in network for network in self.allow_networks):
            return None
        if any(address in network for network in self.deny_networks):
            return f"{address} is in a denied network (egress.deny_networks)"
        if address.is_link_local or any(address in net for net in _METADATA_NETWORKS):
            return (
                f"{address} is a link-local or cloud metadata address "
                "(allow it explicitly in egress.allow_networks if you mean it)"
            )
        if address.is_loopback:  # before is_reserved, which ::1 is too
            return None if self.allow_loopback else f"{address} is loopback (egress.allow_loopback)"
        if address.is_unspecified or address.is_multicast or address.is_reserved:
            return f"{address} is not a unicast destination"
        if not address.is_global:
            return (
                None
                if self.allow_private
                else f"{address} is a private address (egress.allow_private)"
            )
        return None

    async def permitted(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` to connect to; ``EgressDenied`` if any is refused.

        Resolution failures come out as ``OSError`` (``socket.gaierror``).
        """
        if (reason := self.host_refusal(host)) is not None:
            raise EgressDenied(f"egress to {host} is not allowed: {reason}")
        addresses = await _resolve(host, port)
        for address in addresses:
            if (reason := self.refusal(address, port)) is not None:
                raise EgressDenied(f"egress to {host} is not allowed: {reason}")
        return [str(address) for address in addresses]

    async def check_url(self, url: str | httpx.URL) -> None:
        """Refuse a tool address up front, on its literal host and on what it resolves to now.

        A name that does not resolve yet is let through: the check at connect time
        still applies to whatever it resolves to later.
        """
        parsed = httpx.URL(str(url))
        port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
        try:
            async with asyncio.timeout(_RESOLVE_TIMEOUT_S):
                await self.permitted(parsed.host, port)
        except (OSError, TimeoutError):
            return

    @classmethod
    def own(
        cls,
        *,
        host: str,
        port: int,
        allow_loopback: bool,
        allow_private: bool,
        allow_networks: Iterable[IPNetwork] = (),
        deny_networks: Iterable[IPNetwork] = (),
    ) -> EgressPolicy:
        """A policy that also refuses this service's own ``host:port``."""
        return cls(
            allow_loopback=allow_loopback,
            allow_private=allow_private,
            allow_networks=tuple(allow_networks),
            deny_networks=tuple(deny_networks),
            own_port=port,
            own_addresses=_own_addresses(host),
        )


def _own_addresses(host: str) -> frozenset[IPAddress]:
    """The addresses the service listens on: its bind address, or this machine's names."""
    names = [host]
    try:
        if ipaddress.ip_address(host).is_unspecified:
            names = [socket.gethostname(), socket.getfqdn()]
    except ValueError:
        pass
    found: set[IPAddress] = set()
    for name in names:
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except OSError:
            continue
        found.update(ipaddress.ip_address(info[4][0]) for info in infos)
    return frozenset(found)


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    unique: dict[IPAddress, None] = {}
    for info in infos:
        # A scoped IPv6 address ("fe80::1%eth0") keeps its scope out of the check.
        unique.setdefault(ipaddress.ip_address(str(info[4][0]).partition("%")[0]), None)
    return list(unique)


class _EgressBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, opening only connections the policy permits."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._policy.permitted(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None, "a resolution yields at least one address"
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressDenied("egress through a unix socket is not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class EgressTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, with a connection pool that opens sockets through the policy.

    No proxy from the environment: a proxy would be the only address checked.
    ``verify=False`` skips TLS certificate checks (a tool instance's ``verify_tls``).
    """

    def __init__(self, policy: EgressPolicy, *, limits: httpx.Limits, verify: bool = True) -> None:
        super().__init__(limits=limits, trust_env=False, verify=verify)
        # httpx builds the same pool but offers no way to hand it a network backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_EgressBackend(policy),
        )
