#!/usr/bin/python3
"""Renders Tessera's generated sources from Jinja2 templates.

    gen.py generate   --app A --build DIR --config auto.conf --libs "a b" --step comp/name:after,...
    gen.py boot-order (same arguments): prints the init steps in run order

Outputs (written only when their content changes, so make rebuilds nothing
needlessly): DIR/gen/linker.ld, DIR/gen/init_table.cpp, DIR/gen/manifest.cpp,
DIR/qemu.json (the one description of how the machine starts) and DIR/run.sh.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE_DIRS = [os.path.join(ROOT, "support", "templates"),
                 os.path.join(ROOT, "plat", "qemu-virt", "templates")]


class GenError(Exception):
    pass


def read_config(path):
    config = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$", line.strip())
            if not m:
                continue
            value = m.group(2)
            if value.startswith('"'):
                value = json.loads(value)  # Kconfig escapes like JSON strings
            config[m.group(1)] = value
    return config


APP = "app"  # set from --app, for messages


def component_dir(component):
    if component == "arch":
        return "arch/riscv64"
    if component == "plat":
        return "plat/qemu-virt"
    if component == "app":
        return f"apps/{APP}"
    return f"libs/{component}"


def namespace_of(component):
    return component.replace("-", "_")


def parse_steps(specs):
    """'comp/name:after1,after2' -> ordered list of step dicts."""
    steps = []
    seen = {}
    for spec in specs:
        comp, _, rest = spec.partition("/")
        name, _, after = rest.partition(":")
        prefix, dot, what = name.partition(".")
        if not dot or not what or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", what):
            raise GenError(f"init step '{name}' of {component_dir(comp)} must be named "
                           f"'{namespace_of(comp)}.<identifier>'")
        if prefix != namespace_of(comp):
            raise GenError(f"init step '{name}' is declared by {component_dir(comp)}, so its name "
                           f"must start with '{namespace_of(comp)}.'")
        if name in seen:
            raise GenError(f"init step '{name}' is declared twice ({component_dir(seen[name])} "
                           f"and {component_dir(comp)})")
        seen[name] = comp
        steps.append({
            "name": name,
            "component": comp,
            "after": [a for a in after.split(",") if a],
            "namespace": f"tessera::{namespace_of(comp)}",
            "function": f"init_{what}",
        })
    return steps


def sort_steps(steps):
    """Topological order; ties keep declaration order. Fails on a missing
    predecessor (unless written '?name', meaning 'after it if present') or a
    cycle, naming the steps and the components that declare them."""
    by_name = {s["name"]: s for s in steps}
    preds = {}
    for s in steps:
        preds[s["name"]] = []
        for a in s["after"]:
            optional = a.startswith("?")
            a = a.lstrip("?")
            if a in by_name:
                preds[s["name"]].append(a)
            elif not optional:
                raise GenError(f"init step '{s['name']}' ({component_dir(s['component'])}) must run "
                               f"after '{a}', but no enabled component declares it "
                               f"(is the library that provides it disabled?)")
    order, state = [], {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            cycle = path[path.index(name):] + [name]
            pretty = " -> ".join(f"{n} ({component_dir(by_name[n]['component'])})" for n in cycle)
            raise GenError(f"init steps form a cycle: {pretty}")
        state[name] = "active"
        for p in preds[name]:
            visit(p, path + [name])
        state[name] = "done"
        order.append(by_name[name])

    for s in steps:
        visit(s["name"], [])
    return order


def write_if_changed(path, text, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.isfile(path):
        with open(path) as f:
            if f.read() == text:
                return False
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    if mode:
        os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def cpp_string(s):
    return json.dumps(s)  # a valid C++ string literal for printable text


def qemu_description(args, config):
    build = os.path.abspath(args.build)
    kernel = os.path.join(build, f"{args.app}.elf")
    machine_args = ["-M", "virt", "-bios", "default", "-kernel", kernel,
                    "-m", f"{config.get('PLAT_RAM_MIB', 128)}M",
                    "-smp", str(config.get("PLAT_HARTS", 1))]
    bootargs = config.get("PLAT_BOOTARGS", "")
    if bootargs:
        machine_args += ["-append", bootargs]
    extra = shlex.split(config.get("PLAT_QEMU_EXTRA", ""))
    return {
        "app": args.app,
        "qemu": "qemu-system-riscv64",
        "kernel": kernel,
        "memory_mib": int(config.get("PLAT_RAM_MIB", 128)),
        "harts": int(config.get("PLAT_HARTS", 1)),
        "bootargs": bootargs,
        # Everything but how the console and monitor are attached: `make run`
        # adds -nographic, the test harness adds pipes and a QMP socket.
        "args": machine_args + extra,
    }


def compiler_version(cross_compile):
    try:
        out = subprocess.run([f"{cross_compile}g++", "-dumpfullversion"], capture_output=True,
                             text=True, timeout=10)
        return "gcc " + out.stdout.strip()
    except OSError:
        return "unknown"


def project_version():
    try:
        out = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unversioned"
    except OSError:
        return "unversioned"


def generate(args):
    try:
        import jinja2
    except ImportError:
        raise GenError("python3-jinja2 is not installed; run support/install-deps.sh")
    config = read_config(args.config)
    steps = sort_steps(parse_steps(args.step or []))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIRS),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["cpp_string"] = cpp_string
    libs = sorted((args.libs or "").split())
    qemu = qemu_description(args, config)
    context = {
        "app": args.app,
        "config": config,
        "libs": libs,
        "steps": steps,
        "namespaces": sorted({(s["namespace"], s["function"]) for s in steps}),
        "kernel_base": "0x80200000",
        "boot_stack_size": int(config.get("ARCH_BOOT_STACK_KIB", 16)) * 1024,
        "qemu": qemu,
        "qemu_args_shell": " ".join(shlex.quote(a) for a in [qemu["qemu"]] + qemu["args"]),
        "elf": qemu["kernel"],
        "build_dir": os.path.relpath(os.path.abspath(args.build), ROOT),
        "version": project_version(),
        "compiler": compiler_version(args.cross_compile),
    }
    gen = os.path.join(args.build, "gen")
    outputs = [
        ("linker.ld.j2", os.path.join(gen, "linker.ld"), None),
        ("init_table.cpp.j2", os.path.join(gen, "init_table.cpp"), None),
        ("manifest.cpp.j2", os.path.join(gen, "manifest.cpp"), None),
        ("qemu.json.j2", os.path.join(args.build, "qemu.json"), None),
        ("run.sh.j2", os.path.join(args.build, "run.sh"), 0o755),
    ]
    for template, path, mode in outputs:
        text = env.get_template(template).render(**context)
        if write_if_changed(path, text, mode):
            print(f"  GEN     {os.path.relpath(path)}")


def boot_order(args):
    steps = sort_steps(parse_steps(args.step or []))
    print(f"Init order for app '{args.app}' ({len(steps)} steps):")
    for i, s in enumerate(steps, 1):
        after = f"  (after {', '.join(s['after'])})" if s["after"] else ""
        print(f"  {i:2}. {s['name']:<24} {s['namespace']}::{s['function']}(){after}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["generate", "boot-order"])
    p.add_argument("--app", required=True)
    p.add_argument("--build", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--libs", default="")
    p.add_argument("--step", action="append")
    p.add_argument("--cross-compile", default="riscv64-linux-gnu-")
    args = p.parse_args()
    global APP
    APP = args.app
    try:
        if args.command == "generate":
            generate(args)
        else:
            boot_order(args)
    except GenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
