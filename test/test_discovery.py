"""Adding a folder under libs/ is all it takes to add a library: it shows up
in Kconfig, is compiled when enabled (and only then), and its init steps are
sorted into the boot sequence. Checked on a copy of the tree."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from harness import ROOT, build_image

TREE = ["Kconfig", "Makefile", "arch", "plat", "libs", "apps", "configs", "support"]


def copy_tree(dest):
    os.makedirs(dest, exist_ok=True)
    for name in TREE:
        src = os.path.join(ROOT, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dest, name), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, os.path.join(dest, name))
    return dest


def add_library(root, name, steps):
    """A library with one header, one source, and the given init steps
    ({step: [after, ...]}), each of which logs that it ran."""
    sym = name.upper().replace("-", "_")
    ns = name.replace("-", "_")
    d = os.path.join(root, "libs", name)
    os.makedirs(os.path.join(d, "include", name))
    os.makedirs(os.path.join(d, "src"))
    with open(os.path.join(d, "Kconfig"), "w") as f:
        f.write(f'config LIB_{sym}\n\tbool "{name}: discovery test library"\n')
    with open(os.path.join(d, "lib.mk"), "w") as f:
        f.write("SRCS-y += src/probe.cpp\n")
        for step, after in steps.items():
            f.write(f"INIT += {step}\nINIT-AFTER-{step} := {' '.join(after)}\n")
    with open(os.path.join(d, "include", name, "probe.hpp"), "w") as f:
        f.write(f"#pragma once\nnamespace tessera::{ns} {{ int answer(); }}\n")
    with open(os.path.join(d, "src", "probe.cpp"), "w") as f:
        f.write(f"#include <{name}/probe.hpp>\n#include <base/result.hpp>\n#include <klog/klog.hpp>\n")
        f.write(f"namespace tessera::{ns} {{\nint answer() {{ return 42; }}\n")
        for step in steps:
            what = step.split(".", 1)[1]
            f.write(f'base::Result<void> init_{what}() {{ klog::info("{name}: init step {step} ran"); return {{}}; }}\n')
        f.write("}\n")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = copy_tree(str(tmp_path_factory.mktemp("tree")))
    add_library(root, "hello-probe", {"hello_probe.announce": ["plat.console_rx"]})
    with open(os.path.join(root, "configs", "hello-probe.config"), "w") as f:
        f.write("CONFIG_LIB_HELLO_PROBE=y\n")
    return root


def make(root, *args):
    return subprocess.run(["make", "-C", root, "NO_DEPS=1", *args], capture_output=True, text=True, timeout=600)


def test_new_library_appears_in_kconfig(tree):
    code = ("import kconfiglib, os; os.environ['TESSERA_APP']='helloworld'; os.chdir(%r);"
            "k=kconfiglib.Kconfig('Kconfig', warn=False); s=k.syms['LIB_HELLO_PROBE'];"
            "m=s.nodes[0].parent; print(s.nodes[0].prompt[0]); print(m.prompt[0])") % tree
    out = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True).stdout.split("\n")
    assert out[0] == "hello-probe: discovery test library"
    assert out[1] == "Libraries"  # listed in the Libraries menu of menuconfig


def test_new_library_is_built_sorted_and_booted(tree, machine):
    image = build_image("helloworld", fragments=["configs/hello-probe.config"], root=tree)
    assert os.path.exists(os.path.join(image.build_dir, "obj/libs/hello-probe/src/probe.o"))
    order = make(tree, "APP=helloworld", f"BUILD={image.build_dir}", "boot-order").stdout
    steps = re.findall(r"^\s+\d+\. (\S+)", order, re.M)
    assert steps.index("hello_probe.announce") > steps.index("plat.console_rx")
    m = machine(image).start()
    m.expect(r"hello-probe: init step hello_probe.announce ran")
    m.expect(r"libraries: base fdt hello-probe klog")
    assert m.wait_exit() == 0


def test_disabled_library_is_not_compiled(tree, tmp_path):
    build = str(tmp_path / "b")
    r = make(tree, "APP=helloworld", f"BUILD={build}")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(build, "obj/libs/hello-probe"))
    assert "hello-probe" not in open(os.path.join(build, "gen/manifest.cpp")).read()


def test_init_cycle_fails_the_build_naming_both_libraries(tmp_path):
    root = copy_tree(str(tmp_path / "tree"))
    add_library(root, "cyc-a", {"cyc_a.first": ["cyc_b.second"]})
    add_library(root, "cyc-b", {"cyc_b.second": ["cyc_a.first"]})
    frag = tmp_path / "cyc.config"
    frag.write_text("CONFIG_LIB_CYC_A=y\nCONFIG_LIB_CYC_B=y\n")
    r = make(root, "APP=helloworld", f"BUILD={tmp_path / 'b'}", f"FRAGMENTS={frag}")
    assert r.returncode != 0
    assert re.search(r"init steps form a cycle: cyc_a\.first \(libs/cyc-a\) -> cyc_b\.second \(libs/cyc-b\) "
                     r"-> cyc_a\.first \(libs/cyc-a\)", r.stderr), r.stderr
    assert "Traceback" not in r.stderr
    assert not os.path.exists(tmp_path / "b" / "helloworld.elf")


def test_missing_init_dependency_names_the_step(tmp_path):
    root = copy_tree(str(tmp_path / "tree"))
    add_library(root, "needy", {"needy.start": ["net.up"]})
    frag = tmp_path / "needy.config"
    frag.write_text("CONFIG_LIB_NEEDY=y\n")
    r = make(root, "APP=helloworld", f"BUILD={tmp_path / 'b'}", f"FRAGMENTS={frag}")
    assert r.returncode != 0
    assert "init step 'needy.start' (libs/needy) must run after 'net.up', but no enabled component declares it" \
        in r.stderr, r.stderr


def test_broken_library_kconfig_is_reported_with_its_file(tmp_path):
    root = copy_tree(str(tmp_path / "tree"))
    os.makedirs(os.path.join(root, "libs", "broken"))
    with open(os.path.join(root, "libs", "broken", "Kconfig"), "w") as f:
        f.write("config LIB_BROKEN\n\tbool \"broken\"\n\tdepends on\n")
    open(os.path.join(root, "libs", "broken", "lib.mk"), "w").close()
    r = make(root, "APP=helloworld", f"BUILD={tmp_path / 'b'}")
    assert r.returncode != 0
    assert "Kconfig files do not parse" in r.stderr and "libs/broken/Kconfig:3" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_app_without_defconfig_keeps_its_edited_config(tmp_path):
    """Regression: with no configs/<app>_defconfig, any newer file in the
    tree used to trigger a fresh defconfig, discarding menuconfig edits."""
    root = copy_tree(str(tmp_path / "tree"))
    os.remove(os.path.join(root, "configs", "echo_defconfig"))
    build = str(tmp_path / "b")
    assert make(root, "APP=echo", f"BUILD={build}").returncode == 0
    with open(os.path.join(build, ".config"), "a") as f:
        f.write("CONFIG_KLOG_RING_SIZE=4096\n")
    os.utime(os.path.join(root, "Makefile"))  # an unrelated, newer file
    r = make(root, "APP=echo", f"BUILD={build}")
    assert r.returncode == 0 and "CONFIG " not in r.stdout, r.stdout
    assert "#define CONFIG_KLOG_RING_SIZE 4096" in open(os.path.join(build, "include/generated/autoconf.h")).read()


def test_options_removed_from_kconfig_are_dropped_not_fatal(tmp_path):
    """After a Kconfig change (a pull, a removed library) options that no
    longer exist are dropped with a note, as olddefconfig would."""
    root = copy_tree(str(tmp_path / "tree"))
    build = str(tmp_path / "b")
    assert make(root, "APP=helloworld", f"BUILD={build}").returncode == 0
    kconfig = os.path.join(root, "libs", "klog", "Kconfig")
    text = open(kconfig).read()
    start = text.index("config KLOG_TIMESTAMPS")
    open(kconfig, "w").write(text[:start] + text[text.index("endif", start):])
    r = make(root, "APP=helloworld", f"BUILD={build}")
    assert r.returncode == 0, r.stderr
    assert "CONFIG_KLOG_TIMESTAMPS no longer exists" in r.stderr
    assert "KLOG_TIMESTAMPS" not in open(os.path.join(build, ".config")).read()


def test_deleting_a_library_drops_its_options(tmp_path):
    root = copy_tree(str(tmp_path / "tree"))
    add_library(root, "doomed", {})
    frag = tmp_path / "doomed.config"
    frag.write_text("CONFIG_LIB_DOOMED=y\n")
    build = str(tmp_path / "b")
    assert make(root, "APP=helloworld", f"BUILD={build}", f"FRAGMENTS={frag}").returncode == 0
    shutil.rmtree(os.path.join(root, "libs", "doomed"))
    r = make(root, "APP=helloworld", f"BUILD={build}")
    assert r.returncode == 0, r.stderr
    assert "CONFIG_LIB_DOOMED no longer exists" in r.stderr
    assert "DOOMED" not in open(os.path.join(build, "include/generated/autoconf.h")).read()
