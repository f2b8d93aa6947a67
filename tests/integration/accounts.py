"""Users, vhosts and permissions for tests, on whichever broker is under test.

Through the management HTTP API (as guest) when the broker has one: Switchboard, or a
RabbitMQ with its management plugin. Otherwise, for the reference RabbitMQ that brokers.py
starts without it, through `rabbitmqctl -n NODE` with the node's environment. Everything a
test creates is removed at its end (the `accounts` fixture in conftest.py), so tests can
share one broker.
"""
import base64
import http.client
import json
import subprocess
import urllib.parse

import brokers


def q(name):
    return urllib.parse.quote(name, safe="")


class Accounts:
    def __init__(self, broker):
        self.broker = broker
        self.users, self.vhosts = [], []
        self.http = None
        if broker.http_url:
            u = urllib.parse.urlparse(broker.http_url)
            self.http = (u.hostname, u.port or 80)
        elif getattr(broker, "node", None) is None:
            raise RuntimeError(f"{broker}: no HTTP API and no rabbitmqctl node to manage users")

    # ------------------------------------------------------------------ transport

    def request(self, method, path, body=None, user="guest", password="guest"):
        """(status, parsed JSON or None) of one management API call."""
        c = http.client.HTTPConnection(*self.http, timeout=10)
        try:
            h = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode())
                 .decode()}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                h["Content-Type"] = "application/json"
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
        finally:
            c.close()

    def _ok(self, method, path, body=None):
        status, reply = self.request(method, path, body)
        if status not in (200, 201, 204):
            raise RuntimeError(f"{method} {path}: {status} {reply}")

    def ctl(self, *args):
        r = subprocess.run([str(brokers.RABBIT_BIN / "rabbitmqctl"), "-n", self.broker.node,
                            *args], env=self.broker.env, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {r.stdout} {r.stderr}")

    # ------------------------------------------------------------------ operations

    def add_user(self, name, password, tags=()):
        """Creates the user, or gives an existing one this password and these tags."""
        known = name in self.users
        if not known:
            self.users.append(name)
        if self.http:
            self._ok("PUT", f"/api/users/{q(name)}", {"password": password,
                                                       "tags": ",".join(tags)})
        else:
            self.ctl("change_password" if known else "add_user", name, password)
            self.ctl("set_user_tags", name, *tags)

    def delete_user(self, name):
        if self.http:
            self._ok("DELETE", f"/api/users/{q(name)}")
        else:
            self.ctl("delete_user", name)
        if name in self.users:
            self.users.remove(name)

    def add_vhost(self, name):
        if name not in self.vhosts:
            self.vhosts.append(name)
        if self.http:
            self._ok("PUT", f"/api/vhosts/{q(name)}", {})
        else:
            self.ctl("add_vhost", name)

    def delete_vhost(self, name):
        if self.http:
            self._ok("DELETE", f"/api/vhosts/{q(name)}")
        else:
            self.ctl("delete_vhost", name)
        if name in self.vhosts:
            self.vhosts.remove(name)

    def set_permissions(self, user, vhost="/", configure=".*", write=".*", read=".*"):
        if self.http:
            self._ok("PUT", f"/api/permissions/{q(vhost)}/{q(user)}",
                     {"configure": configure, "write": write, "read": read})
        else:
            self.ctl("set_permissions", "-p", vhost, user, configure, write, read)

    def clear_permissions(self, user, vhost="/"):
        if self.http:
            self._ok("DELETE", f"/api/permissions/{q(vhost)}/{q(user)}")
        else:
            self.ctl("clear_permissions", "-p", vhost, user)

    def cleanup(self):
        for v in list(self.vhosts):
            try:
                self.delete_vhost(v)
            except RuntimeError:
                pass
        for u in list(self.users):
            try:
                self.delete_user(u)
            except RuntimeError:
                pass
