#!/usr/bin/python3
"""Annotates the addresses in a Tessera fault report with function names and
source lines, using addr2line on the image's ELF.

    support/symbolize.py build/<app>/<app>.elf < serial.log
"""
import os
import re
import subprocess
import sys

# "#N 0x..." lines; "(pc)" marks the faulting instruction itself, every
# other entry is a return address: the call is the instruction before it
# (and after a call to a noreturn function, ra already points into the
# next function), so those are looked up at address - 1.
FRAME = re.compile(r"^(\s*#\d+\s+)(0x[0-9a-fA-F]+)( \(pc\))?\s*$")


def symbolize(elf, text, addr2line=None):
    addr2line = addr2line or os.environ.get("CROSS_COMPILE", "riscv64-linux-gnu-") + "addr2line"
    lines = text.splitlines()
    def lookup_address(m):
        a = int(m.group(2), 16)
        return hex(a if m.group(3) else a - 1)

    addresses = [lookup_address(FRAME.match(l)) for l in lines if FRAME.match(l)]
    if not addresses:
        return text
    try:
        out = subprocess.run([addr2line, "-e", elf, "-f", "-C", "-p", "-i"] + addresses,
                             capture_output=True, text=True, timeout=30).stdout.splitlines()
    except OSError:
        return text
    # With -i, an address inlined into others yields extra " (inlined by)"
    # lines after its own; fold them into one description per address.
    groups = []
    for line in out:
        if line.lstrip().startswith("(inlined by)") and groups:
            groups[-1] += " <- " + line.strip()[len("(inlined by) "):]
        else:
            groups.append(line)
    names = dict(zip(addresses, groups))
    result = []
    for line in lines:
        m = FRAME.match(line)
        result.append(f"{line}  {names.get(lookup_address(m), '?')}" if m else line)
    return "\n".join(result) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.stdout.write(symbolize(sys.argv[1], sys.stdin.read()))
