"""A QEMU machine running a Tessera image, driven the way a user would:
serial console (bytes in and out), QMP for the life cycle, exit status.

The machine starts halted (-S), the QMP client attaches, and only then does
the guest run (`cont`), so no early console output is ever lost. Teardown
always kills QEMU, whatever the test did.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from .qmp import QMPClient, QMPError


class ExpectTimeout(AssertionError):
    pass


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Machine:
    def __init__(self, image, extra_args=(), append=None, icount=False, workdir=None, name=None,
                 nic=None, mac=None):
        """nic: a rawnet.RawPeer or rawnet.UserNet to attach a virtio-net
        device to (mac: its address, e.g. "52:54:00:12:34:56"; QEMU picks
        one otherwise). The device gets the modern virtio-mmio interface."""
        self.image = image
        self.nic = nic
        self.mac = mac
        self.name = name or image.app
        self.extra_args = list(extra_args)
        self.append = append
        self.icount = icount
        self._own_dir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"tessera-{self.name}-")
        self.serial_path = os.path.join(self.workdir, "serial.log")
        self.stderr_path = os.path.join(self.workdir, "qemu-stderr.log")
        self.qmp_path = os.path.join(self.workdir, "qmp.sock")
        self.proc = None
        self.qmp = None
        self._output = bytearray()
        self._cursor = 0
        self._cond = threading.Condition()
        self._reader = None

    # ------------------------------------------------------------ life cycle
    def command_line(self):
        q = self.image.qemu
        args = [q["qemu"]] + list(q["args"])
        if self.append is not None:
            # Replace the configured command line (QEMU keeps only the last).
            args += ["-append", self.append]
        if self.icount:
            # Guest time = instructions (1 ns each). sleep=off: while the
            # guest idles, the virtual clock jumps to its next timer instead
            # of waiting in host time, which would deliver the interrupt late
            # by the host's scheduling noise (see docs/testing.md).
            args += ["-icount", "shift=0,sleep=off"]
        args += ["-display", "none", "-monitor", "none", "-serial", "stdio",
                 "-qmp", f"unix:{self.qmp_path},server=on,wait=off", "-S"]
        if self.nic is not None:
            # QEMU's virtio-mmio transport defaults to the legacy (version 1)
            # interface, which the virtio library refuses.
            device = "virtio-net-device,netdev=n0" + (f",mac={self.mac}" if self.mac else "")
            args += ["-global", "virtio-mmio.force-legacy=false",
                     "-netdev", self.nic.netdev_arg("n0"), "-device", device]
        return args + self.extra_args

    free_port = staticmethod(free_port)

    def start(self, run=True):
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.command_line(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, bufsize=0)
        self._reader = threading.Thread(target=self._read_serial, daemon=True)
        self._reader.start()
        try:
            self.qmp = QMPClient(self.qmp_path)
        except QMPError:
            self.kill()
            raise AssertionError(f"QEMU did not come up:\n{self.stderr_text()}")
        if run:
            self.qmp.execute("cont")
        return self

    def _read_serial(self):
        with open(self.serial_path, "wb") as log:
            while True:
                chunk = self.proc.stdout.read1(4096) if hasattr(self.proc.stdout, "read1") \
                    else os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
                with self._cond:
                    self._output += chunk
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_exit(self, timeout=30):
        """Waits for QEMU to exit; returns its exit status."""
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ExpectTimeout(f"{self.name}: QEMU still running after {timeout}s\n"
                                f"--- serial (tail) ---\n{self.serial_text()[-3000:]}")
        if self._reader:
            self._reader.join(timeout=5)
        return status

    def kill(self):
        if self.qmp:
            self.qmp.close()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._reader:
            self._reader.join(timeout=5)

    def close(self):
        self.kill()
        if getattr(self, "_stderr", None):
            self._stderr.close()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # ---------------------------------------------------------------- serial
    def serial_text(self):
        with self._cond:
            return self._output.decode("utf-8", "replace").replace("\r\n", "\n")

    def stderr_text(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def expect(self, pattern, timeout=10):
        """Waits until `pattern` (a regex) appears in the console output after
        the previous match; returns the match. Raises ExpectTimeout with the
        tail of the console if it does not, or if QEMU exits first."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = regex.search(self._output, self._cursor)
                if m:
                    self._cursor = m.end()
                    return m
                remaining = deadline - time.monotonic()
                exited = self.proc.poll() is not None and not self._reader.is_alive()
                if remaining <= 0 or exited:
                    why = "QEMU exited" if exited else f"{timeout}s passed"
                    tail = self._output[-3000:].decode("utf-8", "replace")
                    raise ExpectTimeout(f"{self.name}: {pattern!r} not seen ({why})\n--- serial (tail) ---\n{tail}")
                self._cond.wait(min(remaining, 0.2))

    def write(self, text):
        self.proc.stdin.write(text.encode() if isinstance(text, str) else text)
        self.proc.stdin.flush()

    # -------------------------------------------------------------- artefacts
    def artefacts(self):
        """What a failing test attaches: console log and CPU registers."""
        out = {"serial log": self.serial_text()[-20000:]}
        if self.running and self.qmp:
            try:
                out["info registers"] = self.qmp.hmp("info registers")
            except Exception as e:  # the machine may be wedged; say so
                out["info registers"] = f"(unavailable: {e})"
        stderr = self.stderr_text()
        if stderr.strip():
            out["qemu stderr"] = stderr[-5000:]
        return out
