"""A static file server for the igv.js test page, with single byte ranges (igv.js reads its
reference FASTA by range). Binds the loopback address it is given, on a free port, and prints
"port N" once it listens.

    python3 serve.py ADDRESS DIRECTORY
"""
import http.server
import os
import re
import socketserver
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        if not m or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
        if start > end:
            self.send_error(416)
            return None
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self.remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile):
        remaining = getattr(self, "remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0:
            chunk = source.read(min(remaining, 1 << 16))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):
        # HTTPServer looks up the address's host name (a DNS query): not on loopback-only tests.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


address, directory = sys.argv[1], sys.argv[2]
handler = lambda *a, **k: Handler(*a, directory=directory, **k)  # noqa: E731
with Server((address, 0), handler) as server:
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()
