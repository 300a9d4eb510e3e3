"""The guest's TCP against a scripted raw-frame peer (issue 6's proof).

apps/tcpecho (echo on port 7, counters on port 11) runs with
configs/tcpecho-raw.config (the tcp library's default per-source and SYN
queue limits, a 2 s reassembly timeout). Its NIC's wire ends in
harness.rawnet.RawPeer; harness.tcppeer speaks ARP/IPv4/TCP on it by hand,
so each case decides exactly what the guest sees and asserts what it sends
back: options in the handshake, SACK for out-of-order data, duplicate
ACKs, RTO backoff, fast retransmit, zero-window probes, RFC 5961 RST
checks, the per-source SYN limit, and malformed frames being dropped and
counted while a healthy connection keeps echoing, with no packet buffer
leaked. No -icount: a host peer drives the guest (NOTES.md), so timing
assertions are ratios with wide margins.

One machine serves the module (boot is the slow part); each case uses its
own source ports and leaves its connections closed or reset.
"""
import itertools
import re
import time

import pytest

from harness import build_image
from harness.rawnet import RawPeer
from harness.tcppeer import (ACK, FIN, PSH, RST, SYN, Conversation, TcpPeer, ipv4_packet, seq_add, seq_diff,
                             tcp_segment)

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


def stats(peer):
    """tcpecho's counters (port 11), read over a conversation of our own."""
    c = Conversation(peer, port(), dport=11)
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
    synack = c.connect(dict(ALL_OPTIONS, ts=(c.tsval(), 0)))
    o = synack.options
    assert "mss" in o and 536 <= o["mss"] <= 1460, synack
    assert "wscale" in o and 0 <= o["wscale"] <= 14, synack
    assert o.get("sack_perm"), synack
    assert "ts" in o and o["ts"][1] != 0, synack  # echoes our TSval
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
    assert reset.seq == c.rcv_nxt or reset.flags & ACK, reset
