"""The load the bench sends is the load it claims: new events on every pass over a request
file, dated no later than their send. (Before, a run longer than its file sent re-sends —
half of a full run's 50-event POSTs were flagged repeated_id — and batch events were dated
up to two minutes ahead, flagged client_clock.)"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import threading
from pathlib import Path

import pytest

from bench import traffic, wrk
from bench.ippool import load_pool

ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


def _recording_server(bodies: list[bytes], paths: list[str]) -> tuple[socket.socket, int]:
    """A keep-alive HTTP server that keeps every request's path and body and answers 204."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve(conn: socket.socket) -> None:
        buffer = b""
        with conn, contextlib.suppress(ConnectionResetError):  # wrk resets its connections when it stops
            while data := conn.recv(65536):
                buffer += data
                while b"\r\n\r\n" in buffer:
                    head, rest = buffer.split(b"\r\n\r\n", 1)
                    length = int(m.group(1)) if (m := re.search(rb"(?i)content-length: *(\d+)", head)) else 0
                    if len(rest) < length:
                        break
                    paths.append(head.split(b" ", 2)[1].decode())
                    bodies.append(rest[:length])
                    buffer = rest[length:]
                    conn.sendall(ANSWER)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener, listener.getsockname()[1]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_each_pass_over_a_request_file_sends_new_event_ids(tmp_path: Path):
    batch = b'[{"t":"click","id":"aaaa1111","vid":"v1"},{"t":"click","id":"bbbb2222","vid":"v1"}]'
    requests = tmp_path / "r.requests"
    requests.write_text(f"POST\t/c\t{batch.decode()}\tContent-Type: text/plain\nGET\t/c?k=app&id=cccc3333&vid=v1\t\n")
    bodies: list[bytes] = []
    paths: list[str] = []
    listener, port = _recording_server(bodies, paths)
    try:
        wrk.run(f"http://127.0.0.1:{port}/c", wrk.write_script(tmp_path / "r.lua", requests), 1, connections=1, cpus=None)
    finally:
        listener.close()
    posts = [json.loads(b) for b in bodies if b]  # a body that did not parse fails here
    assert len(posts) >= 3, "wrk went round the file at least three times"
    ids = [e["id"] for batch_events in posts for e in batch_events]
    assert len(ids) == len(set(ids)), "an event id was sent twice"
    assert {e["vid"] for b in posts for e in b} == {"v1"}  # only the id changes
    get_ids = [re.search(r"[?&]id=([^&]+)", p).group(1) for p in paths if p.startswith("/c?")]
    assert len(get_ids) == len(set(get_ids)) >= 3
    assert all("vid=v1" in p for p in paths if p.startswith("/c?"))
    # Exactly the ids change, each by its pass's suffix; the rest of every request is the file's.
    assert {re.sub(rb'("id":"[\w-]+?)p\d+"', rb'\1"', b) for b in bodies if b} == {batch}
    assert {re.sub(r"([?&]id=[\w-]+?)p\d+\b", r"\1", p) for p in paths if p.startswith("/c?")} == {"/c?k=app&id=cccc3333&vid=v1"}


def test_batch_events_are_dated_no_later_than_their_send():
    pop = traffic.Population(load_pool(), 200, seed=3)
    send_ms = 1_800_000_000_000
    for request in traffic.realistic(pop, 50, "post50", send_ms):
        stamps = [e["ts"] for e in request.events]
        assert stamps == sorted(stamps)
        assert stamps[-1] <= send_ms
        assert send_ms - stamps[0] < 50 * 5000  # within the page's life, not days before

