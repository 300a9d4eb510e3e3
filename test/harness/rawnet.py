"""Network back ends for a Machine's NIC.

RawPeer: the guest's Ethernet wire ends in this Python object. QEMU's
`-netdev dgram` with unix sockets carries one Ethernet frame per datagram
(destination MAC first; no virtio-net header, length prefix or FCS). QEMU
binds its own end (local.path); the peer must have bound its end
(remote.path) before QEMU starts, which the constructor does.

UserNet: QEMU's SLIRP user networking (10.0.2.0/24, gateway 10.0.2.2,
guest 10.0.2.15 by DHCP) with host port forwards for tests that talk TCP
to the guest from the host.

Either is passed as Machine(..., nic=...), which adds the virtio-net
device (modern interface) to the QEMU command line.
"""
import os
import socket
import struct
import tempfile
import time

BROADCAST = b"\xff" * 6
MIN_FRAME = 60  # without FCS


def mac_bytes(text):
    return bytes(int(x, 16) for x in text.split(":"))


def mac_text(raw):
    return ":".join(f"{b:02x}" for b in raw)


def frame(dst, src, ethertype, payload=b""):
    """An Ethernet frame (dst/src as bytes or "aa:bb:..." text), not padded."""
    dst = mac_bytes(dst) if isinstance(dst, str) else dst
    src = mac_bytes(src) if isinstance(src, str) else src
    return dst + src + struct.pack("!H", ethertype) + payload


def parse(raw):
    """(dst, src, ethertype, payload) of a frame, MACs as bytes."""
    if len(raw) < 14:
        raise ValueError(f"runt frame ({len(raw)} bytes)")
    return raw[0:6], raw[6:12], struct.unpack("!H", raw[12:14])[0], raw[14:]


class RawPeer:
    """A scripted Ethernet station on the guest's wire."""

    def __init__(self, mac="02:00:00:00:00:01", workdir=None):
        self.mac = mac_bytes(mac)
        self._own_dir = workdir is None
        # AF_UNIX paths are limited to ~108 bytes: keep them short.
        self.workdir = workdir or tempfile.mkdtemp(prefix="tnet-")
        self.guest_path = os.path.join(self.workdir, "g.sock")  # QEMU binds this
        self.peer_path = os.path.join(self.workdir, "p.sock")   # we do
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.peer_path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sent = 0
        self.received = 0

    def netdev_arg(self, netdev_id):
        return (f"dgram,id={netdev_id},local.type=unix,local.path={self.guest_path},"
                f"remote.type=unix,remote.path={self.peer_path}")

    def send_raw(self, data, pad=True):
        """Sends bytes as one frame; pads to 60 bytes unless pad=False (runts)."""
        if pad and len(data) < MIN_FRAME:
            data = data + bytes(MIN_FRAME - len(data))
        deadline = time.monotonic() + 5
        while True:
            try:
                self.sock.sendto(data, self.guest_path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                # QEMU has not bound its end yet (it does so while starting).
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
            except (BlockingIOError, TimeoutError):
                # QEMU's receive queue is full (a unix datagram socket
                # queues only net.unix.max_dgram_qlen frames, 10 by
                # default); recv() may have left a short timeout on the
                # socket, which then applies to sendto as well. Retry.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.001)
        self.sent += 1

    def send(self, dst, ethertype, payload=b"", src=None):
        self.send_raw(frame(dst, src or self.mac, ethertype, payload))

    def recv(self, timeout=5.0):
        """The next frame from the guest, or None after `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        self.received += 1
        return data

    def expect(self, predicate, timeout=5.0):
        """Receives until predicate(frame) holds; returns that frame. Frames
        that do not match are returned in the second element of the tuple
        (so callers can check nothing unexpected arrived)."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching frame within {timeout}s ({len(skipped)} others)")
            f = self.recv(remaining)
            if f is None:
                continue
            if predicate(f):
                return f, skipped
            skipped.append(f)

    def drain(self, quiet=0.2):
        """Discards frames until none arrives for `quiet` seconds."""
        frames = []
        while (f := self.recv(quiet)) is not None:
            frames.append(f)
        return frames

    def close(self):
        self.sock.close()
        for p in (self.peer_path, self.guest_path):
            try:
                os.unlink(p)
            except OSError:
                pass
        if self._own_dir:
            try:
                os.rmdir(self.workdir)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class UserNet:
    """SLIRP user networking; hostfwd = [(host_port, guest_port), ...] (TCP,
    on 127.0.0.1; pick host ports with harness.machine.free_port())."""

    def __init__(self, hostfwd=(), udpfwd=(), restrict=False):
        self.hostfwd = list(hostfwd)
        self.udpfwd = list(udpfwd)
        self.restrict = restrict

    def netdev_arg(self, netdev_id):
        arg = f"user,id={netdev_id}"
        for host, guest in self.hostfwd:
            arg += f",hostfwd=tcp:127.0.0.1:{host}-:{guest}"
        for host, guest in self.udpfwd:
            arg += f",hostfwd=udp:127.0.0.1:{host}-:{guest}"
        if self.restrict:
            arg += ",restrict=on"
        return arg

    def close(self):
        pass
