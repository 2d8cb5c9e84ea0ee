#!/usr/bin/env python3
"""A webhook receiver for tests: logs every POST it gets as one JSON line.

    python3 webhook_receiver.py --port-file F --log L [--port P] [--fail-first N] [--status S]

Listens on 127.0.0.1, on port P or (without --port) a port the system picks, and writes that port to F once it listens (F
appears whole: it is written aside and renamed). Answers POSTs on any path, with HTTP/1.1
keep-alive. Each request is appended to L as one JSON line, flushed before the answer goes out:

    {"time": 1700000000.123, "path": "/hook?x=1", "headers": {"content-type": "..."},
     "body": "...", "status": 200}

`headers` has lower-case names (the last value wins when a name repeats); `body` is the request
body as text (UTF-8, undecodable bytes replaced); `time` is when it arrived (Unix seconds);
`status` is what it was answered. Every request is answered S (--status, default 200), except the
first N (--fail-first), answered 500. Other methods than POST get 501 and are not logged.
SIGTERM or SIGINT stops it (exit status 0).

Self-check, runnable as `python3 -m doctest -v tests/support/webhook_receiver.py`:

>>> import json, os, signal, subprocess, sys, tempfile, time, urllib.error, urllib.request
>>> d = tempfile.mkdtemp()
>>> port_file, log = os.path.join(d, "port"), os.path.join(d, "hooks.jsonl")
>>> receiver = subprocess.Popen([sys.executable, __file__, "--port-file", port_file,
...                              "--log", log, "--fail-first", "1"])
>>> deadline = time.monotonic() + 10
>>> while not os.path.exists(port_file) and time.monotonic() < deadline:
...     time.sleep(0.02)
>>> url = "http://127.0.0.1:%s/hooks/session?x=1" % open(port_file).read()
>>> def post(body):
...     request = urllib.request.Request(url, data=body.encode(), method="POST",
...                                      headers={"Content-Type": "application/json",
...                                               "X-Signature": "sha256=ab"})
...     try:
...         return urllib.request.urlopen(request, timeout=5).status
...     except urllib.error.HTTPError as e:
...         return e.code
>>> post('{"n": 1}'), post('{"n": 2}')
(500, 200)
>>> lines = [json.loads(line) for line in open(log)]
>>> [(r["path"], r["body"], r["status"], r["headers"]["x-signature"]) for r in lines]
[('/hooks/session?x=1', '{"n": 1}', 500, 'sha256=ab'), ('/hooks/session?x=1', '{"n": 2}', 200, 'sha256=ab')]
>>> receiver.send_signal(signal.SIGTERM); receiver.wait(timeout=10)
0
"""

import argparse
import http.server
import json
import os
import signal
import sys
import threading
import time


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    allow_reuse_address = True

    def __init__(self, log_path, fail_first, status, port=0):
        super().__init__(("127.0.0.1", port), Handler)
        self.log_file = open(log_path, "a", encoding="utf-8")
        self.lock = threading.Lock()
        self.fail_first = fail_first
        self.status = status
        self.count = 0

    def record(self, entry):
        """Picks the status of the next request and logs it, in arrival order."""
        with self.lock:
            self.count += 1
            entry["status"] = 500 if self.count <= self.fail_first else self.status
            self.log_file.write(json.dumps(entry) + "\n")
            self.log_file.flush()
            return entry["status"]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries Content-Length
    # The status line and headers go out in one write, the body in another: with Nagle on, a
    # kept-alive client waits for the delayed ACK (40 ms) before each body.
    disable_nagle_algorithm = True

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self):
        arrived = time.time()
        body = self.read_body()
        status = self.server.record({
            "time": arrived,
            "path": self.path,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "body": body.decode("utf-8", errors="replace"),
        })
        self.send_response(status)
        if status < 200 or status in (204, 304):  # answers without a body, nor Content-Length
            self.end_headers()
            return
        answer = json.dumps({"ok": 200 <= status < 300}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass  # the JSON log is the record; stderr stays quiet


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port-file", required=True, help="where to write the port")
    parser.add_argument("--log", required=True, help="the JSON-lines file requests go to")
    parser.add_argument("--port", type=int, default=0, metavar="P",
                        help="the port to listen on (default: one the system picks)")
    parser.add_argument("--fail-first", type=int, default=0, metavar="N",
                        help="answer 500 to the first N requests")
    parser.add_argument("--status", type=int, default=200, metavar="S",
                        help="the status of every other answer (default 200)")
    args = parser.parse_args()

    # Blocked before any thread starts, so that every thread inherits the mask and the main thread
    # alone takes the signals, with sigwait: the exit is immediate.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    server = Receiver(args.log, args.fail_first, args.status, args.port)
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    serving.start()

    temporary = args.port_file + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    os.replace(temporary, args.port_file)

    signal.sigwait(stop_signals)
    server.shutdown()
    serving.join()
    server.server_close()
    server.log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
