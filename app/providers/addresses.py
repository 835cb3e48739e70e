"""Which upstream hosts and addresses Modelgate may call: one parser and one decision, used when a
model URL is saved, before each call (`outbound.check_url`) and for every address a host name resolves
to at connect time (`outbound.GuardedResolver`).

Parsing reads a host the way a resolver would, so that no spelling of a private address passes:
- every inet_aton form is an IPv4 address: `127.1`, `0x7f000001`, `2130706433`, `0177.0.0.1`, `0`;
  a host whose last label is a number must be one of them (no top-level domain is numeric);
- one trailing dot is dropped (`localhost.` is `localhost`), and host names must be ASCII (an IDN is
  written in its `xn--` form): no Unicode digit or dot can turn into an address after our check;
- an IPv6 literal only comes in brackets, and never with a zone id (`%eth0`: scoped addresses are
  link-local or site-local anyway).

The decision (`is_public`) allows public unicast addresses only. IPv6 transition addresses are judged
by the IPv4 address they lead to where one is fixed by the address itself: IPv4-mapped
(`::ffff:0:0/96`), NAT64 well-known prefix (`64:ff9b::/96`) and 6to4 (`2002::/16`). The others are
refused whole: IPv4-compatible (`::/96`, deprecated), Teredo (`2001::/32`, its client address is
obfuscated and its relay is anyone's), local-use NAT64 (`64:ff9b:1::/48`, where the IPv4 part sits
depends on the operator's prefix length).
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

Address = IPv4Address | IPv6Address

# IANA's special-purpose IPv4 blocks: nothing in them is a public unicast host. The cloud metadata
# addresses (169.254.169.254, 169.254.170.2, 100.100.100.200) are inside them.
_IPV4_REFUSED = tuple(
    ip_network(block)
    for block in (
        "0.0.0.0/8",  # this network
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT, often internal
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, metadata services
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
# IPv6: only global unicast (2000::/3) is public, minus the special blocks inside it. Loopback,
# unspecified, ULA (fc00::/7, where AWS's fd00:ec2::254 lives), link-local, multicast, IPv4-compatible
# and local-use NAT64 addresses all lie outside 2000::/3.
_IPV6_GLOBAL_UNICAST = ip_network("2000::/3")
_IPV6_REFUSED = tuple(
    ip_network(block)
    for block in (
        "2001::/23",  # IETF protocol assignments: Teredo (2001::/32), benchmarking, ORCHID
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
_IPV4_MAPPED = ip_network("::ffff:0:0/96")
_NAT64_WELL_KNOWN = ip_network("64:ff9b::/96")

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC = re.compile(r"[0-9]+|0x[0-9a-f]*")  # a last label like this makes the host an address
_NUMBER = re.compile(r"0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*")  # hex, octal or decimal
# Names that only ever mean a host on this machine or this network (RFC 6761, 6762, 8375, ICANN's
# .internal), refused without asking a resolver.
_PRIVATE_NAME_SUFFIXES = ("localhost", "localdomain", "local", "internal", "home.arpa")


class InvalidHost(ValueError):
    """A host that is neither a valid name nor an address in any form a resolver reads."""


def parse_host(host: str, *, bracketed: bool) -> Address | str:
    """The address a URL's host (`urlsplit(url).hostname`, lower-cased, without brackets) denotes, or
    its name without the trailing dot. `bracketed`: the URL wrote the host in brackets."""
    if bracketed:
        if "%" in host:
            raise InvalidHost("an IPv6 zone id is not allowed")
        try:
            return IPv6Address(host)
        except ValueError:
            raise InvalidHost("not an IPv6 address") from None
    name = host.lower().removesuffix(".")
    labels = name.split(".")
    if not name.isascii() or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidHost("not a host name (write an IDN in its xn-- form)")
    if _NUMERIC.fullmatch(labels[-1]):
        return _inet_aton(labels)
    return name


def _inet_aton(labels: list[str]) -> IPv4Address:
    """The IPv4 address of a numeric host as inet_aton reads it: up to four parts, each decimal, octal
    (leading 0) or hex (0x); the last part fills the bytes the others leave."""
    if len(labels) > 4 or not all(_NUMBER.fullmatch(label) for label in labels):
        raise InvalidHost("not an IPv4 address")
    *leading, last = (_number(label) for label in labels)
    if any(part > 255 for part in leading) or last >= 1 << (8 * (4 - len(leading))):
        raise InvalidHost("not an IPv4 address")
    value = last
    for index, part in enumerate(leading):
        value |= part << (8 * (3 - index))
    return IPv4Address(value)


def _number(label: str) -> int:
    if label.startswith("0x"):
        return int(label[2:] or "0", 16)
    return int(label, 8 if label.startswith("0") else 10)


def is_public(address: Address) -> bool:
    """Whether `address` is a public unicast address (transition addresses by their IPv4 end)."""
    if isinstance(address, IPv4Address):
        return not any(address in block for block in _IPV4_REFUSED)
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return is_public(embedded)
    return address in _IPV6_GLOBAL_UNICAST and not any(address in block for block in _IPV6_REFUSED)


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address in _IPV4_MAPPED or address in _NAT64_WELL_KNOWN:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour  # 2002::/16, else None


def is_private_name(name: str) -> bool:
    """Whether a host name (as `parse_host` returns it) names this machine or a private network."""
    return any(name == suffix or name.endswith("." + suffix) for suffix in _PRIVATE_NAME_SUFFIXES)


def is_public_resolved(address: str) -> bool:
    """Whether an address a resolver returned (canonical text, maybe with a zone id) may be called."""
    try:
        parsed = ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return "%" not in address and is_public(parsed)
