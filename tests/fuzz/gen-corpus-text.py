#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes the text seed corpora of fuzz_config (YAML), fuzz_http (request
# heads), fuzz_mlu_json (JSON) and fuzz_dataset (dataset files; byte 0 of
# each seed picks the loader, see fuzz_dataset.c) into tests/fuzz/corpus/.
# Valid inputs of each kind, then truncated, malformed and hostile ones.
# Deterministic (gzip with mtime 0); re-run after a format change and
# commit the output. regress-* seeds are never touched.
import gzip, os, sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")

def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# ---- fuzz_config -----------------------------------------------------------
PEER = """# peer0.org1
general:
  id: peer0.org1.example.com
  listen_host: 127.0.0.1
  listen_port: 7051
  data_dir: /var/lib/fedledger/peer0
  genesis: genesis.block
  log: info
msp:
  dir: crypto/peerOrganizations/org1.example.com/peers/peer0/msp
  mspid: Org1MSP
operations:
  host: 127.0.0.1
  port: 9443
gateway:
  endorse_timeout: 5s
  commit_timeout: 1m30s
  broadcast_timeout: 1500ms
deliver:
  retry: 2s
  stall_timeout: 1.5h
  orderers:
    - host: orderer0.example.com
      port: 7050
    - {host: orderer1.example.com, port: 0x1b8b}
chaincode:
  mode: process
  workers: 4
  timeout: 30s
"""
ORDERER = """general:
  id: 2
  listen_port: 7050
broadcast:
  verify: yes
  workers: 2
  batch: 64
pbft:
  f: 1
  batch_max_count: 500
  batch_max_bytes: 1048576
  batch_timeout: 50ms
  checkpoint_interval: 32
  watermark_window: 128
  view_change_timeout: 2s
  request_timeout: 2s
  resend: 500ms
  max_inflight: 128
"""
put("fuzz_config", "peer", PEER)
put("fuzz_config", "orderer", ORDERER)
put("fuzz_config", "peer_truncated", PEER[: len(PEER) // 2])
put("fuzz_config", "anchors", """defaults: &d
  port: 7050
  host: localhost
orderers:
  - <<: *d
    host: o0
  - *d
list: &l [1, 2, 3]
again: *l
""")
put("fuzz_config", "scalars", """a: "quoted: value"
b: 'single ''quoted'''
c: |
  literal
  block
d: >
  folded
  text
e: ~
f: null
g: -12
h: +7
i: 0x7fffffffffffffff
j: 18446744073709551616
k: 1.5e3
l: .inf
m: TRUE
n: Off
o: 500ms
p: 1h2m3s4ms
q: 5
"dotted.key": x
'': empty key
ünïcode: ✓
""")
put("fuzz_config", "flow", "{general: {id: a, listen_port: 1}, list: [a, {b: c}, [d]]}\n")
put("fuzz_config", "multi_doc", "a: 1\n---\nb: 2\n...\n")
put("fuzz_config", "duplicate_key", "a: 1\na: 2\n")
put("fuzz_config", "bad_indent", "a:\n  b: 1\n c: 2\n")
put("fuzz_config", "tab_indent", "a:\n\tb: 1\n")
put("fuzz_config", "root_seq", "- a\n- b\n")
put("fuzz_config", "root_scalar", "just text\n")
put("fuzz_config", "deep", "a: " + "[" * 80 + "]" * 80 + "\n")
put("fuzz_config", "laughs", "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n")
put("fuzz_config", "recursive_alias", "a: &a\n  b: *a\n")
put("fuzz_config", "unknown_alias", "a: *nope\n")
put("fuzz_config", "tags", "a: !!str 5\nb: !!int x\nc: !custom y\n%YAML 1.1\n")
put("fuzz_config", "nul_byte", b"a: b\x00c\n")
put("fuzz_config", "bad_utf8", b"a: \xff\xfe\n")
put("fuzz_config", "empty", "")
put("fuzz_config", "comment_only", "# nothing\n")

# ---- fuzz_http ------------------------------------------------------------
H = {
    "get_healthz": "GET /healthz HTTP/1.1\r\nHost: localhost:9443\r\nUser-Agent: curl/7.88\r\nAccept: */*\r\n\r\n",
    "get_metrics": "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain;version=0.0.4\r\n\r\n",
    "get_version_10": "GET /version HTTP/1.0\r\n\r\n",
    "head_query": "HEAD /metrics?name[]=fl_ledger_height HTTP/1.1\r\nhost: a\r\n\r\n",
    "absolute_form": "GET http://node:9443/healthz?x=1 HTTP/1.1\r\nHost: node\r\n\r\n",
    "absolute_no_path": "GET https://node:9443 HTTP/1.1\r\nHost: node\r\n\r\n",
    "asterisk": "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "lf_only": "GET / HTTP/1.1\nHost: a\n\n",
    "content_length": "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "pipelined": "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
    "partial_line": "GET /healthz HTT",
    "partial_headers": "GET /healthz HTTP/1.1\r\nHost: a\r\nAcc",
    "no_host": "GET / HTTP/1.1\r\n\r\n",
    "two_hosts": "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "cl_conflict": "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "cl_te": "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    "cl_bad": "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    "bare_cr": "GET / HTTP/1.1\rHost: a\r\n\r\n",
    "obs_fold": "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
    "space_before_colon": "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "http2": "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    "bad_version": "GET / HTTP/1.x\r\n\r\n",
    "bad_method": "G@T / HTTP/1.1\r\n\r\n",
    "relative_target": "GET healthz HTTP/1.1\r\nHost: a\r\n\r\n",
    "many_headers": "GET / HTTP/1.1\r\nHost: a\r\n" + "".join("X-%d: v\r\n" % i for i in range(120)) + "\r\n",
    "long_line": "GET /" + "a" * 9000 + " HTTP/1.1\r\n\r\n",
    "tls_hello": "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "prior_knowledge_h2": "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}
for k, v in H.items():
    put("fuzz_http", k, v.encode("latin-1"))
put("fuzz_http", "nul_in_line", b"GET /\x00 HTTP/1.1\r\n\r\n")
put("fuzz_http", "utf8_value", "GET / HTTP/1.1\r\nHost: a\r\nX-Name: Zoë ✓\r\n\r\n".encode())
put("fuzz_http", "empty", b"")

# ---- fuzz_mlu_json ---------------------------------------------------------
TASK = ('{"arch":"mlp 41-64-5","tensors":[{"name":"dense/kernel","shape":[41,64]},'
        '{"name":"dense/bias","shape":[64]}],"n_params":2688,"rule":"multikrum","f":1,"m":0,'
        '"clip_norm":10.5,"max_norm_z":3,"min_cosine":-1,"max_norm":0,"norm_window":3,'
        '"min_updates":3,"max_updates":0,"round_ms":60000,"reject_limit":0.5,"reject_min":3,'
        '"init_hash":"' + "ab" * 32 + '"}')
put("fuzz_mlu_json", "task_def", TASK)
put("fuzz_mlu_json", "task_def_truncated", TASK[:100])
put("fuzz_mlu_json", "update_record", '{"task":"t1","round":3,"client":"Org1MSP:client1@org1.example.com",'
    '"status":"REJECTED","reason":"OUTLIER_NORM_Z","norm":12.25,"norm_z":4.0000000000000009,'
    '"cosine":null,"samples":1000,"ts":1700000000000,"detail":"z 4.0 > 3"}')
put("fuzz_mlu_json", "whitespace", ' \t\n\r[ 1 , -0 , 0.5e-3 , 1E+2 , true , false , null , "" , { } , [ ] ]\r\n')
put("fuzz_mlu_json", "escapes", r'"\" \\ \/ \b \f \n \r \t \u00e9 \u20ac \ud83d\ude00"')
put("fuzz_mlu_json", "lone_surrogate", r'"\ud800 x"')
put("fuzz_mlu_json", "nul_escape", r'{"a":"\u0000"}')
put("fuzz_mlu_json", "duplicate_key", '{"a":1,"a":2}')
put("fuzz_mlu_json", "deep_32", "[" * 32 + "]" * 32)
put("fuzz_mlu_json", "deep_33", "[" * 33 + "]" * 33)
put("fuzz_mlu_json", "numbers", "[0,-0,1.0,123456789012345678901234567890,1e308,1e309,-1e-400,"
    "18446744073709551615,18446744073709551616,0.1]")
put("fuzz_mlu_json", "bad_numbers", "[01, 1., .5, -, +1, 1e, 0x10, NaN, Infinity]")
put("fuzz_mlu_json", "trailing_comma", '{"a":[1,2,],}')
put("fuzz_mlu_json", "trailing_bytes", '{"a":1} x')
put("fuzz_mlu_json", "raw_control", '"a\tb"')
put("fuzz_mlu_json", "bad_utf8", b'"\xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80"')
put("fuzz_mlu_json", "unterminated", '{"a":"b')
put("fuzz_mlu_json", "scalar_true", "true")
put("fuzz_mlu_json", "empty", "")

# ---- fuzz_dataset -----------------------------------------------------------
def ds(name, which, text, gz=False):
    data = text.encode() if isinstance(text, str) else text
    if gz:
        data = gzip.compress(data, mtime=0)
    put("fuzz_dataset", name, bytes([which]) + data)

CSV0 = "id,proto,a,b,label\n1,tcp,0.5,10,normal\n2,udp,1.5,-3,attack\n3,tcp,2.5e2,0,normal\n"
ds("csv_header", 0, CSV0)
ds("csv_header_gz", 0, CSV0, gz=True)
ds("csv_header_bom_crlf", 0, "\ufeff" + CSV0.replace("\n", "\r\n") + "\r\n\r\n")
ds("csv_quoted", 0, 'id,proto,a,b,label\n1,"t,cp",0.5,"1",normal\n2,"x""y",1,2,"a b"\n')
ds("csv_unterminated_quote", 0, 'id,proto,a,b,label\n1,"tcp,0.5,1,normal\n')
ds("csv_ragged", 0, "id,proto,a,b,label\n1,tcp,0.5,normal\n")
ds("csv_nan", 0, "id,proto,a,b,label\n1,tcp,nan,1,normal\n2,tcp,inf,1,x\n")
ds("csv_no_label_column", 0, "id,proto,a,b\n1,tcp,1,2\n")
ds("csv_truncated_gz", 0, gzip.compress(CSV0.encode(), mtime=0)[:20])
ds("csv_names", 1, "1.0,x,yes\n2.0,y,no\n3.5,x,yes\n")
ds("csv_semicolon_skip", 2, "# metadata line\nlabel;f1;f2\nA;1;2\nB;3;4\n")
ds("libsvm", 3, "1 1:0.5 3:2\n-1 2:1 32:7.5\n+1\n0 1:1e-3\n")
ds("libsvm_bad", 3, "1 3:1 2:1\n1 0:1\n1 33:1\n1 a:b\n")
NSL = ("0,tcp,ftp_data,SF,491,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2,2,0.00,0.00,0.00,0.00,1.00,0.00,0.00,"
       "150,25,0.17,0.03,0.17,0.00,0.00,0.00,0.05,0.00,normal,20\n"
       "0,udp,other,SF,146,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,13,1,0.00,0.00,0.00,0.00,0.08,0.15,0.00,"
       "255,1,0.00,0.60,0.88,0.00,0.00,0.00,0.00,0.00,neptune,15\n"
       "0,icmp,eco_i,SF,20,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1,0.00,0.00,0.00,0.00,1.00,0.00,0.00,"
       "1,1,1.00,0.00,1.00,0.00,0.00,0.00,0.00,0.00,mscan,11\n")
ds("nsl_kdd", 4, NSL)
ds("nsl_kdd_gz", 4, NSL, gz=True)
ds("nsl_kdd_unknown_attack", 4, NSL.replace("mscan", "martians"))
ds("nsl_kdd_short_row", 4, "0,tcp,ftp_data,SF,491,normal,20\n")
UNSW_H = ("id,dur,proto,service,state,spkts,dpkts,sbytes,dbytes,rate,sttl,dttl,sload,dload,sloss,dloss,"
          "sinpkt,dinpkt,sjit,djit,swin,stcpb,dtcpb,dwin,tcprtt,synack,ackdat,smean,dmean,trans_depth,"
          "response_body_len,ct_srv_src,ct_state_ttl,ct_dst_ltm,ct_src_dport_ltm,ct_dst_sport_ltm,"
          "ct_dst_src_ltm,is_ftp_login,ct_ftp_cmd,ct_flw_http_mthd,ct_src_ltm,ct_srv_dst,"
          "is_sm_ips_ports,attack_cat,label\n")
UNSW = UNSW_H + (
    "1,0.121478,tcp,-,FIN,6,4,258,172,74.08749,252,254,14158.94238,8495.365234,0,0,24.2956,8.375,"
    "30.177547,11.830604,255,621772692,2202533631,255,0,0,0,43,43,0,0,1,0,1,1,1,1,0,0,0,1,1,0,Normal,0\n"
    "2,0.000009,udp,dns,INT,2,0,114,0,111111.1072,254,0,50666664,0,0,0,0.009,0,0,0,0,0,0,0,0,0,0,57,0,"
    "0,0,33,2,33,33,33,33,0,0,0,33,33,0,Generic,1\n")
ds("unsw_multiclass", 5, "\ufeff" + UNSW)
ds("unsw_binary", 6, UNSW)
ds("unsw_header_only", 6, UNSW_H)
BOT = ("pkSeqID,proto,saddr,sport,daddr,dport,seq,stddev,N_IN_Conn_P_SrcIP,min,state_number,mean,"
       "N_IN_Conn_P_DstIP,drate,srate,max,attack,category,subcategory\n"
       "3142762,udp,192.168.100.150,6551,192.168.100.3,80,251984,1.900363,100,0,4,2.687519,100,0,"
       "0.4046,2.979367,1,DDoS,UDP\n"
       "2,tcp,192.168.100.7,0x0303,192.168.100.3,80,1,0,1,0,1,0,1,0,0,0,0,Normal,Normal\n")
ds("botiot_multiclass", 7, BOT)
ds("botiot_binary", 8, BOT)
IRIS = "150,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\n7.0,3.2,4.7,1.4,1\n6.3,3.3,6.0,2.5,2\n"
ds("iris", 9, IRIS)
ds("iris_bad_value", 9, IRIS.replace("7.0", "seven"))
ds("empty_file", 0, "")
ds("binary_garbage", 4, bytes(range(256)))
