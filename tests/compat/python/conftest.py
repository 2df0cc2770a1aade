"""Fixtures for the Python `pusher` SDK compatibility tests.

- `herald`: the real Herald binary on 127.0.0.1 free ports (server.port = 0), started once for
  the session from a generated config, ready when `GET /ready` answers 200, stopped by PID
  (SIGTERM, then SIGKILL) at the end, whatever happened. With COMPAT_CLUSTER=<n>: n nodes on
  the `redis` driver with a redis-server of their own, behind a round-robin TCP proxy.
- `backend`: the app's backend in Python (a Django/Flask app would do the same): channel auth
  (`/pusher/auth`) and user auth (`/pusher/user-auth`) signed by the Python SDK, and a webhook
  receiver (`/webhook`).
- `listener`: a factory of real pusher-js 8 clients (tests/compat/lib/listen.js) driven over
  stdio: what a browser would see, as JSON lines.
"""

import http.server
import json
import os
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pusher
import pytest

COMPAT = Path(__file__).resolve().parent.parent
REPO = COMPAT.parent.parent
HERALD_BIN = Path(os.environ.get("HERALD_BIN", REPO / "target" / "debug" / "herald")).resolve()
LISTEN_JS = COMPAT / "lib" / "listen.js"

# The Python SDK only accepts numeric app ids.
APP = {"id": "4242", "key": "py-key", "secret": "py-secret"}
WRONG_SECRET = "not-the-app-secret"
USERS = {"1": {"id": 1, "name": "Ann"}, "2": {"id": 2, "name": "Bob"}}

WAIT = 10.0  # seconds any single expected event may take


CLUSTER_NODES = int(os.environ.get("COMPAT_CLUSTER") or 0)


def _config(webhook_url, adapter=""):
    return f"""{adapter}
[server]
host = "127.0.0.1"
port = 0

[metrics]
host = "127.0.0.1"
port = 0

[log]
format = "json"

[shutdown]
drain_secs = 0
ready_grace_secs = 0

[webhooks]
batch_ms = 20
vacate_delay_ms = 0

[[apps]]
id = "{APP['id']}"
key = "{APP['key']}"
secret = "{APP['secret']}"
client_events = true

[[apps.webhooks]]
url = "{webhook_url}"
events = []
"""


class Herald:
    def __init__(self, config_text):
        if not HERALD_BIN.exists():
            raise RuntimeError(f"{HERALD_BIN} is missing: run `cargo build --bin herald`")
        self.dir = tempfile.TemporaryDirectory(prefix="herald-compat-py-")
        path = Path(self.dir.name) / "herald.toml"
        path.write_text(config_text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
        self.proc = subprocess.Popen(
            [str(HERALD_BIN), "--config", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.logs = []
        listening = threading.Event()
        self.fields = {}

        def read():
            for line in self.proc.stdout:
                self.logs.append(line.rstrip("\n"))
                if line.startswith("{"):
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    if rec.get("fields", {}).get("message") == "herald listening":
                        self.fields = rec["fields"]
                        listening.set()

        threading.Thread(target=read, daemon=True).start()
        if not listening.wait(20):
            self.stop()
            raise RuntimeError("herald did not log 'herald listening':\n" + "\n".join(self.logs[-30:]))
        self.addr = self.fields["addr"]
        self.host, port = self.addr.rsplit(":", 1)
        self.port = int(port)
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.fields['metrics_addr']}/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("herald never became ready:\n" + "\n".join(self.logs[-30:]))
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.dir.cleanup()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A redis-server of the session's own, no persistence, stopped by PID."""

    def __init__(self):
        self.port = _free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start (apt-get install redis-server)")
            time.sleep(0.02)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


class RoundRobin:
    """A TCP proxy: each new connection goes to the next node (a load balancer)."""

    def __init__(self, targets):
        turn = [0]

        class Pipe(socketserver.BaseRequestHandler):
            def handle(self):
                host, port = targets[turn[0] % len(targets)]
                turn[0] += 1
                up = socket.create_connection((host, port))

                def pump(src, dst):
                    try:
                        while data := src.recv(65536):
                            dst.sendall(data)
                    except OSError:
                        pass
                    finally:
                        for s in (src, dst):
                            try:
                                s.shutdown(socket.SHUT_RDWR)
                            except OSError:
                                pass

                t = threading.Thread(target=pump, args=(up, self.request), daemon=True)
                t.start()
                pump(self.request, up)
                t.join()
                up.close()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Pipe)
        self.host, self.port = self.server.server_address
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Cluster:
    """CLUSTER_NODES nodes on one Redis behind a round-robin proxy, used as one Herald."""

    def __init__(self, webhook_url):
        self.redis = Redis()
        adapter = f'[adapter]\ndriver = "redis"\nredis_url = "{self.redis.url}"\nlease_ms = 3000\nheartbeat_ms = 500\n'
        self.nodes = []
        try:
            for _ in range(CLUSTER_NODES):
                self.nodes.append(Herald(_config(webhook_url, adapter)))
        except Exception:
            self.stop()
            raise
        self.lb = RoundRobin([(n.host, n.port) for n in self.nodes])
        self.host, self.port = self.lb.host, self.lb.port
        self.addr = f"{self.host}:{self.port}"
        self.fields = self.nodes[0].fields
        self.logs = self.nodes[0].logs

    def stop(self):
        if hasattr(self, "lb"):
            self.lb.stop()
        for n in self.nodes:
            n.stop()
        self.redis.stop()


def sdk_for(herald, secret=APP["secret"]):
    return pusher.Pusher(
        app_id=APP["id"], key=APP["key"], secret=secret, host=herald.host, port=herald.port, ssl=False
    )


class Backend:
    """The app's backend: /pusher/auth, /pusher/user-auth and /webhook."""

    def __init__(self):
        self.sdk = pusher.Pusher(app_id=APP["id"], key=APP["key"], secret=APP["secret"], ssl=False)
        self.auth_requests = []
        self.webhooks = []
        self.cond = threading.Condition()
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8")
                if self.path == "/webhook":
                    with backend.cond:
                        backend.webhooks.append({"headers": dict(self.headers.items()), "body": body})
                        backend.cond.notify_all()
                    return self._json(200, {})
                params = dict(urllib.parse.parse_qsl(body))
                user = USERS.get(self.headers.get("X-Test-User", ""))
                backend.auth_requests.append({"path": self.path, "params": params})
                if user is None:
                    return self._json(403, {"message": "Unauthenticated."})
                if self.path == "/pusher/user-auth":
                    data = {"id": str(user["id"]), "user_info": {"name": user["name"]}}
                    return self._json(200, backend.sdk.authenticate_user(params["socket_id"], data))
                if self.path != "/pusher/auth":
                    return self._json(404, {})
                channel, socket_id = params["channel_name"], params["socket_id"]
                if channel.startswith("presence-"):
                    data = {"user_id": str(user["id"]), "user_info": user}
                    return self._json(200, backend.sdk.authenticate(channel, socket_id, data))
                if channel.startswith("private-"):
                    return self._json(200, backend.sdk.authenticate(channel, socket_id))
                return self._json(403, {"message": "Forbidden"})

            def _json(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_webhook(self, pred, timeout=WAIT):
        """The first webhook request (headers, body, parsed) with an event matching pred."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for hook in self.webhooks:
                    parsed = json.loads(hook["body"])
                    for event in parsed["events"]:
                        if pred(event):
                            return hook, event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching webhook in {timeout}s; got {self.webhooks}")
                self.cond.wait(left)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Listener:
    """A pusher-js client (lib/listen.js); every line it prints is kept in self.items."""

    def __init__(self, herald, backend, user=None):
        opts = {
            "host": herald.host,
            "port": herald.port,
            "key": APP["key"],
            "authEndpoint": f"{backend.url}/pusher/auth",
            "userAuthEndpoint": f"{backend.url}/pusher/user-auth",
            "headers": {"X-Test-User": str(user)} if user else {},
        }
        self.proc = subprocess.Popen(
            ["node", str(LISTEN_JS), json.dumps(opts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(COMPAT),
        )
        self.items = []
        self.stderr = []
        self.cond = threading.Condition()

        def read():
            for line in self.proc.stdout:
                with self.cond:
                    self.items.append(json.loads(line))
                    self.cond.notify_all()

        def read_err():
            for line in self.proc.stderr:
                self.stderr.append(line)

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=read_err, daemon=True).start()

    def send(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def wait(self, pred, timeout=WAIT, what="a matching line"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.items:
                    if pred(item):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out waiting for {what}; saw {self.items}; stderr {''.join(self.stderr)}"
                    )
                self.cond.wait(left)

    def frames(self, event=None, channel=None):
        with self.cond:
            return [
                i["frame"]
                for i in self.items
                if i["type"] == "frame"
                and (event is None or i["frame"].get("event") == event)
                and (channel is None or i["frame"].get("channel") == channel)
            ]

    def wait_frame(self, event, channel=None, pred=lambda f: True, timeout=WAIT):
        item = self.wait(
            lambda i: i["type"] == "frame"
            and i["frame"].get("event") == event
            and (channel is None or i["frame"].get("channel") == channel)
            and pred(i["frame"]),
            timeout,
            f"{event} on {channel}",
        )
        return item["frame"]

    def connected(self):
        item = self.wait(lambda i: i["type"] == "state" and i["current"] == "connected", what="connected")
        return item["socket_id"]

    def subscribe(self, channel):
        self.send(op="subscribe", channel=channel)
        return self.wait_frame("pusher_internal:subscription_succeeded", channel)

    def round_trip(self):
        """pusher:ping → pusher:pong: everything sent before has been handled by Herald."""
        before = len(self.frames("pusher:pong"))
        self.send(op="ping")
        self.wait(lambda i: len(self.frames("pusher:pong")) > before, what="pusher:pong")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture(scope="session")
def backend():
    b = Backend()
    yield b
    b.close()


@pytest.fixture(scope="session")
def herald(backend):
    url = f"{backend.url}/webhook"
    h = Cluster(url) if CLUSTER_NODES else Herald(_config(url))
    yield h
    h.stop()


@pytest.fixture(scope="session")
def sdk(herald):
    return sdk_for(herald)


@pytest.fixture
def listener(herald, backend):
    started = []

    def make(user=None):
        lst = Listener(herald, backend, user)
        started.append(lst)
        lst.connected()
        return lst

    yield make
    for lst in started:
        lst.close()


_seq = [0]


@pytest.fixture
def uniq():
    def make(prefix="c"):
        _seq[0] += 1
        return f"{prefix}{os.getpid()}x{_seq[0]}"

    return make
