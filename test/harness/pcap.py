"""Reads the TCP/IPv4 segments of a pcap file written by QEMU's
filter-dump (Ethernet link type), for tests that check what the guest
put on the wire."""
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class TcpSegment:
    source: str
    destination: str
    source_port: int
    destination_port: int
    seq: int
    ack: int
    flags: int
    window: int
    payload_length: int


def _address(raw):
    return ".".join(str(b) for b in raw)


def tcp_segments(path):
    """Every TCP segment in the file, in capture order."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data, 0)[0]
    assert magic == 0xA1B2C3D4, f"{path}: not a little-endian microsecond pcap"
    offset = 24
    while offset + 16 <= len(data):
        captured = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16:offset + 16 + captured]
        offset += 16 + captured
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack_from(">H", ip, 2)[0]
        tcp = ip[ihl:total]
        sport, dport, seq, ack = struct.unpack_from(">HHII", tcp, 0)
        header = (tcp[12] >> 4) * 4
        yield TcpSegment(_address(ip[12:16]), _address(ip[16:20]), sport, dport, seq, ack, tcp[13],
                         struct.unpack_from(">H", tcp, 14)[0], total - ihl - header)
