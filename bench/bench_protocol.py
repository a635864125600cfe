"""Protocol figures, each against a baseline measured in the same run (not a timed test).

- handshake: a full XK handshake + Welcome between two in-memory endpoints,
  against the bare X25519 operations it must do (the floor);
- throughput: 1 MB sealed and opened through Connection (chunked into Noise
  messages of <= 65,535 bytes) against bare libsodium ChaCha20-Poly1305 on the
  same payload in 64 KiB pieces; target ratio <= 1.3;
- bytes per synced document: protocol bytes on the wire over the Automerge
  sync bytes they carry, for an initial sync of 100 documents.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "protocol"))

import automerge.core as am  # noqa: E402

from preau.protocol import crypto  # noqa: E402
from preau.protocol.connection import Config, Connection, MemoryTrustStore, PinnedPeer  # noqa: E402
from preau.protocol.identity import Identity  # noqa: E402
from preau.protocol.sync import SyncSession  # noqa: E402
from preau.protocol.wire import SyncMessage  # noqa: E402

from sync_driver import Side, sync_all  # noqa: E402


def best(fn, repeat=7):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


DISTRICT, SCHOOL = Identity(b"D" * 32), Identity(b"S" * 32)
STORE = MemoryTrustStore(peers={SCHOOL.signing_key: PinnedPeer(SCHOOL.public)})


def open_pair(n=[0]):
    n[0] += 1
    e1, e2 = n[0].to_bytes(32, "big"), (n[0] + 10**9).to_bytes(32, "big")
    i = Connection.initiator(SCHOOL, DISTRICT.public, ephemeral=e1, now=0)
    r = Connection.responder(DISTRICT, STORE, ephemeral=e2, now=0)
    r.receive_data(i.data_to_send())
    i.receive_data(r.data_to_send())
    r.receive_data(i.data_to_send())
    i.receive_data(r.data_to_send())
    return i, r


def bench_handshake():
    N = 50
    t_hs = best(lambda: [open_pair() for _ in range(N)], 3) / N
    priv = b"\x11" * 32
    pub = crypto.x25519_public(b"\x22" * 32)
    # The floor: XK costs each side 1 keygen + 3 DH, and each side checks one Ed25519 binding.
    sig = DISTRICT.binding
    msg = DISTRICT.public.binding_message()

    def floor():
        for _ in range(N):
            for _ in range(8):
                crypto.x25519(priv, pub)
            crypto.ed25519_verify(DISTRICT.signing_key, msg, sig)
            crypto.ed25519_verify(DISTRICT.signing_key, msg, sig)
    t_floor = best(floor, 3) / N
    print(f"handshake (XK + Welcome, both sides): {t_hs * 1e3:.2f} ms; its public-key operations alone "
          f"(8 X25519 + 2 Ed25519 verify): {t_floor * 1e3:.2f} ms; ratio {t_hs / t_floor:.1f}x")


def bench_throughput():
    payload = bytes(range(256)) * 4096  # 1 MiB
    i, r = open_pair()
    key = b"\x07" * 32

    def ours():  # as the node over WebSocket: one frame per WebSocket message
        i.send(SyncMessage("doc", payload))
        events = []
        for frame in i.frames_to_send():
            events += r.receive_data(frame)
        assert len(events[0].data) == len(payload)

    def ours_stream():  # the same through data_to_send(): one joined buffer
        i.send(SyncMessage("doc", payload))
        [msg] = r.receive_data(i.data_to_send())
        assert len(msg.data) == len(payload)

    def bare():
        step = 65536
        for n, pos in enumerate(range(0, len(payload), step)):
            nonce = n.to_bytes(12, "little")
            ct = crypto.aead_raw_nonce_encrypt(key, nonce, b"", payload[pos:pos + step])
            crypto.aead_raw_nonce_decrypt(key, nonce, b"", ct)

    ct_buf, pt_buf = bytearray(65536 + 16), bytearray(65536)
    view = memoryview(payload)

    def bare_in_place():  # the floor: libsodium writing into preallocated buffers, no allocation at all
        step = 65536
        for n, pos in enumerate(range(0, len(payload), step)):
            chunk = view[pos:pos + step]
            crypto.aead_encrypt_into(key, n, b"", chunk, ct_buf, 0)
            crypto.aead_decrypt_into(key, n, b"", memoryview(ct_buf)[:len(chunk) + 16], pt_buf, 0)

    for _ in range(3):
        ours(), ours_stream(), bare(), bare_in_place()
    t_ours, t_stream = best(ours, 21), best(ours_stream, 21)
    t_bare, t_floor = best(bare, 21), best(bare_in_place, 21)
    mbps = len(payload) / t_ours / 1e6
    print(f"throughput 1 MiB seal+open: bare ChaCha20-Poly1305 (pynacl) in 64 KiB pieces {t_bare * 1e3:.2f} ms; "
          f"Connection frame by frame {t_ours * 1e3:.2f} ms ({mbps:.0f} MB/s), ratio {t_ours / t_bare:.2f}x (target <= 1.3); "
          f"through data_to_send() {t_stream * 1e3:.2f} ms, ratio {t_stream / t_bare:.2f}x; "
          f"vs libsodium into preallocated buffers ({t_floor * 1e3:.2f} ms): {t_ours / t_floor:.2f}x")


def bench_sync_bytes():
    N = 100
    i, r = open_pair()
    docs = {}
    for n in range(N):
        d = am.Document()
        with d.transaction() as tx:
            for k in range(20):
                tx.put(am.ROOT, f"ex{k}", am.ScalarType.Int, n + k)
        docs[f"campaign/doc-{n:03d}"] = d
    allow = lambda peer, doc: True
    a, b = Side(SyncSession(r, allow), docs), Side(SyncSession(i, allow), {})
    carried = [0]
    orig = a.session.sync

    def counting(doc_id, data):
        carried[0] += len(data or b"")
        return orig(doc_id, data)
    a.session.sync = counting
    orig_b = b.session.sync

    def counting_b(doc_id, data):
        carried[0] += len(data or b"")
        return orig_b(doc_id, data)
    b.session.sync = counting_b
    sync_all(a, b, {d: None for d in docs}, {})
    wire = a.bytes_sent + b.bytes_sent
    print(f"initial sync of {N} documents: {wire / N:.0f} protocol bytes per document on the wire, "
          f"carrying {carried[0] / N:.0f} Automerge sync bytes (framing overhead ratio {wire / carried[0]:.2f}x)")


TUNED = {"MALLOC_TRIM_THRESHOLD_": str(128 << 20), "MALLOC_MMAP_THRESHOLD_": str(16 << 20)}

if __name__ == "__main__":
    if os.environ.get("PREAU_BENCH_CHILD"):
        bench_throughput()
        sys.exit(0)
    bench_handshake()
    bench_throughput()
    # Receiving 1 MB leaves a fresh 1 MB of plaintext; with glibc's defaults that memory goes back to
    # the OS after each message and page faults dominate. The node can keep it (these two variables):
    out = subprocess.run([sys.executable, __file__], env={**os.environ, **TUNED, "PREAU_BENCH_CHILD": "1"},
                         capture_output=True, text=True, check=True).stdout.strip()
    print(f"  same, glibc keeping freed memory ({', '.join(f'{k}={v}' for k, v in TUNED.items())}):\n  {out}")
    bench_sync_bytes()
