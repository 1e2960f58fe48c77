"""A small SMTP server for the notification tests (standard library only).

    python3 smtp_receiver.py OUT_DIR CERT KEY USER PASSWORD [--no-starttls]

Listens on 127.0.0.1 (a free port, printed on the first line of stdout),
offers STARTTLS (unless --no-starttls) and, once TLS is up, AUTH PLAIN and
LOGIN. It refuses MAIL before TLS and AUTH. Each accepted message is written
to OUT_DIR as one JSON file: envelope, decoded subject and text body, and
whether TLS and which user carried it.
"""

import base64
import email
import email.policy
import json
import os
import socketserver
import ssl
import sys
import threading

OUT, CERT, KEY, USER, PASSWORD = sys.argv[1:6]
OFFER_STARTTLS = "--no-starttls" not in sys.argv
CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
CONTEXT.load_cert_chain(CERT, KEY)
COUNTER = iter(range(1, 1_000_000))
LOCK = threading.Lock()


class Session(socketserver.BaseRequestHandler):
    def setup(self):
        self.sock = self.request
        self.reader = self.sock.makefile("rb")
        self.tls = False
        self.user = None
        self.sender = None
        self.rcpts = []

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def readline(self):
        return self.reader.readline(8192)

    def handle(self):
        self.send("220 test.invalid ESMTP ready")
        while True:
            raw = self.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                caps = ["test.invalid"]
                if OFFER_STARTTLS and not self.tls:
                    caps.append("STARTTLS")
                if self.tls:
                    caps.append("AUTH PLAIN LOGIN")
                caps.append("8BITMIME")
                for c in caps[:-1]:
                    self.send("250-" + c)
                self.send("250 " + caps[-1])
            elif verb == "STARTTLS" and not self.tls:
                self.send("220 go ahead")
                self.sock = CONTEXT.wrap_socket(self.sock, server_side=True)
                self.reader = self.sock.makefile("rb")
                self.tls = True
                self.user = None
            elif verb == "AUTH" and self.tls:
                parts = line.split()
                if parts[1].upper() == "PLAIN":
                    fields = base64.b64decode(parts[2]).split(b"\0")
                    user, password = fields[1].decode(), fields[2].decode()
                else:
                    self.send("334 VXNlcm5hbWU6")
                    user = base64.b64decode(self.readline().strip()).decode()
                    self.send("334 UGFzc3dvcmQ6")
                    password = base64.b64decode(self.readline().strip()).decode()
                if user == USER and password == PASSWORD:
                    self.user = user
                    self.send("235 ok")
                else:
                    self.send("535 bad credentials")
            elif verb == "MAIL":
                if not self.tls or not self.user:
                    self.send("530 TLS and authentication first")
                    continue
                self.sender = line.split(":", 1)[1].strip().strip("<>")
                self.rcpts = []
                self.send("250 ok")
            elif verb == "RCPT":
                self.rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                self.send("250 ok")
            elif verb == "DATA":
                if not self.rcpts:
                    self.send("503 no recipients")
                    continue
                self.send("354 go on")
                data = b""
                while True:
                    l = self.readline()
                    if not l or l == b".\r\n":
                        break
                    if l.startswith(b".."):
                        l = l[1:]
                    data += l
                self.store(data)
                self.send("250 queued")
            elif verb == "QUIT":
                self.send("221 bye")
                return
            elif verb in ("RSET", "NOOP"):
                self.send("250 ok")
            else:
                self.send("502 not here")

    def store(self, data):
        msg = email.message_from_bytes(data, policy=email.policy.default)
        with LOCK:
            n = next(COUNTER)
        record = {
            "from": self.sender,
            "to": self.rcpts,
            "subject": str(msg["subject"]),
            "header_to": str(msg["to"]),
            "delivery": str(msg["x-vetter-delivery"]),
            "body": msg.get_content(),
            "tls": self.tls,
            "user": self.user,
        }
        tmp = os.path.join(OUT, f".{n}.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(OUT, f"{n}.json"))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", 0), Session)
print(server.server_address[1], flush=True)
server.serve_forever()
