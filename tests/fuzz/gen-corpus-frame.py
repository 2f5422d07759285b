#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes the seed corpus of fuzz_frame into tests/fuzz/corpus/fuzz_frame/:
# valid frames of every kind (alone and concatenated), truncated frames,
# oversize lengths, invalid flag combinations and garbage. Deterministic;
# re-run after a change of the frame format and commit the output.
import os, struct, sys

def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def zigzag(v):
    return (v << 1) ^ (v >> 31) if v >= 0 else ((-v) << 1) - 1

def frame(call_id=0, method=None, flags=0, status=0, error=None, payload=b""):
    body = bytearray()
    if call_id: body += b"\x08" + varint(call_id)
    if method: body += b"\x12" + varint(len(method)) + method.encode()
    if flags: body += b"\x18" + varint(flags)
    if status: body += b"\x20" + varint(zigzag(status))
    if error: body += b"\x2a" + varint(len(error)) + error.encode()
    if payload: body += b"\x32" + varint(len(payload)) + payload
    return struct.pack(">I", len(body)) + bytes(body)

REQ, END, ERR, CAN, PING, PONG = 1, 2, 4, 8, 16, 32
seeds = {
    "req_unary": frame(1, "Orderer/Broadcast", REQ | END, payload=b"envelope"),
    "req_stream": frame(2, "Orderer/Deliver", REQ, payload=b"\x00" * 16),
    "data": frame(2, payload=b"block bytes"),
    "data_empty": frame(3),
    "end": frame(2, flags=END),
    "reply": frame(1, flags=END, payload=bytes(range(256))),
    "error": frame(4, flags=ERR | END, status=-20, error="unknown method X/Y"),
    "error_conn": frame(0, flags=ERR | END, status=-7, error="frame too big"),
    "cancel": frame(5, flags=CAN),
    "ping": frame(0, flags=PING, payload=b"12345678"),
    "pong": frame(0, flags=PONG),
    "big_call_id": frame(2**64 - 1, flags=END),
    "payload_4k": frame(9, payload=bytes(i % 251 for i in range(4096))),
}
seeds["pipeline"] = b"".join(seeds[k] for k in ("req_unary", "req_stream", "data", "end", "ping"))
seeds["pipeline_then_garbage"] = seeds["pipeline"] + b"\x00\x00\x00\x05\xff\xff\xff\xff\xff"
seeds["truncated_header"] = seeds["req_unary"][:3]
seeds["truncated_body"] = seeds["req_unary"][:-3]
seeds["truncated_second"] = seeds["data"] + seeds["reply"][:40]
seeds["oversize_len"] = struct.pack(">I", 0x7FFFFFFF) + b"abc"
seeds["oversize_len_1m1"] = struct.pack(">I", (1 << 20) + 1)
seeds["len_zero"] = struct.pack(">I", 0)
seeds["garbage_after_len"] = struct.pack(">I", 10) + b"\xff" * 10
seeds["garbage"] = bytes((i * 97 + 13) % 256 for i in range(64))
seeds["bad_req_no_method"] = frame(5, flags=REQ)
seeds["bad_req_no_id"] = frame(0, "A/B", REQ)
seeds["bad_method_space"] = frame(5, "A B", REQ)
seeds["bad_unknown_flag"] = frame(5, flags=64)
seeds["bad_method_on_data"] = frame(5, "A/B", 0)
seeds["bad_error_no_status"] = frame(5, flags=ERR, error="x")
seeds["bad_status_no_error"] = frame(5, status=-3)
seeds["bad_ping_with_id"] = frame(5, flags=PING)
seeds["bad_cancel_payload"] = frame(5, flags=CAN, payload=b"x")
seeds["unknown_fields"] = (lambda b: struct.pack(">I", len(b)) + b)(
    b"\x08\x01" + b"\x38\x05" * 20 + b"\x42\x03abc")
seeds["duplicate_fields"] = (lambda b: struct.pack(">I", len(b)) + b)(
    b"\x08\x01\x08\x02\x32\x01a\x32\x02bc")
seeds["truncated_varint"] = (lambda b: struct.pack(">I", len(b)) + b)(b"\x08\xff\xff")
seeds["bad_wiretype"] = (lambda b: struct.pack(">I", len(b)) + b)(b"\x0f\x01")
seeds["len_past_end"] = (lambda b: struct.pack(">I", len(b)) + b)(b"\x32\x7f" + b"z" * 5)

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "fuzz_frame")
os.makedirs(out, exist_ok=True)
for name, data in sorted(seeds.items()):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds written to {out}")
