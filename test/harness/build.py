"""Builds images for tests through the real Makefile, cached by config hash.

An image is identified by (app, fragment contents, extra config lines); the
same identity always maps to the same build directory under build/test/, so
repeated and parallel test runs reuse one incremental build. A file lock
keeps pytest-xdist workers from building the same directory at once.
"""
import fcntl
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, "build", "test")
_memo = {}


class BuildError(Exception):
    pass


@dataclass(frozen=True)
class Image:
    app: str
    build_dir: str
    elf: str
    qemu: dict  # build_dir/qemu.json: how this machine starts

    @property
    def config(self):
        with open(os.path.join(self.build_dir, ".config")) as f:
            return f.read()


def config_key(app, fragments, extra, root=ROOT):
    h = hashlib.sha256(app.encode())
    for frag in fragments:
        with open(os.path.join(root, frag), "rb") as f:
            h.update(frag.encode() + b"\0" + f.read())
    h.update("\n".join(extra).encode())
    return h.hexdigest()[:12]


def build_image(app, fragments=(), extra=(), root=ROOT):
    """Builds app with the given fragment files and extra CONFIG_ lines."""
    fragments, extra = tuple(fragments), tuple(extra)
    key = config_key(app, fragments, extra, root)
    if (app, fragments, extra, root) in _memo:
        return _memo[(app, fragments, extra, root)]
    build_dir = os.path.join(root, "build", "test", f"{app}-{key}")
    os.makedirs(build_dir, exist_ok=True)
    frag_paths = [os.path.join(root, f) for f in fragments]
    if extra:
        extra_path = os.path.join(build_dir, "extra.config")
        text = "\n".join(extra) + "\n"
        if not os.path.isfile(extra_path) or open(extra_path).read() != text:
            with open(extra_path, "w") as f:
                f.write(text)
        frag_paths.append(extra_path)
    cmd = ["make", "-C", root, f"APP={app}", f"BUILD={build_dir}", "NO_DEPS=1", "all"]
    if frag_paths:
        cmd.append("FRAGMENTS=" + " ".join(frag_paths))
    with open(os.path.join(build_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise BuildError(f"building {app} failed:\n{result.stdout}\n{result.stderr}")
    with open(os.path.join(build_dir, "qemu.json")) as f:
        qemu = json.load(f)
    image = Image(app, build_dir, os.path.join(build_dir, f"{app}.elf"), qemu)
    _memo[(app, fragments, extra, root)] = image
    return image
