"""The web dashboard (GET /, /dashboard/*), tested in a real browser: Debian's chromium,
headless, against a running broker with queues, messages, a dead-letter queue and a named
connection. The page is rendered by its own JavaScript from the management API; the tests
read the DOM Chromium built (--dump-dom), and drive the replay button over the DevTools
protocol (cdp.py). Switchboard's own page, so switchboard_only.
"""
import html.parser
import shutil
import subprocess
import tempfile

import pika
import pytest

from cdp import Browser, chromium_args, chromium_binary
from helpers import get_one, unique, wait_for
from test_http import GUEST, http, request  # noqa: F401  (http is a fixture)

pytestmark = pytest.mark.switchboard_only


@pytest.fixture
def chromium():
    path = chromium_binary()
    if path is None:
        pytest.fail("chromium is not installed (tools/deps.sh test installs it)")
    return path


def base_url(http):
    return f"http://{http[0]}:{http[1]}"


class Rows(html.parser.HTMLParser):
    """The text of each table row of the rendered page, by its data-* attribute."""

    def __init__(self):
        super().__init__()
        self.rows = {}      # (table id, key) -> [cell texts]
        self.by_id = {}     # element id -> text
        self._table = None
        self._row = None
        self._cell = None
        self._ids = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id")
        elif tag == "tr" and self._table:
            key = a.get("data-queue") or a.get("data-connection")
            if key is not None:
                self._row = (self._table, key)
                self.rows[self._row] = []
        elif tag == "td" and self._row:
            self._cell = []
        if "id" in a:
            self._ids.append((a["id"], tag, []))

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._row:
            self.rows[self._row].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None
        if self._ids and self._ids[-1][1] == tag:
            id_, _, text = self._ids.pop()
            self.by_id[id_] = "".join(text).strip()
            if self._ids:
                self._ids[-1][2].extend(text)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._ids:
            self._ids[-1][2].append(data)


def dump_dom(chromium, url, budget_ms=4000):
    """The DOM after the page's scripts ran (Chromium's virtual time, so no real wait)."""
    with_creds = url.replace("http://", "http://guest:guest@", 1)
    profile = tempfile.mkdtemp(prefix="sb-chromium-")
    try:
        r = subprocess.run([chromium, *chromium_args(profile),
                            f"--virtual-time-budget={budget_ms}", "--dump-dom", with_creds],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert r.returncode == 0, r.returncode
    p = Rows()
    p.feed(r.stdout.decode())
    return r.stdout.decode(), p


@pytest.fixture
def scene(broker):
    """A named connection, a queue with 3 ready messages, and a work queue whose
    2 rejected messages sit in a dead-letter queue."""
    params = pika.URLParameters(broker.amqp_url)
    params.client_properties = {"connection_name": unique("dash-conn")}
    c = pika.BlockingConnection(params)
    ch = c.channel()
    ch.confirm_delivery()
    s = {"conn": c, "ch": ch, "name": params.client_properties["connection_name"],
         "queue": unique("dash-q"), "work": unique("dash-work"), "parked": unique("dash-parked"),
         "dlx": unique("dash-dlx")}
    ch.queue_declare(s["queue"])
    for i in range(3):
        ch.basic_publish("", s["queue"], b"m%d" % i)
    ch.exchange_declare(s["dlx"], "fanout")
    ch.queue_declare(s["parked"])
    ch.queue_bind(s["parked"], s["dlx"])
    ch.queue_declare(s["work"], arguments={"x-dead-letter-exchange": s["dlx"]})
    for i in range(2):
        ch.basic_publish("", s["work"], b"job%d" % i)
    for _ in range(2):
        m, _, _ = get_one(ch, s["work"], auto_ack=False)
        ch.basic_reject(m.delivery_tag, requeue=False)
    wait_for(lambda: ch.queue_declare(s["parked"], passive=True).method.message_count == 2,
             what="dead letters parked")
    yield s
    for q in (s["queue"], s["work"], s["parked"]):
        ch.queue_delete(q)
    ch.exchange_delete(s["dlx"])
    c.close()


def test_dashboard_page_needs_the_api_credentials(http):
    status, h, _ = request(http, "GET", "/", auth=None)
    assert status == 401
    assert h["www-authenticate"].startswith("Basic realm=")
    status, h, body = request(http, "GET", "/")
    assert status == 200 and h["content-type"].startswith("text/html")
    assert b'<script src="/dashboard/app.js">' in body
    status, h, body = request(http, "GET", "/dashboard/app.js")
    assert status == 200 and h["content-type"].startswith("text/javascript")
    assert request(http, "GET", "/dashboard/style.css")[1]["content-type"].startswith("text/css")
    assert request(http, "GET", "/dashboard/app.js", auth=None)[0] == 401
    assert request(http, "GET", "/dashboard/no-such-file.js")[0] == 404


def test_dashboard_renders_queues_connections_and_dead_letter_queues(http, chromium, scene):
    page, dom = dump_dom(chromium, base_url(http) + "/")
    assert 'data-loaded="true"' in page, "the page's script did not finish a refresh"
    queue = dom.rows[("queues", scene["queue"])]
    assert queue[0] == scene["queue"]
    assert queue[2:5] == ["3", "0", "0"]            # ready, unacked, consumers
    work = dom.rows[("queues", scene["work"])]
    assert "DLX" in work[1]
    assert work[8] == "2"                            # dead-lettered from it
    parked = dom.rows[("dlqs", scene["parked"])]
    assert parked[:3] == [scene["parked"], "2", scene["work"]]
    conns = [k for t, k in dom.rows if t == "connections"]
    row = next(dom.rows[("connections", k)] for k in conns
               if dom.rows[("connections", k)][0].startswith(scene["name"]))
    assert row[1] == "guest" and "Pika" in row[2] and row[3] == "running"
    assert int(dom.by_id["total-queues"].split()[0].replace(",", "")) >= 3
    assert dom.by_id["alarms"] == "no alarms"


def test_dashboard_replay_button_sends_dead_letters_back(http, chromium, scene):
    with Browser() as b:
        b.call("Network.enable")
        b.call("Network.setExtraHTTPHeaders", headers={"Authorization": GUEST})
        b.call("Page.navigate", url=base_url(http) + "/")
        sel = f'#dlqs tr[data-queue="{scene["parked"]}"] button.replay'
        b.wait(f"document.querySelector('{sel}') !== null", what="the replay button")
        b.evaluate(f"document.querySelector('{sel}').click()")
        text = b.wait("(t => t.startsWith('Replayed') && t)"
                      "(document.getElementById('replay-result').textContent)",
                      what="the replay result")
        assert text == f"Replayed 2 message(s) from {scene['parked']}."
    ch = scene["ch"]
    assert ch.queue_declare(scene["parked"], passive=True).method.message_count == 0
    bodies = sorted(get_one(ch, scene["work"])[2] for _ in range(2))
    assert bodies == [b"job0", b"job1"]
