"""A small QMP client (QEMU Machine Protocol: JSON over a unix socket).

No Debian package ships one. Protocol: the server sends a greeting, the
client sends qmp_capabilities, then each command is one JSON object with an
"id"; replies carry the same id, and asynchronous events ("event" key) may
arrive at any time in between — they are queued for wait_event().
"""
import json
import socket
import time


class QMPError(Exception):
    pass


class QMPClient:
    def __init__(self, path, timeout=10.0):
        self.path = path
        self.events = []
        self._buffer = b""
        self._next_id = 0
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.connect(path)
                break
            except OSError:
                self._sock.close()
                if time.monotonic() > deadline:
                    raise QMPError(f"cannot connect to QMP socket {path}")
                time.sleep(0.02)
        greeting = self._read_message(timeout)
        if "QMP" not in greeting:
            raise QMPError(f"unexpected QMP greeting: {greeting}")
        self.greeting = greeting["QMP"]
        self.execute("qmp_capabilities")

    def _read_message(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QMPError("timed out waiting for QMP")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise EOFError("QMP connection closed")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, arguments=None, timeout=10.0):
        """Runs a command; returns its "return" value or raises QMPError."""
        self._next_id += 1
        request = {"execute": command, "id": self._next_id}
        if arguments:
            request["arguments"] = arguments
        self._sock.sendall(json.dumps(request).encode() + b"\n")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(max(0.01, deadline - time.monotonic()))
            if "event" in message:
                self.events.append(message)
                continue
            if message.get("id") != self._next_id:
                continue
            if "error" in message:
                raise QMPError(f"{command}: {message['error'].get('desc', message['error'])}")
            return message.get("return")

    def hmp(self, command_line):
        """A human monitor command through QMP (e.g. 'info registers')."""
        return self.execute("human-monitor-command", {"command-line": command_line})

    def wait_event(self, name, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event["event"] == name:
                    return self.events.pop(i)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QMPError(f"no {name} event within {timeout}s (got {[e['event'] for e in self.events]})")
            try:
                message = self._read_message(remaining)
            except QMPError:
                continue
            if "event" in message:
                self.events.append(message)

    def close(self):
        try:
            self._sock.close()
        except OSError:
            pass
