#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Builds the catalogue table of docs/security.md from the verbose output of
# the three bad-input tests (FL_BADINPUT_VERBOSE=1), one row per case:
#
#   FL_BADINPUT_VERBOSE=1 ctest -R test_badinput -V > /tmp/bi.log
#   python3 tests/badinput/catalogue.py /tmp/bi.log > /tmp/table.md
#
# and replaces the table between the markers in docs/security.md with
# --write docs/security.md. `--check docs/security.md` (used by ctest)
# fails when a case of the log has no row in the document.
import re
import sys

RPC_INPUT = {
    "frame.garbage": "a frame whose 32-byte body is not an fl.rpc.Frame",
    "frame.truncated": "a REQUEST frame cut in half (length prefix = the cut length)",
    "frame.truncated-eof": "half a frame, then close_notify",
    "frame.oversize": "length prefix 64 MiB (over max_message_bytes + overhead)",
    "frame.unknown-flags": "flag bit 64",
    "frame.no-call-id": "REQUEST with call id 0",
    "frame.bad-method": "method `Peer/Chain Info` (space)",
    "frame.unknown-method": "method `Peer/DropTables`",
    "frame.replayed-call-id": "a REQUEST reusing the call id of an open call",
    "frame.orphan-data-cancel": "data and CANCEL frames for calls never opened, then a valid call",
    "tls.unknown-ca": "client TLS certificate of a CA of no organisation",
    "tls.expired": "expired client TLS certificate of the organisation's TLS CA",
    "tls.no-client-cert": "no client certificate",
    "tls.plaintext": "a frame without TLS",
    "malformed": "64 bytes that are not protobuf",
    "truncated": "the valid request cut in half",
    "unknown-ca": "signed by a certificate of a CA nobody trusts (claiming Org1MSP)",
    "wrong-role": "signed by a peer (or orderer) identity",
    "revoked": "signed by client2@org1, revoked in the genesis block",
    "expired": "signed by an expired certificate of Org1's CA",
    "bad-signature": "a proposal whose signature is over other bytes",
    "replayed": "the last committed transaction's request again",
    "txid-mismatch": "`tx_id` naming another transaction than the proposal's",
    "unsigned": "the prepared envelope submitted without the client's signature",
    "before-endorse": "a client-signed transaction without endorsements (Submit before Endorse)",
    "stale-read": "a transaction endorsed before another one changed the key it read",
    "stop-before-start": "SeekInfo from block 2 to block 1",
    "future-block": "a block far beyond the height",
    "unknown": "a tx id / blob hash that does not exist",
    "self": "replica id = the orderer's own",
    "impersonation": "orderer3's TLS certificate claiming replica 1",
}
OVERSIZE = {
    "Peer/Endorse": "a proposal with 1,025 arguments (limit 1,024)",
    "Peer/Evaluate": "a proposal with 1,025 arguments (limit 1,024)",
    "Gateway/Endorse": "a proposal with 1,025 arguments (limit 1,024)",
    "Gateway/Evaluate": "a proposal with 1,025 arguments (limit 1,024)",
    "Gateway/Submit": "an endorsed, signed transaction of 5 MiB (over batch_max_bytes, 4 MiB)",
    "Orderer/Broadcast": "an endorsed, signed transaction of 5 MiB (over batch_max_bytes, 4 MiB)",
    "Gateway/CommitStatus": "a 1 MiB tx id",
    "Peer/Deliver": "a SignedSeekInfo with a 1 MiB identity",
    "Orderer/Deliver": "a SignedSeekInfo with a 1 MiB identity",
    "Peer/GetBlock": "block number 2^64-1",
    "Peer/GetTransaction": "a 1 MiB tx id",
    "Peer/GetBlob": "a 1 MiB hash",
    "Peer/ChainInfo": "1 MiB of junk (the method takes no request)",
    "Pbft/Consensus": "1 MiB instead of a 4-byte replica id",
}
WRONGTYPE = {
    "Peer/Endorse": "an Envelope",
    "Peer/Evaluate": "an Envelope",
    "Gateway/Endorse": "a SignedSeekInfo",
    "Gateway/Evaluate": "a SignedCommitStatusRequest",
    "Gateway/Submit": "a SubmitRequest whose envelope is a client's SignedProposal",
    "Orderer/Broadcast": "a client's SignedProposal (wire-compatible with Envelope)",
    "Gateway/CommitStatus": "a GetBlockRequest",
    "Peer/Deliver": "a ChainInfo",
    "Orderer/Deliver": "a ChainInfo",
    "Peer/GetBlock": "an Envelope",
    "Peer/GetTransaction": "a GetBlockRequest",
    "Peer/GetBlob": "a GetBlockRequest",
    "Peer/ChainInfo": "a GetBlockRequest",
    "Pbft/Consensus": "a GetBlockRequest",
}

STATUS = {0: "OK", -1: "NOTFOUND", -3: "EINVAL", -6: "EMALFORMED", -7: "ETOOBIG", -9: "EBADSIG",
          -10: "EPERM", -11: "EREVOKED", -12: "EUNTRUSTED", -14: "ECLOSED", -18: "EEXIST",
          -20: "ENOMETHOD", -21: "EPROTO"}

FILES = {"orderer": "orderer.yaml", "peer": "core.yaml", "network": "network.yaml (genesis)",
         "crypto-config": "crypto-config.yaml (cryptogen)", "task": "task file (task create)",
         "edge": "fedledger-edge", "keeper": "fedledger-keeper", "cli": "fedledger"}

LINE = re.compile(r"^(?:\d+: )?(ok  |FAIL) (\S+)\s+(.*)$")


def rpc_input(name):
    if name.startswith(("peer.", "ord.")):
        srv = "peer" if name.startswith("peer.") else "orderer"
        key = name.split(".", 1)[1]
        return srv, RPC_INPUT.get(key, key)
    method, kind = name.rsplit(".", 1)
    if kind == "oversize":
        return method, OVERSIZE.get(method, kind)
    if kind == "wrong-type":
        return method, WRONGTYPE.get(method, kind)
    return method, RPC_INPUT.get(kind, kind)


def esc(s):
    return s.replace("|", "\\|").replace("\n", " ")


def parse(path):
    rows, expected, last = [], {}, None
    test = None
    for raw in open(path, errors="replace"):
        line = raw.rstrip("\n")
        m = re.search(r"Test command: .*(test_badinput_\w+|run_files\.sh)", line)
        if m:
            test = {"run_files.sh": "test_badinput_files"}.get(m.group(1), m.group(1))
        em = re.search(r"expected code=(-?\d+) text~\"(.*)\"", line)
        if em and last:
            expected[last] = (int(em.group(1)), em.group(2))
            continue
        m = LINE.match(line)
        if not m:
            continue
        status, name, rest = m.groups()
        if rest.startswith(("stored state changed", "committed ")) or "." not in name:
            continue
        last = name
        rows.append((test, name, status.strip(), rest))
    return rows, expected


def answer(test, rest):
    if test == "test_badinput_rpc":
        m = re.match(r"code=(-?\d+) \((\w+)\) text=\"(.*)\"", rest)
        if m:
            code, kind, text = m.groups()
            head = kind if kind != "status" else ("status " + code if code != "0" else "OK")
            return f"{head}: {text}" if text else head
    if test == "test_badinput_data":
        m = re.search(r"\b(E[A-Z]+|OK|NOTFOUND) \"(.*)\"$", rest)
        if m:
            return f"{m.group(1)}: {re.sub(r'/tmp/fl-badds-[^/]+/', '', m.group(2))}"
    m = re.match(r"rc=(\d+): (.*)", rest)
    if m:
        text = re.sub(r"/tmp/fl-bad\w+-\w+/", "", m.group(2)).strip()
        text = re.sub(r"^\S+T\S+Z (ERROR|WARN|INFO) +\S+ +", "", text)
        return f"exit {m.group(1)}: {text[:160]}"
    rest = re.sub(r"/tmp/fl-bad\w+-\w+/", "", rest)
    return re.sub(r"^\S+T\S+Z (ERROR|WARN|INFO) +\S+ +", "", rest)[:160]


def table(rows, expected):
    out = ["| # | case | input | answer (asserted) | test |", "|---|---|---|---|---|"]
    n = 0
    for test, name, status, rest in rows:
        n += 1
        if test == "test_badinput_rpc":
            where, inp = rpc_input(name)
            inp = f"{where}: {inp}"
        elif test == "test_badinput_data":
            inp = name.replace(".", ": ", 1).replace("-", " ")
        else:
            parts = name.split(".")
            what = FILES.get(parts[0], parts[0])
            mid = " ".join(parts[1:-1])
            inp = f"{what} {mid}: {parts[-1].replace('-', ' ')}" if mid else \
                f"{what}: {parts[-1].replace('-', ' ')}"
        ans = answer(test, rest)
        if status == "FAIL":
            code, text = expected.get(name, ("?", "?"))
            code = STATUS.get(code, code) if code != "?" else code
            ans = f"**expected** {code}, reason ~ \"{text}\"; **today**: {ans} (finding)"
        out.append(f"| {n} | `{name}` | {esc(inp)} | {esc(ans)} | `{test}` |")
    return "\n".join(out) + "\n"


BEGIN = "<!-- catalogue: begin (tests/badinput/catalogue.py) -->"
END = "<!-- catalogue: end -->"


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__ or "usage: catalogue.py LOG [--write DOC | --check DOC]")
        return 2
    rows, expected = parse(args[0])
    t = table(rows, expected)
    if len(args) == 3 and args[1] == "--write":
        doc = open(args[2]).read()
        i, j = doc.index(BEGIN), doc.index(END)
        doc = doc[: i + len(BEGIN)] + "\n\n" + t + "\n" + doc[j:]
        open(args[2], "w").write(doc)
        print(f"catalogue: {len(rows)} rows written")
        return 0
    if len(args) == 3 and args[1] == "--check":
        doc = open(args[2]).read()
        missing = [name for _, name, _, _ in rows if f"`{name}`" not in doc]
        for name in missing:
            print(f"catalogue: case {name} has no row in {args[2]}")
        return 1 if missing else 0
    sys.stdout.write(t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
