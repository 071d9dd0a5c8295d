#!/usr/bin/env python3
"""The server's layering, checked on the sources (ctest `layering.includes`).

server/CMakeLists.txt builds one static library per folder, each linking only
the layers below it, so a call into a higher layer fails to link. An include
of a higher layer's header that only uses inline code or types would still
compile and link; this check closes that gap. The allowed edges are read from
the CMake files themselves (the `torii::<name>` dependencies of each
`torii_server_library` / `add_library(torii_<name>`), closed transitively, so
the picture has one source of truth. It also checks that no file below the
frontends includes the wire messages (inference.pb.h / inference.grpc.pb.h)
and that nothing below the repository layer includes the config schema
(model_config.pb.h).

    python3 tests/layering_check.py SOURCE_ROOT
Prints every violation with file:line and exits 1, or prints a summary and
exits 0.
"""
import os
import re
import sys

FOLDERS_WITH_OWN_CMAKE = ("http",)


def library_deps(root):
    """{folder: set of torii:: folders it links directly}."""
    deps = {}
    text = open(os.path.join(root, "server", "CMakeLists.txt")).read()
    for m in re.finditer(r"torii_server_library\((\w+)(.*?)\)\s*\n", text, re.S):
        name, body = m.group(1), m.group(2)
        dep_part = body.split("DEPS", 1)[1] if "DEPS" in body else ""
        deps[name] = set(re.findall(r"torii::(\w+)", dep_part))
    for folder in FOLDERS_WITH_OWN_CMAKE:
        sub = open(os.path.join(root, "server", folder, "CMakeLists.txt")).read()
        m = re.search(r"target_link_libraries\(torii_%s(.*?)\)" % folder, sub, re.S)
        deps[folder] = set(re.findall(r"torii::(\w+)", m.group(1))) if m else set()
    return deps


def closure(deps):
    allowed = {}
    for name in deps:
        seen, todo = {name}, [name]
        while todo:
            for d in deps.get(todo.pop(), ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        allowed[name] = seen
    return allowed


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    deps = library_deps(root)
    allowed = closure(deps)
    layers = set(deps)
    problems = []
    checked = 0
    include = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    for folder in sorted(layers):
        base = os.path.join(root, "server", folder)
        if not os.path.isdir(base):
            continue
        may = allowed[folder]
        wire_ok = "proto" in may
        config_ok = "config_proto" in may
        for dirpath, _, files in os.walk(base):
            for f in files:
                if not f.endswith((".h", ".cc")):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, root)
                # Executables built from a folder (main.cc, runner_host_main.cc)
                # link more than the folder's library; they are checked too,
                # against the libraries their target links, which CMake
                # enforces; skip them here.
                if f.endswith("_main.cc") or (folder == "app" and f in ("main.cc", "http_metrics.cc", "http_metrics.h")):
                    continue
                checked += 1
                for n, line in enumerate(open(path, encoding="utf-8"), 1):
                    m = include.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    parts = inc.split("/")
                    if len(parts) >= 3 and parts[0] == "server" and parts[1] in layers:
                        if parts[1] not in may:
                            problems.append("%s:%d: server/%s includes %s, a layer it does not link "
                                            "(server/%s may include: %s)" %
                                            (rel, n, folder, inc, folder, ", ".join(sorted(may & layers))))
                    base_name = os.path.basename(inc)
                    if base_name in ("inference.pb.h", "inference.grpc.pb.h") and not wire_ok:
                        problems.append("%s:%d: %s below the frontends: the wire messages stay in "
                                        "server/grpc" % (rel, n, inc))
                    if base_name == "model_config.pb.h" and not config_ok:
                        problems.append("%s:%d: %s below the repository layer: use ModelSpec" %
                                        (rel, n, inc))
    if problems:
        print("layering: %d violation(s)" % len(problems))
        for p in problems:
            print("  " + p)
        return 1
    order = sorted(layers, key=lambda x: (len(allowed[x]), x))
    print("layering: %d files in %d layers follow the links: %s" %
          (checked, len(layers), " | ".join("%s<-{%s}" % (x, ",".join(sorted(allowed[x] - {x}) or ["-"]))
                                            for x in order)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
