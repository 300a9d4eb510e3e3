"""A minimal host-side IPv4/TCP speaker on a RawPeer, for scripted
conversations with the guest's TCP (test/test_tcp_raw.py).

TcpPeer owns the wire: it answers the guest's ARP requests for any of its
addresses (several source addresses on one MAC), parses every IPv4/TCP
frame the guest sends and files it in a per-conversation queue keyed by
(peer address, peer port). Conversation is one TCP endpoint with explicit
send(flags, seq, ack, payload, options) and expect(predicate, timeout)
primitives: nothing is automatic (no ACKs, no retransmissions), so a test
decides exactly what the guest sees. Builders for malformed frames take the
same fields plus overrides (checksums, lengths, raw option bytes).

Plain struct, no scapy: no dependency beyond the standard library.
"""
import collections
import socket
import struct
import time
from dataclasses import dataclass, field

from harness.rawnet import mac_bytes, parse

ETH_IPV4, ETH_ARP = 0x0800, 0x0806
PROTO_TCP = 6
PROTO_ICMP = 1
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


def ip(text):
    return socket.inet_aton(text)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def seq_add(a, n):
    return (a + n) & 0xFFFFFFFF


def seq_diff(a, b):
    """a - b as a signed 32-bit sequence distance."""
    d = (a - b) & 0xFFFFFFFF
    return d - (1 << 32) if d >= 1 << 31 else d


# --- options ---------------------------------------------------------------

def encode_options(options):
    """options: a dict with any of mss=int, wscale=int, sack_perm=True,
    ts=(val, ecr), sack=[(left, right), ...]; or raw bytes (used as is,
    padded to 4 with zeros). Order follows what Linux sends."""
    if options is None:
        return b""
    if isinstance(options, (bytes, bytearray)):
        raw = bytes(options)
    else:
        raw = b""
        if "mss" in options:
            raw += struct.pack("!BBH", 2, 4, options["mss"])
        if options.get("sack_perm"):
            raw += b"\x04\x02"
        if "ts" in options:
            raw += struct.pack("!BBII", 8, 10, *options["ts"])
        if "wscale" in options:
            raw += b"\x01" + struct.pack("!BBB", 3, 3, options["wscale"])
        if options.get("sack"):
            blocks = options["sack"]
            raw += b"\x01\x01" + struct.pack("!BB", 5, 2 + 8 * len(blocks))
            for left, right in blocks:
                raw += struct.pack("!II", left, right)
    while len(raw) % 4:
        raw += b"\x01" if not isinstance(options, (bytes, bytearray)) else b"\x00"
    return raw


def decode_options(raw):
    """A dict like encode_options takes (sack as a list of tuples), plus
    'kinds': the option kinds in order. Stops at EOL or a bad length."""
    out = {"kinds": []}
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            out["bad"] = True
            break
        length = raw[i + 1]
        body = raw[i + 2:i + length]
        out["kinds"].append(kind)
        if kind == 2 and length == 4:
            out["mss"] = struct.unpack("!H", body)[0]
        elif kind == 3 and length == 3:
            out["wscale"] = body[0]
        elif kind == 4 and length == 2:
            out["sack_perm"] = True
        elif kind == 8 and length == 10:
            out["ts"] = struct.unpack("!II", body)
        elif kind == 5 and (length - 2) % 8 == 0:
            out["sack"] = [struct.unpack("!II", body[j:j + 8]) for j in range(0, len(body), 8)]
        i += length
    return out


# --- builders --------------------------------------------------------------

def tcp_segment(src, dst, sport, dport, seq, ack, flags, window=65535, options=None, payload=b"",
                data_offset=None, bad_checksum=False, urgent=0):
    """TCP header + payload with its checksum over the pseudo-header
    (src/dst as dotted text). data_offset overrides the header length
    field (in 32-bit words) for lies."""
    opts = encode_options(options)
    doff = data_offset if data_offset is not None else (20 + len(opts)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, doff << 4, flags,
                         window, 0, urgent) + opts
    segment = header + payload
    pseudo = ip(src) + ip(dst) + struct.pack("!BBH", 0, PROTO_TCP, len(segment))
    c = checksum(pseudo + segment)
    if bad_checksum:
        c ^= 0x5A5A
    return segment[:16] + struct.pack("!H", c) + segment[18:]


def icmp_fragmentation_needed(router, guest_ip, s, mtu):
    """ICMP destination unreachable, fragmentation needed (RFC 1191) from
    `router` about the guest's segment `s`: its IP header (rebuilt: the
    guest reads the version, length, fragment offset, protocol and
    addresses) and the first 8 bytes of its TCP header."""
    quoted = ipv4_packet(guest_ip, s.dst, struct.pack("!HHI", s.sport, s.dport, s.seq),
                         total_length=s.ip_total_length)
    body = struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + quoted
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    return ipv4_packet(router, guest_ip, body, proto=PROTO_ICMP)


def ipv4_packet(src, dst, payload, proto=PROTO_TCP, ident=0, ttl=64, dont_fragment=True, more_fragments=False,
                fragment_offset=0, ihl=None, total_length=None, bad_checksum=False, version=4, options=b""):
    """An IPv4 header + payload; every field can lie (ihl in words,
    total_length in bytes, fragment_offset in bytes, a multiple of 8)."""
    hl = ihl if ihl is not None else 5 + len(options) // 4
    tl = total_length if total_length is not None else 20 + len(options) + len(payload)
    flags = (0x4000 if dont_fragment else 0) | (0x2000 if more_fragments else 0) | (fragment_offset // 8)
    header = struct.pack("!BBHHHBBH4s4s", (version << 4) | hl, 0, tl & 0xFFFF, ident, flags, ttl, proto, 0,
                         ip(src), ip(dst)) + options
    c = checksum(header)
    if bad_checksum:
        c ^= 0x1234
    return header[:10] + struct.pack("!H", c) + header[12:] + payload


@dataclass
class Segment:
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    options: dict
    payload: bytes
    time: float = field(default_factory=time.monotonic)
    dont_fragment: bool = False
    ip_total_length: int = 0

    def has(self, flags):
        return self.flags & flags == flags

    @property
    def length(self):
        """Sequence space used: payload + SYN + FIN."""
        return len(self.payload) + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)

    def __repr__(self):
        names = "".join(n for bit, n in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, "."))
                        if self.flags & bit)
        return (f"<{self.src}:{self.sport}>{self.dst}:{self.dport} [{names}] seq={self.seq} ack={self.ack} "
                f"win={self.window} len={len(self.payload)} opts={self.options}>")


def parse_ipv4_tcp(payload):
    """A Segment from an IPv4 packet carrying TCP, or None."""
    if len(payload) < 20 or payload[0] >> 4 != 4:
        return None
    ihl = (payload[0] & 0xF) * 4
    total = struct.unpack("!H", payload[2:4])[0]
    if payload[9] != PROTO_TCP or total < ihl + 20 or len(payload) < total:
        return None
    src, dst = socket.inet_ntoa(payload[12:16]), socket.inet_ntoa(payload[16:20])
    t = payload[ihl:total]
    sport, dport, seq, ack, off, flags, window = struct.unpack("!HHIIBBH", t[:16])
    doff = (off >> 4) * 4
    pseudo = payload[12:20] + struct.pack("!BBH", 0, PROTO_TCP, len(t))
    assert checksum(pseudo + t) == 0, "guest sent a TCP segment with a bad checksum"
    assert checksum(payload[:ihl]) == 0, "guest sent an IPv4 header with a bad checksum"
    df = bool(struct.unpack("!H", payload[6:8])[0] & 0x4000)
    return Segment(src, dst, sport, dport, seq, ack, flags, window, decode_options(t[20:doff]), t[doff:],
                   dont_fragment=df, ip_total_length=total)


class TcpPeer:
    """The host side of the wire: several IPv4 addresses behind one MAC."""

    def __init__(self, raw, guest_mac, guest_ip="10.0.2.15", addresses=("10.0.2.2",)):
        self.raw = raw
        self.guest_mac = mac_bytes(guest_mac)
        self.guest_ip = guest_ip
        self.addresses = set(addresses)
        self.queues = collections.defaultdict(collections.deque)
        self.other = []          # frames from the guest that are neither ARP nor TCP
        self.arp_answered = 0

    # Output.
    def send_ip(self, packet):
        self.raw.send(self.guest_mac, ETH_IPV4, packet)

    def send_tcp(self, src, sport, dport, seq, ack, flags, **kwargs):
        ip_fields = {k: kwargs.pop(k) for k in list(kwargs) if k.startswith("ip_")}
        segment = tcp_segment(src, self.guest_ip, sport, dport, seq, ack, flags, **kwargs)
        self.send_ip(ipv4_packet(src, self.guest_ip, segment, **{k[3:]: v for k, v in ip_fields.items()}))

    # Input.
    def _handle(self, f):
        _, src_mac, ethertype, payload = parse(f)
        if ethertype == ETH_ARP and len(payload) >= 28:
            op = struct.unpack("!H", payload[6:8])[0]
            target = socket.inet_ntoa(payload[24:28])
            if op == 1 and target in self.addresses:
                reply = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + self.raw.mac + payload[24:28] + \
                    payload[8:14] + payload[14:18]
                self.raw.send(src_mac, ETH_ARP, reply)
                self.arp_answered += 1
            return
        if ethertype == ETH_IPV4:
            s = parse_ipv4_tcp(payload)
            if s is not None and s.dst in self.addresses:
                self.queues[(s.dst, s.dport)].append(s)
                return
        self.other.append(f)

    def pump(self, timeout):
        """Handles frames for up to `timeout` seconds or until one arrives."""
        f = self.raw.recv(max(timeout, 0.001))
        if f is not None:
            self._handle(f)
            while (f := self.raw.recv(0.0005)) is not None:  # whatever else is queued
                self._handle(f)

    def next(self, key, timeout):
        """The next segment for conversation `key`, or None."""
        deadline = time.monotonic() + timeout
        q = self.queues[key]
        while not q:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.pump(remaining)
        return q.popleft()


class Conversation:
    """One TCP endpoint of the peer: src:sport <-> guest:dport. Tracks
    snd_nxt (ours) and rcv_nxt (the guest's next byte) only when told to
    (connect, send with advance, ack_all)."""

    def __init__(self, peer, sport, dport=7, src="10.0.2.2", window=65535, timestamps=False):
        self.peer, self.sport, self.dport, self.src = peer, sport, dport, src
        self.key = (src, sport)
        self.iss = (sport * 7919 * 65537) & 0xFFFFFFFF
        self.snd_nxt = self.iss
        self.rcv_nxt = None
        self.window = window
        self.timestamps = timestamps
        self.ts_recent = 0
        self.received = []    # every segment expect() has seen, in order
        self.data = bytearray()  # in-order payload taken by collect()

    def tsval(self):
        return int(time.monotonic() * 1000) & 0xFFFFFFFF

    def send(self, flags, seq=None, ack=None, payload=b"", options=None, window=None, advance=True, **kwargs):
        """Sends one segment. seq/ack default to snd_nxt/rcv_nxt; with
        timestamps negotiated a TS option is added unless `options` is
        given. advance: move snd_nxt past what was sent (when seq is
        the default)."""
        if options is None and self.timestamps:
            options = {"ts": (self.tsval(), self.ts_recent)}
        if seq is None:
            seq = self.snd_nxt
            if advance:
                self.snd_nxt = seq_add(seq, len(payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0))
        if ack is None:
            ack = self.rcv_nxt or 0
        self.peer.send_tcp(self.src, self.sport, self.dport, seq, ack, flags, options=options,
                           window=self.window if window is None else window, payload=payload, **kwargs)

    def recv(self, timeout=3.0):
        s = self.peer.next(self.key, timeout)
        if s is not None:
            self.received.append(s)
            if "ts" in s.options:
                self.ts_recent = s.options["ts"][0]
        return s

    def expect(self, predicate=lambda s: True, timeout=3.0):
        """The first segment satisfying predicate within timeout; the
        segments skipped on the way are in self.skipped."""
        deadline = time.monotonic() + timeout
        self.skipped = []
        while True:
            remaining = deadline - time.monotonic()
            s = self.recv(remaining) if remaining > 0 else None
            if s is None:
                raise AssertionError(f"{self.key}: no matching segment within {timeout}s; skipped {self.skipped}")
            if predicate(s):
                return s
            self.skipped.append(s)

    def quiet(self, seconds):
        """Every segment that arrives within `seconds` (a test that
        expects silence asserts this is empty)."""
        got = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            s = self.recv(remaining)
            if s is not None:
                got.append(s)
        return got

    def connect(self, options=None, timeout=5.0):
        """SYN, SYN-ACK, ACK; returns the SYN-ACK."""
        if options is not None and "ts" in options:
            self.timestamps = True
        self.send(SYN, ack=0, options=options if options is not None else {})
        synack = self.expect(lambda s: s.has(SYN | ACK), timeout)
        assert synack.ack == self.snd_nxt, synack
        self.rcv_nxt = seq_add(synack.seq, 1)
        self.timestamps = self.timestamps and "ts" in synack.options
        self.send(ACK)
        return synack

    def collect(self, nbytes, timeout=5.0, ack=True):
        """Takes in-order data from the guest until `nbytes` arrived,
        ACKing each new segment (unless ack=False); returns the bytes."""
        start = len(self.data)
        deadline = time.monotonic() + timeout
        while len(self.data) - start < nbytes:
            s = self.expect(lambda s: True, max(deadline - time.monotonic(), 0.001))
            assert not s.flags & RST, f"reset while collecting: {s}"
            if s.payload and s.seq == self.rcv_nxt:
                self.take(s, ack)
        return bytes(self.data[start:start + nbytes])

    def take(self, s, ack=True):
        """Takes the in-order segment `s`: its payload joins self.data,
        rcv_nxt moves past it, and it is ACKed (unless ack=False)."""
        self.data += s.payload
        self.rcv_nxt = seq_add(self.rcv_nxt, len(s.payload))
        if ack:
            self.send(ACK)

    def echo(self, payload, timeout=5.0):
        """Sends payload (one segment) and returns the echo, ACKed."""
        self.send(ACK | PSH, payload=payload)
        return self.collect(len(payload), timeout)

    def close(self, timeout=5.0):
        """Our FIN, then the guest's (the echo worker closes when it reads
        end of stream); ACKs it. Leaves the guest in LAST-ACK->CLOSED."""
        self.send(FIN | ACK)
        fin = self.expect(lambda s: s.flags & FIN, timeout)
        self.rcv_nxt = seq_add(fin.seq, len(fin.payload) + 1)
        self.send(ACK)

    def abort(self):
        self.send(RST | ACK, advance=False)
