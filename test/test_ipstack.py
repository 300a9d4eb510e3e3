"""The IPv4 stack end to end through QEMU's user networking (SLIRP).

apps/netstack obtains a DHCP lease from SLIRP, pings the gateway, resolves a
name through SLIRP's DNS forwarder, then serves UDP echo on port 7, which the
host reaches through hostfwd=udp. SLIRP forwards DNS to the host's resolver;
here that resolver has no internet and answers NXDOMAIN, so the lookup must
end cleanly in "not found" (a validated response: same id, same question) —
or, on a machine with working DNS, in an address. No -icount: a host peer
drives the guest (NOTES.md).
"""
import re
import socket

import pytest

from harness import build_image
from harness.rawnet import UserNet

GUEST_MAC = "52:54:00:12:34:56"


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_stats(text):
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", text)}


class Echo:
    def __init__(self, port):
        self.address = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(5)

    def roundtrip(self, payload):
        self.sock.sendto(payload, self.address)
        return self.sock.recvfrom(65536)[0]

    def stats(self):
        return parse_stats(self.roundtrip(b"STATS").decode())


@pytest.fixture
def netstack(machine):
    image = build_image("netstack")
    port = free_udp_port()
    m = machine(image, nic=UserNet(udpfwd=[(port, 7)]), mac=GUEST_MAC)
    m.start()
    m.expect(r"netstack: udp echo ready port 7", timeout=60)
    echo = Echo(port)
    yield m, echo
    echo.sock.close()


def test_dhcp_lease_ping_and_dns(netstack):
    m, _ = netstack
    text = m.serial_text()
    lease = re.search(r"netstack: lease (\S+)/(\d+) gateway (\S+) dns (\S+) server (\S+) lease_s (\d+)", text)
    assert lease, text
    assert lease.group(1) == "10.0.2.15"
    assert lease.group(2) == "24"
    assert lease.group(3) == "10.0.2.2"
    assert lease.group(4) == "10.0.2.3"
    assert int(lease.group(6)) > 0
    rtts = [int(x) for x in re.findall(r"netstack: ping 10\.0\.2\.2 seq \d+ rtt_us (\d+)", text)]
    assert len(rtts) == 5, text
    assert all(0 <= r < 2_000_000 for r in rtts)
    dns = re.search(r"netstack: dns example\.com (-> (\S+)|error (.*))\r?\n", text)
    assert dns, text
    if dns.group(3) is not None:
        # No upstream DNS: a clean NXDOMAIN (or no answer at all).
        assert dns.group(3).strip() in ("not found", "timed out"), dns.group(0)
    ds = parse_stats(re.search(r"netstack: dns stats ([^\n]*)", text).group(1))
    assert ds["queries"] >= 1
    assert ds["malformed"] == 0 and ds["mismatched"] == 0


@pytest.mark.parametrize("size", [0, 1, 2, 64, 512, 1000, 1472, 1473, 1800])
def test_udp_echo_sizes(netstack, size):
    # 1473 and 1800 bytes exceed one frame: both directions are fragmented
    # (SLIRP -> guest reassembly, guest -> SLIRP fragmentation).
    _, echo = netstack
    payload = bytes((i * 7 + size) & 0xFF for i in range(size))
    assert echo.roundtrip(payload) == payload


def test_counters_sane_and_pool_returns(netstack):
    m, echo = netstack
    before = echo.stats()
    sizes = [1, 100, 1000, 1472, 1800] * 4
    for n in sizes:
        payload = bytes([n & 0xFF]) * n
        assert echo.roundtrip(payload) == payload
    after = echo.stats()
    for k in ("ip_bad_checksum", "ip_truncated", "ip_bad_version", "udp_bad_checksum", "udp_queue_full",
              "ip_send_errors", "arp_failed"):
        assert after[k] == 0, (k, after)
    assert after["udp_received"] - before["udp_received"] == len(sizes) + 1  # + the STATS request
    assert after["udp_sent"] - before["udp_sent"] == len(sizes) + 1
    assert after["icmp_echo_replies"] == 5
    assert after["pool_free"] == before["pool_free"], (before, after)  # nothing leaked
    echo.sock.sendto(b"EXIT", echo.address)
    assert m.wait_exit(timeout=10) == 0
