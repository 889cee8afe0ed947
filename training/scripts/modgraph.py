#!/usr/bin/env python3
"""Module dependency graph of the training crate, from `crate::` / `faceenhance_train::`
paths (use trees expanded), at file-module and at top-level-folder granularity; checks both
are acyclic (tests included, and again without `#[cfg(test)] mod tests`). Exit status 1 on a
circle.

    python3 scripts/modgraph.py [path/to/src]
"""
import os
import re
import sys
from collections import defaultdict

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
BIN_FILES = {"main.rs"}  # plus commands/


def module_of(rel):
    parts = rel[:-3].split("/")
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"]:
        return "crate"
    if parts == ["main"]:
        return "main"
    return "::".join(parts)


def is_bin(rel):
    return rel in BIN_FILES or rel.startswith("commands/")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)  # string literals
    return "\n".join(re.sub(r"//.*", "", l) for l in text.split("\n"))


def strip_tests(text):
    """Drops `#[cfg(test)] mod tests { ... }` (and `#[cfg(all(test, ...))]`) blocks."""
    out, i = [], 0
    pat = re.compile(r"#\[cfg\((?:all\()?test[^\]]*\]\s*mod\s+\w+\s*\{")
    while True:
        m = pat.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    return "".join(out)


def expand_use_tree(tree):
    """'a::{b, c::{d, e}}' -> ['a::b', 'a::c::d', 'a::c::e']"""
    tree = re.sub(r"\s+", "", tree)
    res = []

    def rec(prefix, t):
        if "{" not in t:
            res.append(prefix + t)
            return
        k = t.index("{")
        head, body = t[:k], t[k + 1 : -1]
        depth, cur, items = 0, "", []
        for ch in body:
            if ch == "," and depth == 0:
                items.append(cur)
                cur = ""
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            cur += ch
        if cur:
            items.append(cur)
        for it in items:
            rec(prefix + head, it)

    rec("", tree)
    return [re.sub(r"\bas\w+$", "", p) for p in res]


def paths_in(text):
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths += expand_use_tree(m.group(1))
    paths += re.findall(r"\b((?:crate|faceenhance_train)(?:::\w+)+)\b(?!::)", text)
    return paths


def main():
    files = {}
    for root, _, names in os.walk(SRC):
        for n in names:
            if n.endswith(".rs"):
                rel = os.path.relpath(os.path.join(root, n), SRC)
                files[rel] = open(os.path.join(root, n)).read()
    lib_mods = {module_of(r) for r in files if not is_bin(r)}
    bin_mods = {module_of(r) for r in files if is_bin(r)}

    def resolve(path, from_bin):
        segs = path.split("::")
        if segs[0] == "faceenhance_train" or (segs[0] == "crate" and not from_bin):
            known, root = lib_mods, "crate"
        elif segs[0] == "crate" and from_bin:
            known, root = bin_mods, "main"
        else:
            return None
        rest = segs[1:]
        for k in range(len(rest), 0, -1):
            cand = "::".join(rest[:k])
            if cand in known:
                return ("bin:" if known is bin_mods else "") + cand
        return None

    results = {}
    for with_tests in (True, False):
        edges = defaultdict(set)
        for rel, text in files.items():
            src = module_of(rel)
            src = ("bin:" if is_bin(rel) else "") + src
            t = strip_comments(text)
            if not with_tests:
                t = strip_tests(t)
            for p in paths_in(t):
                dst = resolve(p, is_bin(rel))
                if dst and dst != src:
                    edges[src].add(dst)
        results[with_tests] = edges

    def top(m):
        b = m.startswith("bin:")
        m = m[4:] if b else m
        return ("bin:" if b else "") + m.split("::")[0]

    def cycles(edges):
        nodes = set(edges) | {d for v in edges.values() for d in v}
        color, stack, found = {}, [], []

        def dfs(u):
            color[u] = 1
            stack.append(u)
            for v in sorted(edges.get(u, ())):
                if color.get(v) == 1:
                    found.append(stack[stack.index(v) :] + [v])
                elif not color.get(v):
                    dfs(v)
            stack.pop()
            color[u] = 2

        for n in sorted(nodes):
            if not color.get(n):
                dfs(n)
        return found

    ok = True
    for with_tests, edges in results.items():
        label = "with tests" if with_tests else "without tests"
        folder = defaultdict(set)
        for s, ds in edges.items():
            for d in ds:
                if top(s) != top(d):
                    folder[top(s)].add(top(d))
        c1, c2 = cycles(edges), cycles(folder)
        print(f"== {label}: {sum(len(v) for v in edges.values())} module edges; "
              f"module cycles: {len(c1)}; folder cycles: {len(c2)}")
        for c in c1 + c2:
            ok = False
            print("   CYCLE:", " -> ".join(c))
        print(f"\nFolder-level graph ({label}):")
        for s in sorted(folder):
            print(f"  {s:14} -> {', '.join(sorted(folder[s]))}")
        if with_tests:
            print("\nModule-level graph (tests included):")
            for s in sorted(edges):
                print(f"  {s:24} -> {', '.join(sorted(edges[s]))}")
            print()
    print("ACYCLIC" if ok else "CYCLES FOUND")
    return 0 if ok else 1


sys.exit(main())
