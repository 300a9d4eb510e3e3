"""The network driver path end to end with raw Ethernet frames.

apps/netdemo reflects EtherType 0x88B5 frames (MACs swapped) from its
receive handler in the network thread; a Python peer (harness.rawnet.RawPeer)
sits on the other end of the guest's wire (`-netdev dgram` over unix
sockets) and checks order, loss, leaks (the netdev pool's free count after
the run equals the one at start), counters, and that bad frames are dropped
and counted while valid traffic goes on. No -icount: a host peer drives the
guest (NOTES.md).
"""
import random
import re

import pytest

from harness import build_image
from harness.rawnet import BROADCAST, RawPeer, mac_bytes, parse

GUEST_MAC = "52:54:00:12:34:56"
ETHERTYPE = 0x88B5


def stats(m, peer):
    peer.send(BROADCAST, ETHERTYPE, b"STATS")
    line = m.expect(r"netdemo: stats ([^\n]*)\n", timeout=10).group(1).decode()  # the whole line
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


@pytest.fixture
def netdemo(machine):
    image = build_image("netdemo")
    peer = RawPeer()
    m = machine(image, nic=peer, mac=GUEST_MAC)
    m.start()
    m.expect(r"netdemo: eth0 .*\n", timeout=30)
    ready = m.expect(r"netdemo: ready pool_free=(\d+) pool_total=(\d+)\r?\n", timeout=10)
    m.pool_free_at_start = int(ready.group(1))
    yield m, peer
    peer.close()


def test_link_mac_and_mtu_come_from_the_device(netdemo):
    m, peer = netdemo
    text = m.serial_text()
    assert f"netdemo: eth0 {GUEST_MAC} mtu 1500 link up" in text
    assert re.search(r"virtio-net: eth0 52:54:00:12:34:56 mtu 1500 link up", text)


@pytest.mark.parametrize("host_mtu", [67, 1, 68, 9000])
def test_device_mtu_below_the_ipv4_minimum_is_refused(machine, host_mtu):
    # QEMU's host_mtu offers VIRTIO_NET_F_MTU with that value (QEMU does not
    # check it). Below 68 (RFC 791's minimum, virtio 1.1 5.1.4.1) the driver
    # refuses the device and registers no eth0; 68 is used as given; above
    # 1500 it is capped to what a receive buffer holds.
    image = build_image("netdemo")
    peer = RawPeer()
    m = machine(image, nic=peer, mac=GUEST_MAC, extra_args=["-global", f"virtio-net-device.host_mtu={host_mtu}"])
    try:
        m.start()
        if host_mtu < 68:
            m.expect(rf"virtio-net: device MTU {host_mtu} is below the IPv4 minimum 68: device refused, no eth0",
                     timeout=30)
            m.expect(r"netdemo: no network interface", timeout=10)
            assert m.wait_exit(timeout=10) == 1
        else:
            expected = min(host_mtu, 1500)
            m.expect(rf"virtio-net: eth0 52:54:00:12:34:56 mtu {expected} link up", timeout=30)
            m.expect(rf"netdemo: eth0 {GUEST_MAC} mtu {expected} link up", timeout=10)
    finally:
        peer.close()


def test_frames_are_reflected_in_order_with_macs_swapped(netdemo):
    m, peer = netdemo
    # Ping-pong first, then a burst without waiting: order must hold in both.
    for i in range(20):
        peer.send(BROADCAST, ETHERTYPE, b"pp%04d" % i)
        f, others = peer.expect(lambda f: parse(f)[2] == ETHERTYPE, timeout=5)
        dst, src, _, payload = parse(f)
        assert dst == peer.mac and src == mac_bytes(GUEST_MAC)
        assert payload.startswith(b"pp%04d" % i)
    for i in range(32):
        peer.send(BROADCAST, ETHERTYPE, b"burst%04d" % i + bytes(range(200)))
    got = [parse(peer.expect(lambda f: parse(f)[2] == ETHERTYPE)[0])[3] for _ in range(32)]
    assert [p[:9] for p in got] == [b"burst%04d" % i for i in range(32)]
    assert all(p[9:209] == bytes(range(200)) for p in got)  # payload intact


def test_a_thousand_frames_without_loss_or_leak(netdemo):
    m, peer = netdemo
    window, total = 16, 1000
    sent = received = 0
    seen = []
    while received < total:
        while sent < total and sent - received < window:
            peer.send(BROADCAST, ETHERTYPE, b"n%06d" % sent + bytes(sent % 1400))
            sent += 1
        f, others = peer.expect(lambda f: parse(f)[2] == ETHERTYPE, timeout=5)
        assert not others
        seen.append(int(parse(f)[3][1:7]))
        received += 1
    assert seen == list(range(total))
    assert peer.drain() == []  # nothing duplicated
    s = stats(m, peer)
    assert s["reflected"] == total
    assert s["reflect_failures"] == 0 and s["tx_drops"] == 0 and s["tx_errors"] == 0
    assert s["rx_drops"] == 0 and s["rx_errors"] == 0 and s["queue_full"] == 0
    assert s["alloc_failures"] == 0
    # No leak: every buffer is back (the RX ring holds its share, as at start).
    assert s["tx_in_flight"] == 0 and s["rx_posted"] == s["rx_ring"]
    assert s["pool_free"] == m.pool_free_at_start
    assert s["rx_packets"] == total + 1  # + the STATS frame
    assert s["tx_packets"] == total


def test_bad_frames_are_counted_while_a_valid_stream_continues(netdemo):
    m, peer = netdemo
    rng = random.Random(6)
    guest = mac_bytes(GUEST_MAC)
    runts = unknown = 0
    valid = 300
    for i in range(valid):
        kind = i % 4
        if kind == 1:   # runt: shorter than an Ethernet header, never padded
            peer.send_raw(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 14))), pad=False)
            runts += 1
        elif kind == 2:  # an EtherType nobody handles
            peer.send(guest, rng.choice([0x0800, 0x0806, 0x86DD, 0x1234, 0xFFFF]), b"nobody home")
            unknown += 1
        elif kind == 3:  # garbage of random length behind our address
            ethertype = rng.randrange(0x600, 0x10000)
            if ethertype == ETHERTYPE:
                ethertype += 1
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 1500)))
            peer.send_raw(guest + bytes(rng.randrange(256) for _ in range(6)) + ethertype.to_bytes(2, "big") + body)
            unknown += 1
        if i % 50 == 7:  # longer than any Ethernet frame: QEMU drops it before the guest
            peer.send_raw(guest + peer.mac + ETHERTYPE.to_bytes(2, "big") + bytes(3000))
        peer.send(guest, ETHERTYPE, b"v%05d" % i)
        f, others = peer.expect(lambda f: parse(f)[2] == ETHERTYPE, timeout=5)
        assert parse(f)[3].startswith(b"v%05d" % i)
        assert not others
    s = stats(m, peer)
    assert s["reflected"] == valid
    assert s["runts"] == runts and s["rx_errors"] == runts
    assert s["unknown_ethertype"] == unknown and s["rx_drops"] == unknown
    assert s["pool_free"] == m.pool_free_at_start and s["alloc_failures"] == 0


def test_exit_command_stops_the_machine(netdemo):
    m, peer = netdemo
    peer.send(BROADCAST, ETHERTYPE, b"EXIT")
    assert m.wait_exit(timeout=10) == 0
