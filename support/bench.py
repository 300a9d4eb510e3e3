#!/usr/bin/python3
"""make bench: Tessera's figures, written to build/bench/results.json.

Method (shared/BENCHMARKS.md): guest-instruction figures come from QEMU
-icount shift=0, where rdinstret counts guest instructions exactly; wall
times are medians of interleaved runs (A B A B ...) against a floor kernel
that exits on its first instruction, so host noise hits both alike.
Benchmarks report; they never fail the build.
"""
import ctypes
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "bench")
CROSS = os.environ.get("CROSS_COMPILE", "riscv64-linux-gnu-")
RUNS = int(os.environ.get("BENCH_RUNS", "21"))
# Interleaved SLIRP/TAP pairs of the TCP wall-clock runs: on a two-core host
# they swing by a fifth from run to run, so six pairs (about a minute).
TCP_RUNS = int(os.environ.get("BENCH_TCP_RUNS", "6"))


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def build(app):
    build_dir = os.path.join(OUT, app)
    r = subprocess.run(["make", "-C", ROOT, f"APP={app}", f"BUILD={build_dir}", "NO_DEPS=1"],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"bench: building {app} failed:\n{r.stdout}{r.stderr}")
    with open(os.path.join(build_dir, "qemu.json")) as f:
        return os.path.join(build_dir, f"{app}.elf"), json.load(f)


def build_floor():
    elf = os.path.join(OUT, "floor.elf")
    # -N: do not load the ELF headers below .text (QEMU would jump there).
    sh([f"{CROSS}gcc", "-nostdlib", "-static", "-march=rv64gc", "-mabi=lp64d", "-Wl,-Ttext=0x80200000",
        "-Wl,--build-id=none", "-Wl,-N", "-o", elf, os.path.join(ROOT, "support", "bench", "floor.S")])
    return elf


def qemu_cmd(qemu, kernel=None, extra=()):
    args = list(qemu["args"])
    if kernel:
        args[args.index("-kernel") + 1] = kernel
    return [qemu["qemu"]] + args + ["-display", "none", "-monitor", "none", "-serial", "stdio"] + list(extra)


def image_size(elf):
    text, data, bss = (int(x) for x in sh([f"{CROSS}size", elf]).stdout.splitlines()[1].split()[:3])
    return text, data, bss


def boot_instructions(qemu):
    out = subprocess.run(qemu_cmd(qemu, extra=["-icount", "shift=0"]), capture_output=True, text=True,
                         timeout=60).stdout
    m = re.search(r"boot: instret (\d+) at kernel entry, (\d+) at main", out)
    if not m:
        sys.exit(f"bench: helloworld did not report its boot counts:\n{out[-2000:]}")
    return int(m.group(1)), int(m.group(2))


def mmbench(qemu, memory):
    """Allocator costs and per-init-step costs, guest instructions."""
    args = qemu_cmd(qemu, extra=["-icount", "shift=0"])
    args[args.index("-m") + 1] = memory
    out = subprocess.run(args, capture_output=True, text=True, timeout=120).stdout
    if "mmbench: done" not in out:
        sys.exit(f"bench: mmbench did not finish:\n{out[-2000:]}")
    figures = {}
    for m in re.finditer(r"^mmbench: (init )?(\S+) (\d+)\s*$", out, re.M):
        figures[("init." if m.group(1) else "") + m.group(2)] = int(m.group(3))
    return figures


def schedbench(qemu):
    out = subprocess.run(qemu_cmd(qemu, extra=["-icount", "shift=0"]), stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=120).stdout
    if "schedbench: done" not in out:
        sys.exit(f"bench: schedbench did not finish:\n{out[-2000:]}")
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^schedbench: (\S+) (\d+)\s*$", out, re.M)}


def rtdemo(qemu, options):
    """One run of apps/rtdemo under -icount shift=0 (1 guest ns = 1 instruction):
    its wake-up histogram summary, in ns."""
    # sleep=off: when every thread sleeps, the virtual clock jumps to the
    # next timer deadline, as a real hart's timer would fire on time. With
    # the default sleep=on QEMU waits for it in host time and delivers the
    # interrupt milliseconds late, with the host's noise, on idle runs.
    out = subprocess.run(qemu_cmd(qemu, extra=["-icount", "shift=0,sleep=off", "-append", options]),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300).stdout
    if "rtdemo: done" not in out:
        sys.exit(f"bench: rtdemo {options} did not finish:\n{out[-2000:]}")
    hist = re.search(r"histogram wakeup count=(\d+) min=(\d+) mean=(\d+) p50=\d+ p90=\d+ p99=(\d+) p999=\d+ "
                     r"max=(\d+)", out)
    misses = int(re.search(r"rtdemo: jobs=\d+ misses=(\d+)", out).group(1))
    return dict(zip(("count", "min", "mean", "p99", "max"), map(int, hist.groups())), misses=misses)


def sync_figures(record, figures):
    """The sync library's costs beyond the mutex and semaphore fast paths
    (schedbench, guest instructions)."""
    record("sync.spinlock_pair", figures["spinlock_pair"], "guest instructions per pair",
           config="schedbench_defconfig")
    record("sync.semaphore_handover_latency", figures["semaphore_handover_latency"],
           "guest instructions, release to waiter running", config="schedbench_defconfig")
    record("sync.condvar_signal_wait_round_trip", figures["condvar_signal_wait_round_trip"],
           "guest instructions per round trip", config="schedbench_defconfig")


def netdemo(qemu, frames=2000):
    """Guest instructions per reflected frame: apps/netdemo under -icount
    shift=0 on a -netdev dgram wire whose other end is this process. The
    peer sends one 60-byte frame at a time and waits for its reflection, so
    each frame pays the whole path: device interrupt, netdev queue, network
    thread wake-up, dispatch, the reflect handler, transmit, the TX
    completion interrupt, RX refill. Idle time is taken out: under -icount
    rdinstret follows QEMU's virtual clock, which runs on while the hart
    waits in wfi (netdemo subtracts the scheduler's idle ticks).
    -icount shift=0 without sleep=off: on QEMU 7.2, sleep=off with frames
    arriving from outside wedges the vCPU within a few frames (it stops
    right after a stimecmp write in the timer interrupt, see
    docs/libs/netdev.md); instret counts are exact either way."""
    sys.path.insert(0, os.path.join(ROOT, "test"))
    from harness.rawnet import BROADCAST, RawPeer

    with RawPeer() as peer:
        args = qemu_cmd(qemu, extra=["-icount", "shift=0", "-global", "virtio-mmio.force-legacy=false",
                                     "-netdev", peer.netdev_arg("n0"), "-device", "virtio-net-device,netdev=n0"])
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        try:
            out = ""
            while "netdemo: ready" not in out:
                line = proc.stdout.readline()
                if not line:
                    sys.exit(f"bench: netdemo did not start:\n{out[-2000:]}")
                out += line

            def ping(n):
                for i in range(n):
                    peer.send(BROADCAST, 0x88B5, b"bench%06d" % i)
                    if peer.recv(5) is None:
                        sys.exit("bench: netdemo stopped reflecting")

            ping(200)  # warm: caches, branch predictors' QEMU equivalent (TB cache)
            peer.send(BROADCAST, 0x88B5, b"BENCH-BEGIN")
            ping(frames)
            peer.send(BROADCAST, 0x88B5, b"BENCH-END")
            while True:
                line = proc.stdout.readline()
                if os.environ.get("BENCH_VERBOSE") and "netdemo: bench" in line:
                    print(line.strip())
                m = re.search(r"netdemo: bench frames=(\d+) instructions=\d+ idle=\d+ per_frame=(\d+)", line)
                if m:
                    break
                if not line:
                    sys.exit("bench: netdemo printed no bench line")
            peer.send(BROADCAST, 0x88B5, b"EXIT")
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if int(m.group(1)) != frames:
        sys.exit(f"bench: netdemo reflected {m.group(1)} of {frames} frames")
    return int(m.group(2))


def netstack(qemu, icount, round_trips=1000, pings=200):
    """apps/netstack on SLIRP (-netdev user): UDP echo round trips driven
    from this process through hostfwd (64-byte payloads, one at a time)
    and guest pings of the gateway. With icount: guest instructions per
    round trip / per ping, idle excluded (netstack subtracts the
    scheduler's idle ticks as netdemo does; -icount shift=0 without
    sleep=off, see netdemo()). Without: wall-clock medians in us (host
    sendto->recvfrom for UDP, the guest's own RTT for ICMP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    extra = ["-global", "virtio-mmio.force-legacy=false", "-netdev", f"user,id=n0,hostfwd=udp:127.0.0.1:{port}-:7",
             "-device", "virtio-net-device,netdev=n0"]
    if icount:
        extra = ["-icount", "shift=0"] + extra
    proc = subprocess.Popen(qemu_cmd(qemu, extra=extra), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(5)
    target = ("127.0.0.1", port)

    def line_matching(pattern):
        while True:
            line = proc.stdout.readline()
            if not line:
                sys.exit(f"bench: netstack stopped before {pattern!r}")
            if os.environ.get("BENCH_VERBOSE") and "netstack: bench" in line:
                print(line.strip())
            m = re.search(pattern, line)
            if m:
                return m

    try:
        line_matching(r"netstack: udp echo ready")
        payload = bytes(64)
        walls = []
        for i in range(100 + round_trips):
            if i == 100:
                sock.sendto(b"BENCH-BEGIN", target)
                sock.recvfrom(2048)
            start = time.perf_counter()
            sock.sendto(payload, target)
            sock.recvfrom(2048)
            if i >= 100:
                walls.append(time.perf_counter() - start)
        sock.sendto(b"BENCH-END", target)
        sock.recvfrom(2048)
        udp = line_matching(r"netstack: bench udp_echo round_trips=(\d+) per_round_trip=(\d+)")
        sock.sendto(b"PING %d" % pings, target)
        ping = line_matching(r"netstack: bench icmp_ping count=\d+ ok=(\d+) per_ping=(\d+) rtt_us_median=(\d+)")
        sock.recvfrom(2048)
        sock.sendto(b"EXIT", target)
        proc.wait(timeout=30)
    finally:
        sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if int(udp.group(1)) != round_trips or int(ping.group(1)) != pings:
        sys.exit(f"bench: netstack lost round trips ({udp.group(1)}/{round_trips} udp, {ping.group(1)}/{pings} pings)")
    if icount:
        return {"udp": int(udp.group(2)), "icmp": int(ping.group(2))}
    return {"udp": round(statistics.median(walls) * 1e6, 1), "icmp": int(ping.group(3))}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def qemu_thread_cpu(pid):
    """Host seconds so far of QEMU's threads, from schedstat: "main" is
    the main loop thread, where SLIRP (or the TAP back end) and the
    virtio-net device model run;
    "vcpu" the TCG thread that runs the guest (it sleeps while the guest
    waits in wfi). For each, the time on a CPU and the time it was ready
    but waiting for one (host contention)."""
    cpu = {"main": 0.0, "vcpu": 0.0, "main_waiting": 0.0, "vcpu_waiting": 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                on_cpu, waiting = (int(x) / 1e9 for x in f.read().split()[:2])
        except FileNotFoundError:
            continue  # a worker thread that just ended
        party = "main" if int(tid) == pid else "vcpu" if "TCG" in comm else None
        if party:
            cpu[party] += on_cpu
            cpu[f"{party}_waiting"] += waiting
    return cpu


TCPECHO_PORTS = (7, 8, 9, 11, 19)
# Who uses host CPU in a tcpbench run, as (its key in tcpbench's figures,
# its name in the recorded figures, what it is), through SLIRP and TAP.
SLIRP_PARTIES = (("main", "slirp", "QEMU's main loop (SLIRP, device model)"),
                 ("vcpu", "vcpu", "QEMU's TCG vCPU thread"),
                 ("client", "client", "the benchmark's client"))
TAP_PARTIES = (("main", "main", "QEMU's main loop (TAP, device model)"),
               ("vcpu", "vcpu", "QEMU's TCG vCPU thread"))


class Slirp:
    """The guest behind QEMU's user-mode network (SLIRP), reached through
    hostfwd on loopback: what `make run` and the tests use."""
    name = "SLIRP"

    def __init__(self):
        self.ports = {p: free_port() for p in TCPECHO_PORTS}

    def netdev(self):
        return "user,id=n0," + ",".join(f"hostfwd=tcp:127.0.0.1:{self.ports[p]}-:{p}" for p in self.ports)

    def command(self, cmd):
        return cmd

    def connect(self, port):
        return socket.create_connection(("127.0.0.1", self.ports[port]), timeout=60)


class Tap:
    """The same image with SLIRP taken out: its NIC on a TAP device in a
    network namespace of its own, where the host's Linux TCP answers at
    10.0.2.2, the address SLIRP's gateway has (so the image's static
    addressing needs no change and nothing clashes with the host's own
    networks). What it moves is what the guest and QEMU's virtio-net
    model can do without SLIRP: set against the SLIRP figures, it says
    which one limits them. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and
    /dev/net/tun; without them the figures are skipped, with the reason."""
    name = "TAP"
    NAMESPACE = "tessera-bench"
    CLONE_NEWNET = 0x40000000

    def __enter__(self):
        if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
            raise OSError("needs root and /dev/net/tun")
        subprocess.run(["ip", "netns", "del", self.NAMESPACE], capture_output=True)  # a stale one
        try:
            for cmd in (["ip", "netns", "add", self.NAMESPACE],
                        ["ip", "-n", self.NAMESPACE, "link", "set", "lo", "up"],
                        ["ip", "-n", self.NAMESPACE, "tuntap", "add", "dev", "tap0", "mode", "tap"],
                        ["ip", "-n", self.NAMESPACE, "addr", "add", "10.0.2.2/24", "dev", "tap0"],
                        ["ip", "-n", self.NAMESPACE, "link", "set", "tap0", "up"]):
                sh(cmd)
        except (OSError, subprocess.CalledProcessError) as e:
            self.__exit__()
            raise OSError(f"{' '.join(e.cmd) if hasattr(e, 'cmd') else e}: "
                          f"{getattr(e, 'stderr', '') or e}".strip()) from None
        return self

    def __exit__(self, *_):
        subprocess.run(["ip", "netns", "del", self.NAMESPACE], capture_output=True)

    def netdev(self):
        return "tap,id=n0,ifname=tap0,script=no,downscript=no"

    def command(self, cmd):
        return ["ip", "netns", "exec", self.NAMESPACE] + cmd  # execs QEMU: its pid stays the child's

    def connect(self, port):
        # A socket belongs to the namespace its creator was in: enter the
        # bench's namespace for the socket() call only.
        libc = ctypes.CDLL(None, use_errno=True)
        with open("/proc/self/ns/net") as home, open(f"/run/netns/{self.NAMESPACE}") as bench_ns:
            if libc.setns(bench_ns.fileno(), self.CLONE_NEWNET):
                raise OSError(ctypes.get_errno(), "setns into the bench namespace")
            try:
                s = socket.socket()
            finally:
                if libc.setns(home.fileno(), self.CLONE_NEWNET):
                    sys.exit("bench: could not return to the host's network namespace")
        s.settimeout(60)
        s.connect(("10.0.2.15", port))
        return s


def tcpbench(qemu, network, icount):
    """apps/tcpecho through `network` (Slirp or Tap). Wall clock
    (icount=False): MB/s each way over 64 MiB and connections per second.
    Under -icount shift=0 (icount=True; no sleep=off, so idle time still
    follows the host and SLIRP's peer sees sane timers): guest
    instructions per byte and per connection, from the guest's counters
    (port 8) read before and after each run; they include the driver, IP
    and checksums. The idle time is taken out (rdinstret runs on in wfi
    under -icount, so the raw count also holds however long the host
    took: it is kept as *_with_idle). Both modes: the share of each run
    the guest was idle (from the scheduler's idle ticks) and each QEMU
    thread's host CPU time, which say where the time goes."""
    extra = ["-netdev", network.netdev(), "-device", "virtio-net-device,netdev=n0",
             "-global", "virtio-mmio.force-legacy=false",
             "-name", "tcpecho,debug-threads=on"]  # names the vCPU thread for qemu_thread_cpu()
    if icount:
        extra += ["-icount", "shift=0"]
    proc = subprocess.Popen(network.command(qemu_cmd(qemu, extra=extra)), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if "tcpecho: listening" in line:
                break
        else:
            sys.exit(f"bench: tcpecho did not start ({network.name})")

        def instret():
            with network.connect(8) as s:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    data += chunk
                all_, busy, idle_ns, now_ns = (int(x) for x in data.split())
                own = os.times()  # the client is this process: its sockets' host TCP work runs in its syscalls
                return {"all": all_, "busy": busy, "idle": idle_ns, "now": now_ns, "wall": time.perf_counter(),
                        "client": own.user + own.system, **qemu_thread_cpu(proc.pid), **guest_counters()}

        def guest_counters():
            # tcpecho's port 11: one line of name=value counters. The
            # segments the guest sends, its NIC's interrupts and transmit
            # kicks: what each costs QEMU and SLIRP a round of work.
            with network.connect(11) as s:
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            fields = dict(f.split("=", 1) for f in data.decode().split() if "=" in f)
            return {"segments_out": int(fields["tcp_out"]), "interrupts": int(fields["nic_interrupts"]),
                    "tx_kicks": int(fields["nic_tx_kicks"])}

        def account(name, i0, i1, units, per):
            figures[f"{name}_idle_share"] = (i1["idle"] - i0["idle"]) / (i1["now"] - i0["now"])
            wall = i1["wall"] - i0["wall"]
            for party in ("main", "vcpu", "client"):
                figures[f"{name}_{party}_cpu_share"] = (i1[party] - i0[party]) / wall
            # The guest had work (not idle) but its vCPU thread neither ran
            # nor waited for a host CPU: it was blocked in QEMU, on the
            # big lock the main loop holds while SLIRP and the device model
            # run (MMIO, interrupts).
            figures[f"{name}_vcpu_waiting_share"] = (i1["vcpu_waiting"] - i0["vcpu_waiting"]) / wall
            figures[f"{name}_vcpu_blocked_share"] = max(
                0.0, 1 - figures[f"{name}_idle_share"] - figures[f"{name}_vcpu_cpu_share"]
                - figures[f"{name}_vcpu_waiting_share"])
            for counter in ("segments_out", "interrupts", "tx_kicks"):
                figures[f"{name}_{counter}"] = (i1[counter] - i0[counter]) / per
            figures[f"{name}_instructions"] = (i1["busy"] - i0["busy"]) / units
            figures[f"{name}_instructions_with_idle"] = (i1["all"] - i0["all"]) / units

        total = 64 << 20
        figures = {}
        # host -> guest (discard)
        block = bytes(1 << 16)
        i0 = instret()
        t0 = time.perf_counter()
        with network.connect(9) as s:
            for _ in range(total // len(block)):
                s.sendall(block)
            s.shutdown(socket.SHUT_WR)
            s.recv(1)  # the guest's close: everything was read
        t1 = time.perf_counter()
        i1 = instret()
        figures["receive_mb_s"] = total / (t1 - t0) / 1e6
        account("receive", i0, i1, total, total / (1 << 20))
        # guest -> host (source)
        i0 = instret()
        t0 = time.perf_counter()
        got = 0
        with network.connect(19) as s:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        t1 = time.perf_counter()
        i1 = instret()
        if got != total:
            sys.exit(f"bench: source sent {got} bytes, expected {total}")
        figures["send_mb_s"] = total / (t1 - t0) / 1e6
        account("send", i0, i1, total, total / (1 << 20))
        # connections: connect, 1-byte echo, close
        n = 200
        i0 = instret()
        t0 = time.perf_counter()
        for _ in range(n):
            with network.connect(7) as s:
                s.sendall(b"x")
                assert s.recv(1) == b"x"
                s.shutdown(socket.SHUT_WR)
                s.recv(1)
        t1 = time.perf_counter()
        i1 = instret()
        figures["connections_per_s"] = n / (t1 - t0)
        account("connection", i0, i1, n, n)
        return figures
    finally:
        proc.kill()
        proc.wait()


def wall_times(qemu, floor_elf):
    """Interleaved runs of the floor kernel and helloworld; seconds."""
    floor, hello = [], []
    for _ in range(RUNS):
        for kernel, sink in ((floor_elf, floor), (None, hello)):
            start = time.perf_counter()
            # stdin from /dev/null: -serial stdio reads it, and an inherited
            # terminal or pipe would change what QEMU does while it runs.
            r = subprocess.run(qemu_cmd(qemu, kernel), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               timeout=60)
            sink.append(time.perf_counter() - start)
            if r.returncode != 0:
                sys.exit(f"bench: {'floor' if kernel else 'helloworld'} exited with {r.returncode}")
    if os.environ.get("BENCH_VERBOSE"):
        print("floor ms:", [round(x * 1000) for x in floor])
        print("app ms:  ", [round(x * 1000) for x in hello])
    return floor, hello


def guest_work_ms_per_mb(run, way):
    """While traffic lasts the guest spends its idle time polling the
    receive ring (docs/libs/virtio-net.md), on a CPU: the vCPU thread's
    time less that is what the guest's work cost, in ms of host CPU per
    MB of one tcpbench run's `way` (receive or send)."""
    return max(0.0, run[f"{way}_vcpu_cpu_share"] - run[f"{way}_idle_share"]) / run[f"{way}_mb_s"] * 1000


def record_host_cpu_per_mb(record, runs, parties, suffix):
    """Host CPU time per MB moved, of each party (QEMU's threads, the
    client), the median over the runs of each run's own ratio. Steadier
    than the shares or MB/s on a loaded host: a thread that waits for a
    CPU slows the run but costs no more per MB. Where one party costs more
    per MB than another, it is the one a host with a core for each would
    wait for."""
    for way in ("receive", "send"):
        for party, name, what in parties:
            value = statistics.median(run[f"{way}_{party}_cpu_share"] / run[f"{way}_mb_s"] * 1000 for run in runs)
            record(f"tcp.{way}_{name}_ms_per_mb{suffix}", round(value, 2),
                   f"ms of host CPU per MB, {what}", config="tcpecho_defconfig")
        value = statistics.median(guest_work_ms_per_mb(run, way) for run in runs)
        record(f"tcp.{way}_guest_work_ms_per_mb{suffix}", round(value, 2),
               "ms of host CPU per MB, the vCPU thread less the guest's idle (polling) time",
               config="tcpecho_defconfig")


def record_without_slirp(record, walls, taps):
    """The TCP figures through TAP, and each as a multiple of the SLIRP
    run it alternated with (the median of the pairs' ratios): how much
    faster the same guest goes when SLIRP is not in the way."""
    tap = {key: statistics.median(run[key] for run in taps) for key in taps[0]}
    for figure, unit in (("receive_mb_s", "MB/s host->guest (64 MiB)"), ("send_mb_s", "MB/s guest->host (64 MiB)"),
                         ("connections_per_s", "connections/s (1-byte echo)")):
        name = {"receive_mb_s": "receive_throughput", "send_mb_s": "send_throughput",
                "connections_per_s": "connections_per_second"}[figure]
        record(f"tcp.{name}.without_slirp", round(tap[figure], 1 if "mb" in figure else 0),
               f"{unit}, TAP to the host's TCP", config="tcpecho_defconfig")
        ratio = statistics.median(t[figure] / w[figure] for t, w in zip(taps, walls))
        record(f"tcp.{name}.without_slirp_over_slirp", round(ratio, 2),
               "ratio, paired interleaved runs", config="tcpecho_defconfig")
    for way in ("receive", "send", "connection"):
        record(f"tcp.{way}_guest_idle_share.without_slirp", round(tap[f"{way}_idle_share"], 3),
               "share of the TAP run the guest was idle", config="tcpecho_defconfig")
        for party, name, what in TAP_PARTIES:
            record(f"tcp.{way}_{name}_cpu_share.without_slirp", round(tap[f"{way}_{party}_cpu_share"], 3),
                   f"host cores used by {what} during the TAP run", config="tcpecho_defconfig")
    record_host_cpu_per_mb(record, taps, TAP_PARTIES, ".without_slirp")


def record_ipc(record, figures):
    """The ipc library's figures, from schedbench's output."""
    record("ipc.mailbox_send_receive", figures["mailbox_send_receive"], "guest instructions per pair",
           config="schedbench_defconfig")
    record("ipc.mailbox_round_trip", figures["mailbox_round_trip"], "guest instructions per round trip",
           config="schedbench_defconfig")


def main():
    os.makedirs(OUT, exist_ok=True)
    qemu_version = sh(["qemu-system-riscv64", "--version"]).stdout.splitlines()[0]
    elf, qemu = build("helloworld")
    floor_elf = build_floor()
    results = []

    def record(name, value, unit, target=None, config="helloworld_defconfig"):
        results.append({"name": name, "value": value, "unit": unit, "config": config, "qemu": qemu_version,
                        **({"target": target} if target is not None else {})})

    text, data, bss = image_size(elf)
    record("helloworld.text", text, "bytes")
    record("helloworld.data", data, "bytes")
    record("helloworld.bss", bss, "bytes")
    record("helloworld.text+data", text + data, "bytes", target=48 * 1024)

    entry, at_main = boot_instructions(qemu)
    record("boot.reset_to_kernel_entry", entry, "guest instructions")
    record("boot.kernel_entry_to_main", at_main - entry, "guest instructions", target=100000)
    record("boot.reset_to_main", at_main, "guest instructions")

    _, mm_qemu = build("mmbench")
    for memory in ("128M", "1G"):
        figures = mmbench(mm_qemu, memory)
        record(f"mm.init_memory.{memory}", figures["init.mm_buddy.memory"], "guest instructions",
               target=2000000 if memory == "1G" else None, config="mmbench_defconfig")
    record("mm.pool_alloc_free", figures["pool_alloc_free"], "guest instructions per pair", target=100,
           config="mmbench_defconfig")
    record("mm.buddy_order0_alloc_free", figures["buddy_order0_alloc_free"], "guest instructions per pair",
           target=400, config="mmbench_defconfig")
    record("mm.kmalloc64_alloc_free", figures["kmalloc64_alloc_free"], "guest instructions per pair",
           config="mmbench_defconfig")
    record("mm.arena_alloc", figures["arena_alloc"], "guest instructions per allocation", config="mmbench_defconfig")

    _, sched_qemu = build("schedbench")
    figures = schedbench(sched_qemu)
    record("sched.yield_switch", figures["yield_switch"], "guest instructions per switch", target=300,
           config="schedbench_defconfig")
    record("sched.park_unpark_switch", figures["park_unpark_switch"], "guest instructions per switch",
           config="schedbench_defconfig")
    record("sync.mutex_lock_unlock", figures["mutex_lock_unlock"], "guest instructions per pair", target=40,
           config="schedbench_defconfig")
    record("sync.semaphore_acquire_release", figures["semaphore_acquire_release"], "guest instructions per pair",
           config="schedbench_defconfig")
    record("futex.wake_latency", figures["futex_wake_latency"], "guest instructions, wake() to the waiter running",
           config="schedbench_defconfig")
    record("futex.lock_pi_unlock_pi", figures["futex_lock_pi_unlock_pi"], "guest instructions per pair",
           config="schedbench_defconfig")
    sync_figures(record, figures)
    record_ipc(record, figures)
    for ready in (1, 8, 64, 256):
        record(f"sched.yield_switch.ready_{ready}", figures[f"yield_switch_ready_{ready}"],
               "guest instructions per switch", config="schedbench_defconfig")

    # TCP through SLIRP hostfwd (apps/tcpecho): wall clock without
    # -icount, guest instructions with it.
    _, tcp_qemu = build("tcpecho")
    # Wall-clock figures follow the host: the median of TCP_RUNS runs, each
    # figure on its own. With SLIRP replaced by a TAP device (when this
    # machine allows one), interleaved: SLIRP, TAP, SLIRP, TAP ...
    walls, taps, why_no_tap = [], [], None
    for _ in range(TCP_RUNS):
        walls.append(tcpbench(tcp_qemu, Slirp(), icount=False))
        if why_no_tap is None:
            try:
                with Tap() as tap:
                    taps.append(tcpbench(tcp_qemu, tap, icount=False))
            except OSError as e:
                why_no_tap = str(e)
    wall = {key: statistics.median(run[key] for run in walls) for key in walls[0]}
    counted = tcpbench(tcp_qemu, Slirp(), icount=True)
    record("tcp.receive_throughput", round(wall["receive_mb_s"], 1), "MB/s host->guest (64 MiB)",
           config="tcpecho_defconfig")
    record("tcp.send_throughput", round(wall["send_mb_s"], 1), "MB/s guest->host (64 MiB)", config="tcpecho_defconfig")
    record("tcp.connections_per_second", round(wall["connections_per_s"]), "connections/s (1-byte echo)",
           config="tcpecho_defconfig")
    for way in ("receive", "send", "connection"):
        record(f"tcp.{way}_guest_idle_share", round(wall[f"{way}_idle_share"], 3),
               "share of the wall-clock run the guest was idle", config="tcpecho_defconfig")
        for party, name, what in SLIRP_PARTIES:
            record(f"tcp.{way}_{name}_cpu_share", round(wall[f"{way}_{party}_cpu_share"], 3),
                   f"host cores used by {what} during the wall-clock run", config="tcpecho_defconfig")
        record(f"tcp.{way}_vcpu_waiting_share", round(wall[f"{way}_vcpu_waiting_share"], 3),
               "share of the run the vCPU thread was ready but waited for a host CPU", config="tcpecho_defconfig")
        record(f"tcp.{way}_vcpu_blocked_share", round(wall[f"{way}_vcpu_blocked_share"], 3),
               "share of the run the guest had work but its vCPU thread was blocked in QEMU",
               config="tcpecho_defconfig")
    record_host_cpu_per_mb(record, walls, SLIRP_PARTIES, "")
    for way, unit in (("receive", "per MiB received"), ("send", "per MiB sent"), ("connection", "per connection")):
        what = " (its ACKs)" if way == "receive" else ""
        record(f"tcp.{way}_segments_out", round(wall[f"{way}_segments_out"], 1),
               f"segments the guest sent {unit}{what}", config="tcpecho_defconfig")
        record(f"tcp.{way}_nic_interrupts", round(wall[f"{way}_interrupts"], 1), f"virtio-net interrupts {unit}",
               config="tcpecho_defconfig")
        record(f"tcp.{way}_tx_kicks", round(wall[f"{way}_tx_kicks"], 1), f"transmit queue notifications {unit}",
               config="tcpecho_defconfig")
    if taps:
        record_without_slirp(record, walls, taps)
    else:
        print(f"bench: the TCP figures without SLIRP are skipped: {why_no_tap}")
    record("tcp.receive_instructions_per_byte", round(counted["receive_instructions"], 1),
           "guest instructions per byte, idle excluded", target=60, config="tcpecho_defconfig")
    record("tcp.send_instructions_per_byte", round(counted["send_instructions"], 1),
           "guest instructions per byte, idle excluded", target=80, config="tcpecho_defconfig")
    record("tcp.instructions_per_connection", round(counted["connection_instructions"]),
           "guest instructions (setup, 1-byte echo, teardown), idle excluded", target=40000,
           config="tcpecho_defconfig")
    record("tcp.instructions_per_connection.with_idle", round(counted["connection_instructions_with_idle"]),
           "guest instructions, idle included (follows host speed)", config="tcpecho_defconfig")

    # Wake-up latency: from a periodic thread's release (its timer
    # deadline) to the thread running, for 1 s of guest time. Under
    # -icount shift=0 a guest ns is one instruction, so these figures are
    # also the instructions from the timer interrupt to the thread.
    _, rt_qemu = build("rtdemo")
    runs = [("edf_1khz", "rtdemo.period_us=1000 rtdemo.runtime_us=200 rtdemo.work_us=100"),
            ("edf_10khz", "rtdemo.period_us=100 rtdemo.runtime_us=20 rtdemo.work_us=10"),
            ("fixed_1khz", "rtdemo.mode=fixed rtdemo.period_us=1000 rtdemo.work_us=100"),
            ("fixed_10khz", "rtdemo.mode=fixed rtdemo.period_us=100 rtdemo.work_us=10")]
    for name, options in runs:
        for load, hogs in (("idle", 0), ("loaded", 3)):
            w = rtdemo(rt_qemu, f"rtdemo.seconds=1 rtdemo.hogs={hogs} {options}")
            base = f"sched.wakeup.{name}.{load}"
            record(f"{base}.mean", w["mean"], "guest ns (= instructions)", target=2000, config="rtdemo_defconfig")
            record(f"{base}.p99", w["p99"], "guest ns", target=20000, config="rtdemo_defconfig")
            record(f"{base}.max", w["max"], "guest ns", config="rtdemo_defconfig")
            record(f"{base}.misses", w["misses"], "deadline misses", config="rtdemo_defconfig")

    _, net_qemu = build("netdemo")
    # Median of 3: how the RX and TX-completion interrupts of a frame fall
    # (one interrupt or two) depends on host timing.
    record("net.reflect_frame", statistics.median(netdemo(net_qemu) for _ in range(3)),
           "guest instructions per frame, idle excluded", config="netdemo_defconfig")

    _, stack_qemu = build("netstack")
    counted = [netstack(stack_qemu, icount=True) for _ in range(3)]
    record("net.udp_echo_roundtrip", statistics.median(c["udp"] for c in counted),
           "guest instructions per round trip, idle excluded", config="netstack_defconfig")
    record("net.icmp_ping_roundtrip", statistics.median(c["icmp"] for c in counted),
           "guest instructions per ping, idle excluded", config="netstack_defconfig")
    wall = netstack(stack_qemu, icount=False)
    record("net.udp_echo_roundtrip.wall", wall["udp"], "us (median, host sendto to recvfrom)",
           config="netstack_defconfig")
    record("net.icmp_ping_roundtrip.wall", wall["icmp"], "us (median guest RTT)", config="netstack_defconfig")

    # QEMU itself adds a delay of about 50 ms to some runs, floor and app
    # alike, at random (whole runs take ~65 or ~115 ms here). The median
    # flips with the mix; the minimum over interleaved runs is what the
    # machine costs without that delay, so the ratio uses the minima.
    floor, hello = wall_times(qemu, floor_elf)
    record("wall.qemu_start_to_exit.floor", round(min(floor) * 1000, 2), "ms (min)")
    record("wall.qemu_start_to_exit.helloworld", round(min(hello) * 1000, 2), "ms (min)")
    record("wall.qemu_start_to_exit.floor.median", round(statistics.median(floor) * 1000, 2), "ms (median)")
    record("wall.qemu_start_to_exit.helloworld.median", round(statistics.median(hello) * 1000, 2), "ms (median)")
    record("wall.helloworld_over_floor", round(min(hello) / min(floor), 3), "ratio of minima", target=1.2)

    path = os.path.join(OUT, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print(f"{'figure':<40} {'value':>14}  {'unit':<20} target")
    for r in results:
        target = r.get("target")
        verdict = ""
        if target is not None:
            verdict = f"{'<=' if r['unit'].startswith('ratio') else '<'} {target}: " + (
                "met" if r["value"] <= target else "MISSED")
        print(f"{r['name']:<40} {r['value']:>14}  {r['unit']:<20} {verdict}")
    print(f"\n{len(results)} figures written to {os.path.relpath(path, ROOT)} "
          f"({RUNS} interleaved wall-clock runs each)")


if __name__ == "__main__":
    main()
