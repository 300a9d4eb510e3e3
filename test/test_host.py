"""Host-built tests of pure logic under AddressSanitizer and UBSan: the FDT
parser is fed QEMU's real device trees and thousands of corrupted copies (5000 per tree).
Any out-of-bounds read or undefined behaviour aborts the run."""
import os
import shutil
import subprocess

import pytest

from harness import ROOT

SOURCES = ["libs/fdt/src/fdt.cpp", "libs/base/src/error.cpp", "test/host/host_runtime.cpp",
           "test/host/fdt_host.cpp"]


@pytest.fixture(scope="module")
def fdt_host(tmp_path_factory):
    if not shutil.which("g++"):
        pytest.skip("no host g++")
    exe = str(tmp_path_factory.mktemp("host") / "fdt_host")
    subprocess.run(["g++", "-std=c++20", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    "-fno-omit-frame-pointer", "-Ilibs/base/include", "-Ilibs/fdt/include", "-Ilibs/fdt/tests", *SOURCES, "-o", exe],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    return exe


def dump_dtb(path, *machine_args):
    subprocess.run(["qemu-system-riscv64", "-M", f"virt,dumpdtb={path}", *machine_args, "-display", "none"],
                   check=True, capture_output=True)


@pytest.mark.parametrize("shape", [["-smp", "1", "-m", "128M"], ["-smp", "4", "-m", "1G"]],
                         ids=["1hart", "4harts"])
def test_fdt_parser_on_real_and_corrupted_trees(fdt_host, tmp_path, shape):
    dtb = str(tmp_path / "virt.dtb")
    dump_dtb(dtb, *shape)
    r = subprocess.run([fdt_host, dtb, "--mutate", "5000"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    nodes = int(r.stdout.split()[1])
    assert nodes > 25
    assert "mutated:" in r.stdout and "ERROR" not in r.stderr


def test_fdt_parser_rejects_truncated_and_empty_files(fdt_host, tmp_path):
    dtb = tmp_path / "virt.dtb"
    dump_dtb(str(dtb), "-smp", "1")
    data = dtb.read_bytes()
    for size in (0, 1, 39, 40, 100, 1000):
        cut = tmp_path / f"cut{size}.dtb"
        cut.write_bytes(data[:size])
        r = subprocess.run([fdt_host, str(cut)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "rejected: malformed input" in r.stdout, (size, r.stdout, r.stderr)


def test_fdt_v16_header_with_struct_offset_past_the_end(fdt_host, tmp_path):
    """Regression: version 16 has no struct size; an offset past totalsize
    used to wrap the computed size and the walk read past the blob."""
    import struct
    dtb = tmp_path / "virt.dtb"
    dump_dtb(str(dtb), "-smp", "1")
    data = bytearray(dtb.read_bytes())
    total = struct.unpack(">I", data[4:8])[0]
    struct.pack_into(">I", data, 20, 16)            # version
    struct.pack_into(">I", data, 8, total + 64)     # off_dt_struct
    bad = tmp_path / "v16.dtb"
    bad.write_bytes(bytes(data))
    r = subprocess.run([fdt_host, str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "rejected: malformed input" in r.stdout, r.stdout + r.stderr
