#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""check_schema.py: validates `fedledger ... --json` output against the
schemas documented in docs/cli-json.md, so that the documentation and the
tests cannot drift apart.

    check_schema.py DOC SCHEMA_NAME < output.json
    check_schema.py DOC --list

DOC holds, for every schema, a line `<!-- schema: NAME -->` followed by a
```json fenced block written in the shape notation of docs/cli-json.md:
  - an object is {"field": SHAPE, ...}: exactly these fields, all required;
    a field named "name?" may be absent; a member "...": "any" allows
    fields beyond the listed ones;
  - an array is [SHAPE] (every element has that shape);
  - a string is a type expression "t1|t2|...", each t one of string,
    integer, number, boolean, null, hex64 (64 lowercase hex digits), any,
    object, array, or =literal (exactly that string).
Exit 0 when the output matches, 1 with the first mismatch's path otherwise.
"""
import json
import re
import sys

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def load_schemas(doc):
    text = open(doc, encoding="utf-8").read()
    out = {}
    for m in re.finditer(r"<!-- schema: ([a-z0-9-]+) -->\s*```json\n(.*?)```", text, re.S):
        name, body = m.group(1), m.group(2)
        if name in out:
            raise SystemExit(f"{doc}: schema {name} defined twice")
        try:
            out[name] = json.loads(body)
        except json.JSONDecodeError as e:
            raise SystemExit(f"{doc}: schema {name} is not JSON: {e}")
    return out


def type_ok(t, v):
    if t == "any":
        return True
    if t.startswith("="):
        return v == t[1:]
    if t == "string":
        return isinstance(v, str)
    if t == "hex64":
        return isinstance(v, str) and HEX64.match(v) is not None
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == "boolean":
        return isinstance(v, bool)
    if t == "null":
        return v is None
    if t == "object":
        return isinstance(v, dict)
    if t == "array":
        return isinstance(v, list)
    raise SystemExit(f"schema error: unknown type '{t}'")


def check(shape, v, path):
    """Returns None or a message naming the first mismatch."""
    if isinstance(shape, str):
        alts = shape.split("|")
        if any(type_ok(t, v) for t in alts):
            return None
        return f"{path}: expected {shape}, got {json.dumps(v)[:80]}"
    if isinstance(shape, list):
        if not isinstance(v, list):
            return f"{path}: expected an array, got {json.dumps(v)[:80]}"
        for i, e in enumerate(v):
            err = check(shape[0], e, f"{path}[{i}]")
            if err:
                return err
        return None
    if isinstance(shape, dict) and "$or" in shape:
        errs = [check(alt, v, path) for alt in shape["$or"]]
        if any(e is None for e in errs):
            return None
        return " / ".join(errs)
    if isinstance(shape, dict):
        if not isinstance(v, dict):
            return f"{path}: expected an object, got {json.dumps(v)[:80]}"
        open_ = "..." in shape
        known = set()
        for k, s in shape.items():
            if k == "...":
                continue
            opt = k.endswith("?")
            name = k[:-1] if opt else k
            known.add(name)
            if name not in v:
                if not opt:
                    return f"{path}: missing field '{name}'"
                continue
            err = check(s, v[name], f"{path}.{name}")
            if err:
                return err
        if not open_:
            extra = [k for k in v if k not in known]
            if extra:
                return f"{path}: unexpected field(s) {extra}"
        return None
    raise SystemExit(f"schema error at {path}: {shape!r}")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    schemas = load_schemas(sys.argv[1])
    if sys.argv[2] == "--list":
        print("\n".join(sorted(schemas)))
        return 0
    name = sys.argv[2]
    if name not in schemas:
        raise SystemExit(f"no schema '{name}' in {sys.argv[1]}")
    data = sys.stdin.read()
    try:
        v = json.loads(data)
    except json.JSONDecodeError as e:
        print(f"not JSON: {e}: {data[:200]!r}")
        return 1
    err = check(schemas[name], v, "$")
    if err:
        print(err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
