"""The IPv4 stack end to end through QEMU's user networking (SLIRP).

apps/netstack obtains a DHCP lease from SLIRP, pings the gateway, resolves a
name through SLIRP's DNS forwarder, then serves UDP echo on port 7, which the
host reaches through hostfwd=udp. SLIRP forwards DNS to the host's resolver;
here that resolver has no internet and answers NXDOMAIN, so the lookup must
end cleanly in "not found" (a validated response: same id, same question) —
or, on a machine with working DNS, in an address.

A positive answer therefore comes from a DNS server of the test's own
(HostDns: UDP on 127.0.0.1, a CNAME chain then an A record): the guest is
told about it with the boot option netstack.dns=NAME@10.0.2.2:PORT, and
SLIRP turns datagrams to its host alias 10.0.2.2 into datagrams to the
host's 127.0.0.1. No -icount: a host peer drives the guest (NOTES.md).
"""
import re
import socket
import struct
import threading

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


class HostDns:
    """A tiny authoritative DNS server on 127.0.0.1 (stdlib only). It
    answers A queries for NAME with NAME CNAME ALIAS, ALIAS A ADDRESS
    (compressed names, TTL 300), NXDOMAIN for other names, and keeps every
    query it saw, decoded, for the test to judge. Each answer is preceded
    by a decoy with a wrong id."""
    NAME = "www.tessera-test.example"
    ALIAS = "host.tessera-test.example"
    ADDRESS = "192.0.2.77"
    TTL = 300

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @staticmethod
    def decode_query(data):
        ident, flags, qd, an, ns, ar = struct.unpack("!6H", data[:12])
        labels, i = [], 12
        while data[i]:
            labels.append(data[i + 1:i + 1 + data[i]].decode("ascii"))
            i += 1 + data[i]
        qtype, qclass = struct.unpack("!HH", data[i + 1:i + 5])
        return {"id": ident, "flags": flags, "counts": (qd, an, ns, ar), "name": ".".join(labels),
                "qtype": qtype, "qclass": qclass, "question_end": i + 5, "length": len(data)}

    def answer(self, data, q):
        question = data[12:q["question_end"]]
        if q["name"].lower() != self.NAME or q["qtype"] != 1 or q["qclass"] != 1:
            return struct.pack("!6H", q["id"], 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
        # NAME CNAME ALIAS: owner = pointer to the question name (12); the
        # target is "host" + a pointer to "tessera-test.example" (12 + 4).
        alias = bytes([4]) + b"host" + struct.pack("!H", 0xC000 | 16)
        cname = struct.pack("!HHHIH", 0xC000 | 12, 5, 1, self.TTL, len(alias)) + alias
        alias_at = 12 + len(question) + 12  # where ALIAS's name starts
        a = struct.pack("!HHHIH", 0xC000 | alias_at, 1, 1, self.TTL, 4) + socket.inet_aton(self.ADDRESS)
        # QR, AA, RD copied, RA; NOERROR.
        flags = 0x8400 | (q["flags"] & 0x0100) | 0x0080
        return struct.pack("!6H", q["id"], flags, 1, 2, 0, 0) + question + cname + a

    def _serve(self):
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                q = self.decode_query(data)
            except (struct.error, IndexError, UnicodeDecodeError):
                self.queries.append({"malformed": data})
                continue
            self.queries.append(q)
            answer = self.answer(data, q)
            # First a copy with another id, which the guest must ignore:
            # only the id it sent makes an answer its own (RFC 5452).
            decoy = struct.pack("!H", q["id"] ^ 0x5A5A) + answer[2:]
            self.sock.sendto(decoy, peer)
            self.sock.sendto(answer, peer)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def host_dns():
    server = HostDns()
    yield server
    server.close()


@pytest.fixture
def netstack(machine, host_dns):
    image = build_image("netstack")
    port = free_udp_port()
    m = machine(image, nic=UserNet(udpfwd=[(port, 7)]), mac=GUEST_MAC,
                append=f"netstack.dns={HostDns.NAME}@10.0.2.2:{host_dns.port}")
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


def test_dns_positive_lookup_from_a_host_server(netstack, host_dns):
    # The guest asked our server through SLIRP's host alias, followed the
    # CNAME chain to the A record, and cached the answer for its TTL.
    m, _ = netstack
    text = m.serial_text()
    line = re.search(r"netstack: dns (\S+) via 10\.0\.2\.2:(\d+) "
                     r"(-> (\S+) cached (\w+) mismatched (\d+)|error (.*))\r?\n", text)
    assert line, text
    assert line.group(1) == HostDns.NAME and int(line.group(2)) == host_dns.port
    assert line.group(4) == HostDns.ADDRESS, line.group(0)
    assert line.group(5) == "yes", line.group(0)
    assert line.group(6) == "1", line.group(0)  # the decoy with the wrong id
    # One well-formed query per attempt (one here: the answer was valid).
    assert len(host_dns.queries) == 1, host_dns.queries
    q = host_dns.queries[0]
    assert "malformed" not in q, q
    assert q["flags"] == 0x0100, hex(q["flags"])  # a standard query, QR 0, opcode 0, RD set
    assert q["counts"] == (1, 0, 0, 0)
    assert q["name"] == HostDns.NAME
    assert q["qtype"] == 1 and q["qclass"] == 1  # A, IN
    assert q["length"] == q["question_end"]  # nothing after the question


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
