"""The egress policy's verdicts, and the shared transport enforcing them at connect time."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from devmesh.adapters.egress import EgressDenied, EgressPolicy, EgressTransport, origin_of

EMBEDDED = EgressPolicy()
PRODUCTION = EgressPolicy(allow_loopback=False, allow_private=False)


def verdict(policy: EgressPolicy, address: str, port: int = 443) -> str | None:
    return policy.refusal(ipaddress.ip_address(address), port)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
        "fe80::1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
    ],
)
def test_link_local_and_metadata_addresses_are_refused_even_by_the_embedded_default(
    address: str,
) -> None:
    assert "link-local or cloud metadata" in (verdict(EMBEDDED, address) or "")


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "224.0.0.1", "240.0.0.1"])
def test_addresses_that_are_not_one_unicast_host_are_always_refused(address: str) -> None:
    assert verdict(EMBEDDED, address) is not None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.5", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),
        ("fd12::1", "private"),
    ],
)
def test_loopback_and_private_ranges_follow_the_settings(address: str, reason: str) -> None:
    assert verdict(EMBEDDED, address) is None
    assert reason in (verdict(PRODUCTION, address) or "")


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed_by_both(address: str) -> None:
    assert verdict(PRODUCTION, address) is None


def test_an_explicitly_allowed_network_wins_over_metadata_and_a_denied_one_over_public() -> None:
    policy = EgressPolicy(
        allow_networks=(ipaddress.ip_network("169.254.169.254/32"),),
        deny_networks=(ipaddress.ip_network("93.184.0.0/16"),),
    )
    assert verdict(policy, "169.254.169.254") is None
    assert "denied network" in (verdict(policy, "93.184.215.14") or "")


def test_the_services_own_port_is_refused_on_loopback_but_other_ports_are_not() -> None:
    policy = EgressPolicy.own(host="127.0.0.1", port=8081, allow_loopback=True, allow_private=True)
    assert "service itself" in (verdict(policy, "127.0.0.1", 8081) or "")
    assert verdict(policy, "127.0.0.1", 8010) is None


def test_origins_name_scheme_host_and_port_with_the_default_port_written() -> None:
    assert origin_of("https://CI.example.com/x") == "https://ci.example.com:443"
    assert origin_of("http://[::1]:8010/") == "http://[::1]:8010"


@pytest.mark.anyio
async def test_the_transport_refuses_a_name_whose_address_is_refused_without_connecting() -> None:
    transport = EgressTransport(PRODUCTION, limits=httpx.Limits())
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(EgressDenied, match="loopback"):
            await http.get("http://localhost:9/")


@pytest.mark.anyio
async def test_the_transport_reports_a_name_that_does_not_resolve_as_a_connect_error() -> None:
    transport = EgressTransport(EMBEDDED, limits=httpx.Limits())
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("http://no-such-host.invalid/")
