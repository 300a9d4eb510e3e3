#!/usr/bin/python3
"""Kconfiglib front end for every Tessera config target.

    kconfig.py defconfig      --app A --config OUT [--fragment F ...]
    kconfig.py olddefconfig   --app A --config CFG
    kconfig.py savedefconfig  --app A --config CFG --out F
    kconfig.py menuconfig     --app A --config CFG
    kconfig.py genconfig      --app A --config CFG --header H --makeconf M
    kconfig.py list-apps

Every Kconfiglib warning is an error here: a typo in a fragment or a request
that the dependencies cannot satisfy must stop the build with a message that
names the file, the symbol and the fix, not be silently dropped.
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigError(Exception):
    pass


def load_kconfig(app):
    try:
        import kconfiglib
    except ImportError:
        raise ConfigError("python3-kconfiglib is not installed for /usr/bin/python3; "
                          "run support/install-deps.sh (or apt-get install python3-kconfiglib)")
    if not os.path.isfile(os.path.join(ROOT, "apps", app, "Kconfig")):
        raise ConfigError(f"unknown app '{app}': apps/{app}/Kconfig does not exist; "
                          f"available apps: {' '.join(list_apps())}")
    os.environ["TESSERA_APP"] = app
    os.environ.setdefault("srctree", ROOT)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        kconf = kconfiglib.Kconfig("Kconfig", warn_to_stderr=False)
    except kconfiglib.KconfigError as e:
        raise ConfigError(f"Kconfig files do not parse: {e}")
    finally:
        os.chdir(cwd)
    kconf.warn_assign_undef = True
    kconf.warn_assign_override = False
    kconf.warn_assign_redun = False
    fatal = [w for w in kconf.warnings if is_fatal(w)]
    if fatal:
        raise ConfigError("Kconfig files have problems:\n  " + "\n  ".join(fatal))
    kconf.warnings.clear()
    return kconf


def is_fatal(warning):
    # Problems in the Kconfig files themselves (references to undefined
    # symbols, defaults outside a choice...) stop the build; style remarks
    # such as a missing help text do not.
    return not re.search(r"has no prompt|help text", warning)


def list_apps():
    apps_dir = os.path.join(ROOT, "apps")
    return sorted(d for d in os.listdir(apps_dir)
                  if os.path.isfile(os.path.join(apps_dir, d, "Kconfig")))


ASSIGN_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$|^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def read_requests(path):
    """The assignments a config file asks for, with their line numbers."""
    requests = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            m = ASSIGN_RE.match(line.strip())
            if not m:
                continue
            if m.group(1):
                value = m.group(2)
                if value.startswith('"') and value.endswith('"'):
                    value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                requests.append((m.group(1)[7:], value, lineno))
            else:
                requests.append((m.group(3)[7:], "n", lineno))
    return requests


def explain_unmet(kconf, sym):
    import kconfiglib
    deps = kconfiglib.expr_str(sym.direct_dep)
    missing = [s.name for s in kconfiglib.expr_items(sym.direct_dep)
               if isinstance(s, kconfiglib.Symbol) and s.tri_value == 0 and not s.is_constant]
    hint = f"; enable {', '.join('CONFIG_' + m for m in missing)} as well" if missing else ""
    return f"it depends on {deps}{hint}"


def shown(path):
    """A path as the user would write it: relative inside the tree."""
    full = os.path.abspath(path)
    return os.path.relpath(full, ROOT) if full.startswith(ROOT + os.sep) else full


def final_requests(kconf, paths):
    """The assignments that must hold after loading `paths` in order: the
    last one per symbol, and per choice only the last member set to y
    (a later fragment may pick another member)."""
    final = {}
    for order, path in enumerate(paths):
        for name, value, lineno in read_requests(path):
            final[name] = (value, f"{shown(path)}:{lineno}", (order, lineno))
    last_choice = {}
    for name, (value, _, when) in final.items():
        sym = kconf.syms.get(name)
        if sym is not None and sym.choice and value == "y":
            if sym.choice not in last_choice or last_choice[sym.choice][1] < when:
                last_choice[sym.choice] = (name, when)
    for name in list(final):
        sym = kconf.syms.get(name)
        if sym is not None and sym.choice and sym.choice in last_choice and last_choice[sym.choice][0] != name:
            del final[name]
    return [(name, value, where) for name, (value, where, _) in final.items()]


def check_requests(kconf, paths):
    """Every assignment the files in `paths` make must have taken effect."""
    import kconfiglib
    errors = []
    for name, value, where in final_requests(kconf, paths):
        sym = kconf.syms.get(name)
        if sym is None or sym.type == kconfiglib.UNKNOWN or not sym.nodes:
            errors.append(f"{where}: CONFIG_{name} is not a known symbol "
                          f"(check the spelling, or that the library defining it exists)")
            continue
        if sym.choice and value == "n":
            continue
        got = sym.str_value
        if sym.type in (kconfiglib.INT, kconfiglib.HEX) and value and got:
            try:
                if int(value, 0) == int(got, 0):
                    continue
            except ValueError:
                pass
        if got == value:
            continue
        if sym.type in (kconfiglib.BOOL, kconfiglib.TRISTATE) and value in ("y", "m") \
                and kconfiglib.expr_value(sym.direct_dep) == 0:
            errors.append(f"{where}: CONFIG_{name}={value} cannot be set: {explain_unmet(kconf, sym)}")
        elif sym.type in (kconfiglib.BOOL, kconfiglib.TRISTATE) and value == "n" \
                and sym.rev_dep is not kconf.n and kconfiglib.expr_value(sym.rev_dep):
            errors.append(f"{where}: CONFIG_{name}=n cannot be set: it is selected by "
                          f"{kconfiglib.expr_str(sym.rev_dep)}")
        elif sym.type in (kconfiglib.INT, kconfiglib.HEX) and sym.ranges:
            errors.append(f"{where}: CONFIG_{name}={value} is out of range or invalid "
                          f"(got {got}); see its range in menuconfig")
        elif not sym.visibility and sym.type in (kconfiglib.BOOL, kconfiglib.TRISTATE):
            errors.append(f"{where}: CONFIG_{name} has no prompt and cannot be set by hand; "
                          f"it follows from other options")
        else:
            errors.append(f"{where}: CONFIG_{name}={value} was not accepted (result: {got or 'unset'})")
    return errors


def check_selects(kconf):
    """A `select` that forces a symbol on against its own dependencies."""
    import kconfiglib
    errors = []
    for sym in kconf.unique_defined_syms:
        if sym.type not in (kconfiglib.BOOL, kconfiglib.TRISTATE) or sym.tri_value == 0:
            continue
        if kconfiglib.expr_value(sym.direct_dep) == 0 and kconfiglib.expr_value(sym.rev_dep):
            errors.append(f"CONFIG_{sym.name} is selected by {kconfiglib.expr_str(sym.rev_dep)} "
                          f"but {explain_unmet(kconf, sym)}")
    return errors


def raise_if(errors, what):
    if errors:
        raise ConfigError(f"{what}:\n  " + "\n  ".join(errors))


def cmd_defconfig(args):
    kconf = load_kconfig(args.app)
    base = os.path.join(ROOT, "configs", f"{args.app}_defconfig")
    files = ([base] if os.path.isfile(base) else []) + list(args.fragment or [])
    for f in files:
        if not os.path.isfile(f):
            raise ConfigError(f"config fragment '{f}' does not exist")
    for i, f in enumerate(files):
        kconf.load_config(f, replace=(i == 0))
    kconf.warnings.clear()  # check_requests explains the same problems better
    errors = check_requests(kconf, files) + check_selects(kconf)
    raise_if(errors, f"configuration for '{args.app}' is not valid")
    os.makedirs(os.path.dirname(os.path.abspath(args.config)), exist_ok=True)
    kconf.write_config(args.config, header=f"# Tessera configuration for app '{args.app}'\n")


def load_existing(args):
    kconf = load_kconfig(args.app)
    if not os.path.isfile(args.config):
        raise ConfigError(f"{args.config} does not exist; run 'make APP={args.app} defconfig' first")
    kconf.load_config(args.config)
    return kconf


def cmd_olddefconfig(args):
    """Brings .config up to date with the Kconfig files: new options take
    their defaults, options that no longer exist are dropped (and named)."""
    kconf = load_existing(args)
    for name, where in vanished(kconf, args.config):
        print(f"  DROP    {where}: CONFIG_{name} no longer exists")
    kconf.warnings.clear()
    raise_if(check_selects(kconf), f"{args.config} is not valid")
    kconf.write_config(args.config, header=f"# Tessera configuration for app '{args.app}'\n")


def cmd_savedefconfig(args):
    kconf = load_existing(args)
    kconf.write_min_config(args.out)
    print(f"  SAVE    {shown(args.out)}")


def cmd_menuconfig(args):
    kconf = load_kconfig(args.app)
    if os.path.isfile(args.config):
        kconf.load_config(args.config)
    kconf.warnings.clear()
    os.environ["KCONFIG_CONFIG"] = args.config
    os.environ.setdefault("MENUCONFIG_STYLE", "aquatic")
    import menuconfig
    menuconfig.menuconfig(kconf)
    errors = check_selects(kconf)
    raise_if(errors, "the saved configuration is not valid")


def vanished(kconf, path):
    """Options in `path` that no Kconfig file defines any more."""
    return [(name, where) for name, _, where in final_requests(kconf, [path])
            if name not in kconf.syms or not kconf.syms[name].nodes]


def cmd_genconfig(args):
    kconf = load_existing(args)
    kconf.warnings.clear()  # check_requests explains the same problems better
    # If a Kconfig file changed after .config was written (a pull, a removed
    # library), options it no longer defines are dropped, as olddefconfig
    # would. If .config is the newer one, it was edited by hand, and an
    # unknown option is a typo to report.
    newest_kconfig = max(os.path.getmtime(os.path.join(ROOT, f)) for f in kconf.kconfig_filenames)
    if args.kconfig_set and os.path.isfile(args.kconfig_set):  # a library folder added or deleted
        newest_kconfig = max(newest_kconfig, os.path.getmtime(args.kconfig_set))
    if newest_kconfig > os.path.getmtime(args.config):
        gone = vanished(kconf, args.config)
        for name, where in gone:
            print(f"  DROP    {where}: CONFIG_{name} no longer exists", file=sys.stderr)
        if gone:
            kconf.write_config(args.config, header=f"# Tessera configuration for app '{args.app}'\n")
    errors = check_requests(kconf, [args.config]) + check_selects(kconf)
    raise_if(errors, f"{args.config} is not valid (fix it with 'make menuconfig' or "
                     f"'make defconfig')")
    os.makedirs(os.path.dirname(os.path.abspath(args.header)), exist_ok=True)
    kconf.write_autoconf(args.header)
    # auto.conf is the .config itself minus comments: make can include it.
    tmp = args.makeconf + ".tmp"
    kconf.write_config(tmp, header="", save_old=False)
    with open(tmp) as f:
        body = "".join(line for line in f if line.startswith("CONFIG_"))
    os.unlink(tmp)
    old = open(args.makeconf).read() if os.path.isfile(args.makeconf) else None
    if old != body:
        with open(args.makeconf, "w") as f:
            f.write(body)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["defconfig", "olddefconfig", "savedefconfig",
                                       "menuconfig", "genconfig", "list-apps"])
    p.add_argument("--app")
    p.add_argument("--config")
    p.add_argument("--fragment", action="append")
    p.add_argument("--out")
    p.add_argument("--header")
    p.add_argument("--makeconf")
    p.add_argument("--kconfig-set", help="file listing the Kconfig files; newer than .config = they changed")
    args = p.parse_args()
    try:
        if args.command == "list-apps":
            print(" ".join(list_apps()))
            return 0
        globals()["cmd_" + args.command](args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
