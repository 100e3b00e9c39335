"""When each send request crossed the wire: a packet capture on the loopback interface, in a process of its own.

    python -m bench.wire --port 41234          # prints "ready", then on SIGTERM one kernel timestamp a line

The stand-in of tests/standin/ timestamps a request once its Python thread has read and parsed it, in the
benchmark's own process — the process that also posts every status callback. On a busy machine that stamp can be
tens of milliseconds after the request arrived, and not by the same amount for every request, so "most in any one
second" at the stand-in mixes the hotline's pace with the benchmark's own jitter. This process only reads packets:
each POST to a `…/Messages.json` or `…/Calls.json` on `--port` is stamped by the kernel as it crossed `lo`
(SO_TIMESTAMPNS), which is what a carrier's edge would see. Needs CAP_NET_RAW (root); without it, it says so and exits 3;
if the kernel dropped packets (the capture fell behind), it writes what it has, says so, and exits 4. IPv4 only (the
stand-in listens on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35  # linux/asm-generic/socket.h; SCM_TIMESTAMPNS is the same number
PACKET_OUTGOING = 4  # each loopback packet is seen twice, leaving and arriving: count it once
SOL_PACKET, PACKET_STATISTICS = 263, 6  # linux/socket.h, linux/if_packet.h: packets received and dropped
SO_RCVBUFFORCE = 33
SENDS = (b"/Messages.json", b"/Calls.json")


def send_request(frame: bytes, port: int) -> bool:
    """Is this Ethernet frame an IPv4 TCP segment to `port` that starts a POST of a message or a call?"""
    if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
        return False
    ip = frame[14:]
    header = (ip[0] & 0x0F) * 4
    if ip[9] != 6 or len(ip) < header + 20:  # not TCP
        return False
    tcp = ip[header:]
    if struct.unpack_from("!H", tcp, 2)[0] != port:
        return False
    payload = tcp[(tcp[12] >> 4) * 4:]
    if not payload.startswith(b"POST "):
        return False
    line = payload.split(b"\r\n", 1)[0]
    return any(line.split(b"?", 1)[0].endswith(s) or s + b" " in line for s in SENDS)


def can_capture() -> bool:
    """May this process open a packet socket (root, or CAP_NET_RAW)?"""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)).close()
    except (PermissionError, OSError):
        return False
    return True


def capture(port: int, out) -> int:
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    except (PermissionError, OSError):
        print("needs CAP_NET_RAW", file=sys.stderr, flush=True)
        return 3
    sock.bind(("lo", 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)  # past net.core.rmem_max: we are root
    except OSError:
        pass
    stamps: list[float] = []
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    sock.settimeout(0.2)
    print("ready", flush=True)
    draining_until = None
    while True:
        if stopping and draining_until is None:  # what is queued now is read (half a second at most), then no more
            sock.setblocking(False)
            draining_until = time.monotonic() + 0.5
        if draining_until is not None and time.monotonic() > draining_until:
            break
        try:
            frame, ancillary, _, address = sock.recvmsg(65536, socket.CMSG_SPACE(16))
        except (TimeoutError, InterruptedError):
            continue
        except BlockingIOError:
            break
        if address[2] == PACKET_OUTGOING or not send_request(frame, port):
            continue
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", data[:16])
                stamps.append(seconds + nanoseconds / 1e9)
    _, dropped = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    out.write("".join(f"{t:.6f}\n" for t in stamps))
    out.flush()
    if dropped:  # the count would be short: say so, and the benchmark does not trust it
        print(f"{dropped} packets dropped by the kernel", file=sys.stderr, flush=True)
        return 4
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    return capture(args.port, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
