"""The guest's TCP against a scripted raw-frame peer (issue 6's proof).

apps/tcpecho (echo on port 7, counters on port 11) runs with
configs/tcpecho-raw.config (the tcp library's default per-source and SYN
queue limits, a 2 s reassembly timeout). Its NIC's wire ends in
harness.rawnet.RawPeer; harness.tcppeer speaks ARP/IPv4/TCP on it by hand,
so each case decides exactly what the guest sees and asserts what it sends
back: options in the handshake, SACK for out-of-order data, a FIN behind
a hole, duplicate ACKs, RTO backoff, fast retransmit, zero-window probes, RFC 5961 RST
checks, the per-source SYN limit, and malformed frames being dropped and
counted while a healthy connection keeps echoing, with no packet buffer
leaked. No -icount: a host peer drives the guest (NOTES.md), so timing
assertions are ratios with wide margins.

One machine serves the module (boot is the slow part); each case uses its
own source ports and leaves its connections closed or reset.
"""
import dataclasses
import itertools
import random
import re
import socket
import struct
import time

import pytest

from harness import build_image
from harness.rawnet import RawPeer, parse
from harness.tcppeer import (ACK, FIN, PROTO_ICMP, PROTO_TCP, PSH, RST, SYN, Conversation, TcpPeer, checksum,
                             icmp_fragmentation_needed, ipv4_packet,
                             seq_add, seq_diff, tcp_segment)

GUEST_MAC = "52:54:00:12:34:56"
PEER = "10.0.2.2"      # the guest's gateway: its default route
PEER2 = "10.0.2.4"     # a second source on the same link
ALL_OPTIONS = {"mss": 1460, "sack_perm": True, "ts": (1000, 0), "wscale": 7}
_ports = itertools.count(20000)


def port():
    return next(_ports)


@pytest.fixture(scope="module")
def guest():
    from harness import Machine
    image = build_image("tcpecho", fragments=["configs/tcpecho-raw.config"])
    raw = RawPeer()
    m = Machine(image, nic=raw, mac=GUEST_MAC)
    m.start()
    m.expect(r"tcpecho: listening on 10\.0\.2\.15:7", timeout=30)
    peer = TcpPeer(raw, GUEST_MAC, addresses=(PEER, PEER2))
    m.stats_at_start = stats(peer)
    yield m, peer
    m.close()
    raw.close()


@pytest.fixture(autouse=True)
def _report_serial(request, guest):
    request.node.tessera_machines = [guest[0]]


def stats(peer, src=PEER):
    """tcpecho's counters (port 11), read over a conversation of our own."""
    c = Conversation(peer, port(), dport=11, src=src)
    c.connect({"mss": 1460})
    text = b""
    while not text.endswith(b"\n"):
        s = c.expect(lambda s: s.payload or s.flags & FIN)
        if s.payload and s.seq == c.rcv_nxt:
            text += s.payload
            c.rcv_nxt = seq_add(c.rcv_nxt, len(s.payload))
            c.send(ACK)
    fin = c.expect(lambda s: s.flags & FIN)
    c.rcv_nxt = seq_add(fin.seq, len(fin.payload) + 1)
    c.send(FIN | ACK)
    c.expect(lambda s: s.has(ACK) and s.ack == c.snd_nxt)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", text.decode())}


def test_handshake_with_every_option_and_with_none(guest):
    m, peer = guest
    c = Conversation(peer, port())
    offered = dict(ALL_OPTIONS, ts=(c.tsval(), 0))
    synack = c.connect(offered)
    o = synack.options
    assert "mss" in o and 536 <= o["mss"] <= 1460, synack
    assert "wscale" in o and 0 <= o["wscale"] <= 14, synack
    assert o.get("sack_perm"), synack
    assert "ts" in o and o["ts"][1] == offered["ts"][0], synack  # echoes our TSval
    assert c.echo(b"all options") == b"all options"
    c.close()

    bare = Conversation(peer, port())
    synack = bare.connect({})
    # RFC 9293 lets a SYN-ACK carry MSS regardless; nothing else may appear
    # unless we offered it.
    assert set(synack.options["kinds"]) <= {2}, synack
    assert bare.echo(b"no options") == b"no options"
    # Without timestamps the guest's segments carry no options at all.
    assert all(not s.options["kinds"] for s in bare.received[1:]), bare.received
    bare.close()


@pytest.mark.parametrize("mss", [1, 11, 40])
def test_a_tiny_mss_with_timestamps_gets_64_byte_segments(guest, mss):
    """A peer's MSS below the timestamps option's 12 bytes once wrapped
    the guest's send MSS around zero: the first segment it sent then
    panicked the kernel. The floor is 64 bytes of data."""
    m, peer = guest
    c = Conversation(peer, port())
    synack = c.connect({"mss": mss, "ts": (c.tsval(), 0)})
    assert "ts" in synack.options, synack
    payload = bytes(range(256)) * 2
    assert c.echo(payload) == payload
    sizes = [len(s.payload) for s in c.received if s.payload]
    assert max(sizes) == 64, sizes
    c.close()


def test_out_of_order_segment_is_sacked_then_both_echoed_in_order(guest):
    m, peer = guest
    c = Conversation(peer, port())
    c.connect({"mss": 1460, "sack_perm": True})
    base = c.snd_nxt
    seg1, seg2 = b"A" * 100, b"B" * 100
    c.send(ACK | PSH, seq=seq_add(base, 100), payload=seg2, advance=False)
    dup = c.expect(lambda s: s.has(ACK))
    assert dup.ack == base and not dup.payload, dup
    assert dup.options.get("sack") == [(seq_add(base, 100), seq_add(base, 200))], dup
    c.send(ACK | PSH, seq=base, payload=seg1, advance=False)
    c.snd_nxt = seq_add(base, 200)
    assert c.collect(200) == seg1 + seg2
    assert c.received[-1].ack == seq_add(base, 200)
    # A duplicate of segment 1: a duplicate ACK, and nothing echoed twice.
    c.send(ACK | PSH, seq=base, payload=seg1, advance=False)
    again = c.expect(lambda s: s.has(ACK))
    assert again.ack == seq_add(base, 200) and not again.payload, again
    assert [s for s in c.quiet(0.5) if s.payload] == []
    assert c.echo(b"after") == b"after"
    c.close()


def test_fin_ahead_of_a_hole_is_taken_when_the_hole_fills(guest):
    m, peer = guest
    c = Conversation(peer, port())
    c.connect({"mss": 1460, "sack_perm": True})
    base = c.snd_nxt
    # The second segment carries the FIN and arrives first.
    c.send(ACK | PSH | FIN, seq=seq_add(base, 100), payload=b"B" * 100, advance=False)
    dup = c.expect(lambda s: s.has(ACK))
    assert dup.ack == base and not dup.payload, dup
    c.send(ACK | PSH, seq=base, payload=b"A" * 100, advance=False)
    c.snd_nxt = seq_add(base, 201)
    assert c.collect(200) == b"A" * 100 + b"B" * 100
    # The FIN is never sent again: the guest takes it with the segment that
    # filled the hole, and its echo worker, at end of stream, closes.
    fin = next((s for s in c.received if s.flags & FIN), None) or c.expect(lambda s: s.flags & FIN)
    assert fin.ack == seq_add(base, 201), fin
    c.rcv_nxt = seq_add(fin.seq, len(fin.payload) + 1)
    c.send(ACK)


def test_rst_checks_rfc5961(guest):
    m, peer = guest
    before = stats(peer)
    c = Conversation(peer, port())
    c.connect({"mss": 1460})
    assert c.echo(b"one") == b"one"
    # In window but not exact: a challenge ACK, and the connection lives.
    c.send(RST, seq=seq_add(c.snd_nxt, 10), ack=0, advance=False)
    challenge = c.expect()
    assert challenge.flags & (ACK | RST) == ACK and challenge.ack == c.snd_nxt, challenge
    assert c.echo(b"two") == b"two"
    # Out of window: ignored (no answer at all).
    c.send(RST, seq=seq_add(c.snd_nxt, 1 << 30), ack=0, advance=False)
    assert c.quiet(0.4) == []
    assert c.echo(b"three") == b"three"
    after = stats(peer)
    assert after["tcp_challenge_acks"] == before["tcp_challenge_acks"] + 1
    # Exact: the connection is gone, and a later segment is answered by RST.
    c.send(RST, seq=c.snd_nxt, ack=0, advance=False)
    assert c.quiet(0.3) == []
    c.send(ACK | PSH, payload=b"anyone?")
    reset = c.expect(lambda s: s.flags & RST)
    assert reset.seq == c.rcv_nxt, reset  # RFC 9293 3.10.7.1: a reset's seq is the segment's ACK


def test_unacked_echo_is_retransmitted_with_rto_backoff(guest):
    m, peer = guest
    c = Conversation(peer, port())
    c.connect({"mss": 1460})  # no timestamps: the handshake itself is the RTT sample
    c.send(ACK | PSH, payload=b"lost")
    first = c.expect(lambda s: s.payload == b"lost")
    # Never ACK it: the same segment comes again, each wait about twice the last.
    times = [first.time]
    while len(times) < 5:
        s = c.expect(lambda s: s.payload, timeout=10)
        assert s.seq == first.seq and s.payload == b"lost", s
        times.append(s.time)
    gaps = [b - a for a, b in zip(times, times[1:])]
    ratios = [b / a for a, b in zip(gaps, gaps[1:])]
    assert all(1.5 <= r <= 2.7 for r in ratios), (gaps, ratios)
    # The first RTO comes from the handshake's round trip (floored at
    # CONFIG_TCP_MIN_RTO_MS = 200 ms), not RFC 6298's initial 1 s.
    assert gaps[0] < 0.6, gaps
    c.rcv_nxt = seq_add(first.seq, 4)
    c.send(ACK)
    assert [s for s in c.quiet(0.5) if s.payload] == []  # acknowledged: no more retransmissions
    assert c.echo(b"recovered") == b"recovered"
    c.close()


def test_three_duplicate_acks_trigger_fast_retransmit(guest):
    m, peer = guest
    before = stats(peer)
    c = Conversation(peer, port())
    c.connect({"mss": 536})
    payload = bytes(range(256)) * 12  # 3072 bytes: six guest segments of 536
    for i in range(0, len(payload), 536):
        c.send(ACK | PSH, payload=payload[i:i + 536])
    # Take the echo without ACKing: at least three segments in flight.
    segs = {}
    deadline = time.monotonic() + 5
    while len(segs) < 4 and time.monotonic() < deadline:
        s = c.expect(lambda s: s.payload)
        segs[s.seq] = s
    start = min(segs, key=lambda q: seq_diff(q, c.rcv_nxt))
    assert start == c.rcv_nxt and len(segs) >= 4, segs
    first = segs[start]
    lost = seq_add(start, len(first.payload))  # pretend the second segment was lost
    c.rcv_nxt = lost
    c.send(ACK)
    sent_at = time.monotonic()
    for _ in range(3):
        c.send(ACK)  # duplicate ACKs (no data, same window)
    again = c.expect(lambda s: s.payload and s.seq == lost, timeout=2)
    # Well before the RTO (>= 200 ms after our new ACK) would have fired.
    assert again.time - sent_at < 0.15, again.time - sent_at
    # Then everything arrives (and is ACKed) in order.
    c.data = bytearray(payload[:len(first.payload)])
    c.data += again.payload
    c.rcv_nxt = seq_add(lost, len(again.payload))
    c.send(ACK)
    c.collect(len(payload) - len(c.data), timeout=5)
    assert bytes(c.data) == payload
    after = stats(peer)
    assert after["tcp_fast_retransmits"] >= before["tcp_fast_retransmits"] + 1
    c.close()


def test_zero_window_probes_then_resume(guest):
    m, peer = guest
    c = Conversation(peer, port())
    c.connect({"mss": 1460})
    assert c.echo(b"warm") == b"warm"  # an RTT sample: the persist timer starts from a small RTO
    payload = b"z" * 300
    c.send(ACK | PSH, payload=payload, window=0)
    # The guest ACKs our data and, with nothing allowed to send, probes:
    # an ACK-eliciting segment below the window (seq - 1) or one byte.
    acked = c.expect(lambda s: s.ack == c.snd_nxt)
    assert not acked.payload and acked.window < 65535, acked
    probes = []
    while len(probes) < 3:
        s = c.expect(timeout=6)
        assert len(s.payload) <= 1, f"sent {len(s.payload)} bytes into a zero window: {s}"
        assert s.seq in (seq_add(c.rcv_nxt, -1), c.rcv_nxt), s
        probes.append(s)
        c.send(ACK, window=0)  # still closed
    times = [acked.time] + [p.time for p in probes]
    intervals = [b - a for a, b in zip(times, times[1:])]
    assert intervals[1] > intervals[0] * 1.5 and intervals[2] > intervals[1] * 1.5, intervals
    # Open the window: the echo resumes from where it stopped.
    c.send(ACK)
    assert c.collect(len(payload)) == payload
    c.close()


def syn_flood(peer, flood, timeout=3.0):
    """A SYN from each conversation, never completed; the keys of those
    the guest answered with a SYN-ACK (the only answer allowed) within
    `timeout`."""
    for c in flood:
        c.send(SYN, ack=0, options={"mss": 1460})
    answered = set()
    deadline = time.monotonic() + timeout
    while len(answered) < len(flood) and time.monotonic() < deadline:
        peer.pump(0.05)
        for c in flood:
            while (s := peer.next(c.key, 0)) is not None:
                assert s.has(SYN | ACK) and s.ack == c.snd_nxt, s
                answered.add(c.key)
    return answered


def test_syn_flood_beyond_the_per_source_limit(guest):
    """One address holds at most its share of the SYN queue
    (CONFIG_TCP_PER_SOURCE_HALF_OPEN): 24 SYNs from it leave 8 half-open
    connections, and the other 16 are answered with SYN cookies, which
    keep nothing. A second address connects and echoes meanwhile."""
    m, peer = guest
    before = stats(peer, src=PEER2)
    limit = 8  # CONFIG_TCP_PER_SOURCE_HALF_OPEN in configs/tcpecho-raw.config
    flood = [Conversation(peer, port()) for _ in range(3 * limit)]
    answered = syn_flood(peer, flood)
    assert len(answered) == len(flood), (len(answered), len(flood))
    # A second source still gets through, and echoes, while the flood is half-open.
    other = Conversation(peer, port(), src=PEER2)
    other.connect({"mss": 1460, "sack_perm": True})
    assert other.echo(b"second source") == b"second source"
    other.close()
    after = stats(peer, src=PEER2)
    assert after["tcp_syn_cookies_sent"] - before["tcp_syn_cookies_sent"] == 3 * limit - limit, (before, after)
    assert after["tcp_syn_per_source"] == before["tcp_syn_per_source"]
    # Clean up: reset them all (the 8 half-open connections close; a RST
    # after a cookie reaches the listener, which ignores it). The first
    # source then connects again, below its share.
    for c in flood:
        c.send(RST, ack=0, advance=False)
    time.sleep(0.2)
    again = Conversation(peer, port())
    again.connect({"mss": 1460})
    assert again.echo(b"first source again") == b"first source again"
    again.close()


def test_a_syn_flood_from_many_sources_is_answered_with_syn_cookies(guest):
    """SYNs from 20 sources, three each, none ever completed: the first 16
    fill the listener's SYN queue (CONFIG_TCP_SYN_QUEUE), and every SYN
    after that is still answered, with a SYN cookie and no state. A client
    from another source then gets in through a cookie with every option
    it offered (window scale and SACK ride in the timestamp) and echoes."""
    m, peer = guest
    flooders = [f"10.0.2.{100 + i}" for i in range(20)]
    peer.addresses.update(flooders)
    before = stats(peer, src=PEER2)
    flood = [Conversation(peer, port(), src=a) for a in flooders for _ in range(3)]
    answered = syn_flood(peer, flood)
    assert len(answered) == len(flood), (len(answered), len(flood))
    client = Conversation(peer, port(), src=PEER2)
    synack = client.connect(dict(ALL_OPTIONS, ts=(client.tsval(), 0)))
    assert synack.options.get("wscale") == 1 and synack.options.get("sack_perm") and "ts" in synack.options, synack
    payload = bytes(range(256)) * 40  # 10 KiB: several segments each way
    for i in range(0, len(payload), 1024):
        client.send(ACK | PSH, payload=payload[i:i + 1024])
    assert client.collect(len(payload)) == payload
    client.close()
    after = stats(peer, src=PEER2)
    queue = 16  # CONFIG_TCP_SYN_QUEUE in configs/tcpecho-raw.config
    assert after["tcp_syn_cookies_sent"] - before["tcp_syn_cookies_sent"] == len(flood) - queue + 1, (before, after)
    assert after["tcp_syn_cookies_accepted"] - before["tcp_syn_cookies_accepted"] == 1
    assert after["tcp_syn_queue_full"] == before["tcp_syn_queue_full"]
    # Clean up: reset the flood (the queued ones close; a cookie's has
    # nothing to close, and a RST to a listener is ignored).
    for c in flood:
        c.send(RST, ack=0, advance=False)
    time.sleep(0.2)
    peer.addresses.difference_update(flooders)


def test_fragmentation_needed_shrinks_the_guest_segments(guest):
    """Path MTU discovery (RFC 1191) through real ICMP messages. The guest
    echoes over a path whose router takes 1000-byte datagrams: its first
    full-size segment is answered with fragmentation needed, and it sends
    the data again at once (no retransmission timeout) in segments that
    fit, DF still set. A report below the 552-byte floor brings them to
    552 bytes and lets routers fragment them (DF clear). A report quoting
    a sequence number that is not in flight changes nothing (RFC 5927)."""
    m, peer = guest
    before = stats(peer)
    c = Conversation(peer, port())
    c.connect({"mss": 1460})
    data = bytes(i % 251 for i in range(8 * 1460))

    def send_half(half):
        for i in range(half * 4 * 1460, (half + 1) * 4 * 1460, 1460):
            c.send(ACK | PSH, payload=data[i:i + 1460])

    def report_then_expect_smaller(big, mtu, limit, dont_fragment):
        peer.send_ip(icmp_fragmentation_needed(PEER, peer.guest_ip, big, mtu))
        again = c.expect(lambda s: s.payload and s.seq == big.seq, timeout=5)  # before later ones, if any
        assert again.ip_total_length <= limit and again.dont_fragment == dont_fragment, again
        c.take(again)
        return len(again.payload)

    send_half(0)
    big = c.expect(lambda s: len(s.payload) == 1460)
    assert big.dont_fragment and big.seq == c.rcv_nxt, big
    forged = dataclasses.replace(big, seq=seq_add(big.seq, 1 << 20))
    peer.send_ip(icmp_fragmentation_needed(PEER, peer.guest_ip, forged, 1000))
    first = len(c.received)
    n = report_then_expect_smaller(big, 1000, 1000, True)
    assert bytes(c.data) + c.collect(4 * 1460 - n) == data[:4 * 1460]
    # From the first segment sent again on: all fit (the earlier ones
    # were on their way before the report).
    resent = c.received[first:]
    resent = resent[next(i for i, s in enumerate(resent) if s.payload and s.seq == big.seq):]
    assert all(s.ip_total_length <= 1000 and s.dont_fragment for s in resent), resent
    # Below the floor: 552-byte datagrams without DF.
    send_half(1)
    mid = c.expect(lambda s: len(s.payload) == 960)
    first = len(c.received)
    n = report_then_expect_smaller(mid, 400, 552, False)
    assert c.data[-n:] + c.collect(4 * 1460 - n) == data[4 * 1460:]
    resent = c.received[first:]
    resent = resent[next(i for i, s in enumerate(resent) if s.payload and s.seq == mid.seq):]
    assert all(s.ip_total_length <= 552 and not s.dont_fragment for s in resent), resent
    c.close()
    after = stats(peer)
    assert after["tcp_path_mtu_reductions"] - before["tcp_path_mtu_reductions"] == 2, after
    assert after["tcp_icmp_errors"] - before["tcp_icmp_errors"] == 2, after
    assert after["tcp_icmp_ignored"] - before["tcp_icmp_ignored"] >= 1, after
    assert after["tcp_timeouts"] == before["tcp_timeouts"], after  # resent on the report, not on a timer


def test_malformed_frames_are_dropped_and_counted_while_a_connection_echoes(guest):
    m, peer = guest
    guest_ip = peer.guest_ip
    before = stats(peer)
    healthy = Conversation(peer, port(), src=PEER2)
    healthy.connect({"mss": 1460, "sack_perm": True, "ts": (healthy.tsval(), 0)})

    def syn(sport, **kwargs):
        return tcp_segment(PEER, guest_ip, sport, 7, 1, 0, SYN, **kwargs)

    first = port()

    def silent_syn(**ip_kwargs):
        peer.send_ip(ipv4_packet(PEER, guest_ip, syn(port(), options={"mss": 1460}), **ip_kwargs))

    cases = [
        ("bad IPv4 checksum", lambda: silent_syn(bad_checksum=True)),
        ("total length beyond the frame", lambda: silent_syn(total_length=400)),
        ("IHL below 5", lambda: silent_syn(ihl=4)),
        ("IHL beyond total length", lambda: silent_syn(ihl=15, total_length=44)),
        ("version 6 in an IPv4 frame", lambda: silent_syn(version=6)),
        ("bad TCP checksum", lambda: peer.send_ip(ipv4_packet(
            PEER, guest_ip, syn(port(), options={"mss": 1460}, bad_checksum=True)))),
        ("truncated TCP header", lambda: peer.send_ip(ipv4_packet(PEER, guest_ip, syn(port())[:10]))),
        ("data offset past the segment", lambda: peer.send_ip(ipv4_packet(PEER, guest_ip, syn(port(), data_offset=15)))),
        ("data offset below 5", lambda: peer.send_ip(ipv4_packet(PEER, guest_ip, syn(port(), data_offset=3)))),
        ("option length 0", lambda: peer.send_ip(ipv4_packet(PEER, guest_ip, syn(port(), options=b"\x02\x00\x05\xb4")))),
        ("option length 1", lambda: peer.send_ip(ipv4_packet(PEER, guest_ip, syn(port(), options=b"\x08\x01\x00\x00")))),
        ("option past the header", lambda: peer.send_ip(ipv4_packet(PEER, guest_ip, syn(port(), options=b"\x08\x28\x00\x00")))),
        ("SACK block option with a ragged length", lambda: peer.send_ip(ipv4_packet(
            PEER, guest_ip, syn(port(), options=b"\x01\x01\x05\x07" + bytes(8))))),
    ]
    # Bad segments on the healthy connection itself: bad checksum, and a
    # segment whose option runs past its header; neither may be echoed.
    cases.append(("bad checksum on the live connection", lambda: healthy.send(
        ACK | PSH, payload=b"corrupt", advance=False, bad_checksum=True)))
    # Fragments: an overlapping pair, and a first fragment that never completes.
    # Each datagram has its own identification (CONFIG_IPV4_REASSEMBLY_SLOTS
    # is 4: later incomplete ones may find no room, which is counted too).
    whole = syn(port(), options={"mss": 1460}) + bytes(24)
    idents = itertools.count(0x4200)

    def overlapping():
        i = next(idents)
        peer.send_ip(ipv4_packet(PEER, guest_ip, whole[:24], ident=i, dont_fragment=False, more_fragments=True))
        peer.send_ip(ipv4_packet(PEER, guest_ip, whole[16:], ident=i, dont_fragment=False, fragment_offset=16))

    cases.append(("overlapping fragments", overlapping))
    cases.append(("a fragment that never completes", lambda: peer.send_ip(ipv4_packet(
        PEER, guest_ip, whole[:16], ident=next(idents), dont_fragment=False, more_fragments=True))))
    cases.append(("a lone tail fragment", lambda: peer.send_ip(ipv4_packet(
        PEER, guest_ip, whole[16:], ident=next(idents), dont_fragment=False, fragment_offset=16))))

    for round_ in range(3):
        for name, send_bad in cases:
            send_bad()
            chunk = f"{round_}:{name}".encode()
            assert healthy.echo(chunk) == chunk, name
    time.sleep(2.5)  # CONFIG_IPV4_REASSEMBLY_TIMEOUT_MS: incomplete fragments are freed
    # None of the bad SYNs (all from ports after `first`) was answered.
    last = port()
    peer.pump(0.01)
    answered = {k: list(q) for k, q in peer.queues.items() if q and k[0] == PEER and first <= k[1] < last}
    assert not answered, answered
    healthy.close()
    after = stats(peer)
    d = {k: after[k] - before[k] for k in after}
    # Three rounds of each kind, counted under the header check that
    # catches it (an IHL beyond the total length counts as truncated).
    assert d["ip_bad_checksum"] == 3 and d["ip_bad_header_length"] == 3 and d["ip_bad_version"] == 3
    assert d["ip_truncated"] + d["ip_bad_total_length"] == 6
    # Bad checksums: the SYN, the live connection's segment, and the
    # truncated header (its checksum, over 10 bytes, fails first).
    # Malformed: both data offset lies and all four absurd option areas.
    assert d["tcp_bad_checksum"] == 9
    assert d["tcp_malformed"] == 18
    # 12 fragments, none reassembled. The 4 reassembly slots fill up with
    # the incomplete datagrams, so later rounds' fragments find no room
    # (counted) instead of reaching the overlap check; held slots time out.
    assert d["ip_fragments"] == 12 and d["ip_reassembled"] == 0
    assert d["ip_reassembly_overlaps"] >= 1 and d["ip_reassembly_no_room"] >= 1
    assert 1 <= d["ip_reassembly_timeouts"] <= 4
    # No leak: the pool is back where it started (both snapshots are taken
    # from inside an identical stats conversation).
    assert after["pool_free"] == m.stats_at_start["pool_free"], (after, m.stats_at_start)
    assert after["pool_failures"] == 0


# Sources that are not a unicast host (RFC 1122 3.2.1.3): never answered.
SPECIAL_SOURCES = ("0.0.0.0", "0.1.2.3", "255.255.255.255", "10.0.2.255", "127.0.0.1", "224.0.0.1")


def random_frame(rng, guest_ip, idents):
    """One seeded random IPv4 frame for the storm below: every header
    checksum valid (so the layers past it must judge the rest), the
    fields, lengths, fragments, protocols and payloads random."""
    src = rng.choice([PEER, "192.0.2.77", "198.51.100.3", *SPECIAL_SOURCES])
    kind = rng.randrange(6)
    if kind == 0:  # TCP to the echo port or elsewhere, never a SYN (no half-open slots left behind)
        flags = rng.randrange(64) & ~SYN
        options = rng.choice([None, {"mss": rng.randrange(65536)}, {"ts": (rng.getrandbits(32), rng.getrandbits(32))},
                              {"sack": [(rng.getrandbits(32), rng.getrandbits(32))]},
                              bytes(rng.randrange(256) for _ in range(4 * rng.randrange(1, 10)))])
        payload = tcp_segment(src, guest_ip, rng.randrange(1, 65536), rng.choice([7, 11, rng.randrange(65536)]),
                              rng.getrandbits(32), rng.getrandbits(32), flags, window=rng.randrange(65536),
                              options=options, payload=rng.randbytes(rng.randrange(0, 200)), urgent=rng.randrange(65536))
        return ipv4_packet(src, guest_ip, payload)
    if kind == 1:  # UDP, checksum right, wrong or absent
        body = rng.randbytes(rng.randrange(0, 300))
        header = struct.pack("!HHHH", rng.randrange(65536), rng.choice([7, 9, 53, rng.randrange(65536)]),
                             rng.choice([8 + len(body), rng.randrange(65536)]), 0)
        datagram = header + body
        if rng.randrange(2):
            c = checksum(socket.inet_aton(src) + socket.inet_aton(guest_ip) + struct.pack("!BBH", 0, 17, len(datagram)) +
                         datagram) or 0xFFFF
            datagram = datagram[:6] + struct.pack("!H", c) + datagram[8:]
        elif rng.randrange(2):
            datagram = datagram[:6] + struct.pack("!H", rng.randrange(1, 65536)) + datagram[8:]
        return ipv4_packet(src, guest_ip, datagram, proto=17)
    if kind == 2:  # ICMP: any type and code, sometimes quoting a TCP header of ours
        body = struct.pack("!BBHI", rng.choice([0, 3, 4, 5, 8, 11, 12, rng.randrange(256)]), rng.randrange(16), 0,
                           rng.getrandbits(32))
        if rng.randrange(2):
            quoted = ipv4_packet(guest_ip, rng.choice([PEER, PEER2]), struct.pack("!HHI", 7, rng.randrange(65536),
                                                                                  rng.getrandbits(32)),
                                 total_length=rng.randrange(65536))
            body += quoted[:rng.randrange(len(quoted) + 1)]
        else:
            body += rng.randbytes(rng.randrange(0, 100))
        body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        return ipv4_packet(src, guest_ip, body, proto=PROTO_ICMP)
    if kind == 3:  # a fragment of one of a few datagrams, anywhere, any length, overlapping or not
        return ipv4_packet(src, guest_ip, rng.randbytes(8 * rng.randrange(0, 40) + rng.randrange(2) * rng.randrange(8)),
                           proto=rng.choice([PROTO_TCP, 17, PROTO_ICMP, rng.randrange(256)]),
                           ident=rng.choice(idents), dont_fragment=False, more_fragments=bool(rng.randrange(3)),
                           fragment_offset=8 * rng.randrange(0, 200))
    if kind == 4:  # header fields that lie: IHL with random options, total length, TTL, version
        options = rng.randbytes(4 * rng.randrange(0, 11))
        payload = rng.randbytes(rng.randrange(0, 100))
        return ipv4_packet(src, guest_ip, payload, proto=rng.randrange(256), ttl=rng.randrange(3),
                           ihl=rng.choice([None, rng.randrange(16)]),
                           total_length=rng.choice([None, rng.randrange(65536)]), options=options,
                           version=rng.choice([4, 4, 4, rng.randrange(16)]))
    # Not for the guest at all: another destination, or a broadcast one.
    return ipv4_packet(src, rng.choice(["10.0.2.99", "255.255.255.255", "10.0.2.255", "8.8.8.8"]),
                       rng.randbytes(rng.randrange(0, 100)), proto=rng.choice([PROTO_TCP, 17, PROTO_ICMP]))


def test_random_ipv4_frames_never_stop_a_healthy_connection(guest):
    """A seeded storm of 2,000 random IPv4 frames (TCP, UDP, ICMP,
    fragments, lying headers, strange sources and destinations), a
    healthy connection echoing every 25th frame. Nothing answers a
    source that is not a unicast host (RFC 1122 3.2.2, 4.2.3.10), and
    every packet buffer comes back."""
    m, peer = guest
    rng = random.Random(0x1ce5704)
    guest_ip = peer.guest_ip
    before = stats(peer)
    peer.other.clear()
    healthy = Conversation(peer, port(), src=PEER2)
    healthy.connect({"mss": 1460, "sack_perm": True, "ts": (healthy.tsval(), 0)})
    idents = [0x7100 + i for i in range(6)]
    for i in range(2000):
        peer.send_ip(random_frame(rng, guest_ip, idents))
        if i % 25 == 24:
            chunk = b"storm %d" % i
            assert healthy.echo(chunk) == chunk, i
            for key, queue in peer.queues.items():  # the guest's RSTs to forged segments
                if key != healthy.key:
                    queue.clear()
    time.sleep(2.5)  # CONFIG_IPV4_REASSEMBLY_TIMEOUT_MS: incomplete datagrams are freed
    peer.pump(0.05)
    answered = [ipv4_destination(f) for f in peer.other]
    assert not [d for d in answered if d in SPECIAL_SOURCES], [(d, f.hex()[:120]) for d, f in zip(answered, peer.other)
                                                               if d in SPECIAL_SOURCES][:5]
    healthy.close()
    after = stats(peer)
    d = {k: after[k] - before[k] for k in after}
    assert d["ip_fragments"] > 50 and d["tcp_bad_checksum"] + d["tcp_malformed"] > 0
    assert d["ip_bad_source"] > 500 and d["ip_ttl_expired"] > 0 and d["ip_not_for_us"] > 0
    assert after["pool_free"] == m.stats_at_start["pool_free"], (after, m.stats_at_start)
    assert after["pool_failures"] == 0


def ipv4_destination(frame):
    """The destination address of an IPv4 frame, or None."""
    _, _, ethertype, payload = parse(frame)
    return socket.inet_ntoa(payload[16:20]) if ethertype == 0x0800 and len(payload) >= 20 else None
