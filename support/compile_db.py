#!/usr/bin/python3
"""Writes BUILD/compile_commands.json from the .cmd files make stores beside
each object (the exact command that built it), for clangd and other tools."""
import json
import os
import shlex
import sys


def main():
    build, objs = sys.argv[1], sys.argv[2:]
    root = os.getcwd()
    entries = []
    for obj in objs:
        try:
            with open(obj + ".cmd") as f:
                cmd = f.read().strip()
        except OSError:
            continue
        words = shlex.split(cmd)
        entries.append({"directory": root, "file": words[-1], "output": obj, "arguments": words})
    text = json.dumps(entries, indent=1) + "\n"
    path = os.path.join(build, "compile_commands.json")
    if not os.path.isfile(path) or open(path).read() != text:
        with open(path, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
