"""A tiny raw AMQP 0-9-1 client for tests that need to send bytes no real client would:
wrong protocol headers, oversized or malformed frames, unknown methods, silent peers.

Only what the tests need: frame encode/decode, the handful of field types, the
start-ok / tune-ok / open handshake, and reading a connection.close or channel.close.
"""
import socket
import struct
import time

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE

CONNECTION_START = (10, 10)
CONNECTION_START_OK = (10, 11)
CONNECTION_TUNE = (10, 30)
CONNECTION_TUNE_OK = (10, 31)
CONNECTION_OPEN = (10, 40)
CONNECTION_OPEN_OK = (10, 41)
CONNECTION_CLOSE = (10, 50)
CONNECTION_CLOSE_OK = (10, 51)
CHANNEL_OPEN = (20, 10)
CHANNEL_OPEN_OK = (20, 11)
CHANNEL_CLOSE = (20, 40)
CHANNEL_CLOSE_OK = (20, 41)
QUEUE_DECLARE = (50, 10)
QUEUE_DECLARE_OK = (50, 11)
BASIC_PUBLISH = (60, 40)


# ----------------------------------------------------------------------------- encoding

def octet(v):
    return struct.pack(">B", v)


def short(v):
    return struct.pack(">H", v)


def long_(v):
    return struct.pack(">I", v)


def longlong(v):
    return struct.pack(">Q", v)


def shortstr(s):
    if isinstance(s, str):
        s = s.encode()
    assert len(s) < 256
    return octet(len(s)) + s


def longstr(s):
    if isinstance(s, str):
        s = s.encode()
    return long_(len(s)) + s


def _field_value(v):
    if isinstance(v, bool):
        return b"t" + octet(1 if v else 0)
    if isinstance(v, int):
        return b"l" + struct.pack(">q", v)
    if isinstance(v, (str, bytes)):
        return b"S" + longstr(v)
    if isinstance(v, dict):
        return b"F" + table(v)
    if isinstance(v, (list, tuple)):
        body = b"".join(_field_value(x) for x in v)
        return b"A" + long_(len(body)) + body
    if v is None:
        return b"V"
    raise TypeError(f"cannot encode {v!r}")


def table(d):
    body = b"".join(shortstr(k) + _field_value(v) for k, v in (d or {}).items())
    return long_(len(body)) + body


def frame(ftype, channel, payload, end=FRAME_END):
    return struct.pack(">BHI", ftype, channel, len(payload)) + payload + bytes([end])


def method_frame(channel, cls_meth, args=b""):
    cls, meth = cls_meth
    return frame(FRAME_METHOD, channel, struct.pack(">HH", cls, meth) + args)


def heartbeat_frame():
    return frame(FRAME_HEARTBEAT, 0, b"")


def content_header_frame(channel, body_size, cls=60, flags=0, props=b""):
    return frame(FRAME_HEADER, channel, struct.pack(">HHQH", cls, 0, body_size, flags) + props)


def body_frame(channel, body):
    return frame(FRAME_BODY, channel, body)


# ----------------------------------------------------------------------------- decoding

class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        b = self.data[self.pos:self.pos + n]
        if len(b) != n:
            raise ValueError("short read")
        self.pos += n
        return b

    def octet(self):
        return self.take(1)[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def long(self):
        return struct.unpack(">I", self.take(4))[0]

    def longlong(self):
        return struct.unpack(">Q", self.take(8))[0]

    def shortstr(self):
        return self.take(self.octet()).decode("utf-8", "replace")

    def longstr(self):
        return self.take(self.long())

    def table(self):
        r = Reader(self.longstr())
        out = {}
        while r.pos < len(r.data):
            k = r.shortstr()
            out[k] = r.value()
        return out

    def value(self):
        t = chr(self.octet())
        if t == "t":
            return bool(self.octet())
        if t == "b":
            return struct.unpack(">b", self.take(1))[0]
        if t == "B":
            return self.octet()
        if t == "s":
            return struct.unpack(">h", self.take(2))[0]
        if t == "u":
            return self.short()
        if t == "I":
            return struct.unpack(">i", self.take(4))[0]
        if t == "i":
            return self.long()
        if t == "l":
            return struct.unpack(">q", self.take(8))[0]
        if t == "f":
            return struct.unpack(">f", self.take(4))[0]
        if t == "d":
            return struct.unpack(">d", self.take(8))[0]
        if t == "D":
            scale = self.octet()
            return (scale, struct.unpack(">i", self.take(4))[0])
        if t == "S":
            return self.longstr().decode("utf-8", "replace")
        if t == "x":
            return self.longstr()
        if t == "A":
            r = Reader(self.longstr())
            out = []
            while r.pos < len(r.data):
                out.append(r.value())
            return out
        if t == "T":
            return self.longlong()
        if t == "F":
            return self.table()
        if t == "V":
            return None
        raise ValueError(f"unknown field type {t!r}")


class Frame:
    def __init__(self, ftype, channel, payload):
        self.type = ftype
        self.channel = channel
        self.payload = payload

    @property
    def method(self):
        """(class, method) of a method frame."""
        return struct.unpack(">HH", self.payload[:4])

    def args(self):
        return Reader(self.payload[4:])

    def __repr__(self):
        if self.type == FRAME_METHOD:
            return f"Frame(method {self.method} ch={self.channel} {self.payload[4:]!r})"
        return f"Frame(type={self.type} ch={self.channel} {self.payload!r})"


class Closed(Exception):
    """The peer closed the TCP connection."""


# ----------------------------------------------------------------------------- connection

class RawConnection:
    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout
        self.start_args = None
        self.tune = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def recv_some(self, timeout=None):
        """Bytes the peer sent; b'' when it closed the connection."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    def read_exact(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out waiting for bytes")
            data = self.recv_some(left)
            if not data:
                raise Closed(f"peer closed; {len(self.buf)} bytes pending: {self.buf!r}")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        head = self.read_exact(7, deadline)
        ftype, channel, size = struct.unpack(">BHI", head)
        payload = self.read_exact(size, deadline)
        end = self.read_exact(1, deadline)
        if end[0] != FRAME_END:
            raise ValueError(f"bad frame end {end!r}")
        return Frame(ftype, channel, payload)

    def read_method(self, timeout=None, skip_heartbeats=True):
        while True:
            f = self.read_frame(timeout)
            if f.type == FRAME_HEARTBEAT and skip_heartbeats:
                continue
            return f

    def expect(self, cls_meth, timeout=None):
        f = self.read_method(timeout)
        assert f.type == FRAME_METHOD and f.method == cls_meth, f"expected {cls_meth}, got {f!r}"
        return f

    def send_method(self, channel, cls_meth, args=b""):
        self.send(method_frame(channel, cls_meth, args))

    def wait_closed(self, timeout=5.0):
        """True if the peer closes the TCP connection within timeout (data is discarded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.recv_some(max(0.01, deadline - time.monotonic()))
            except socket.timeout:
                return False
            except OSError:
                return True
            if not data:
                return True
            self.buf += data
        return False

    # -- handshake -----------------------------------------------------------------

    def handshake(self, user="guest", password="guest", vhost="/", heartbeat=0,
                  channel_max=2047, frame_max=131072, mechanism="PLAIN", open_ok=True):
        """Runs the handshake up to connection.open; returns the connection.tune values."""
        self.send(PROTOCOL_HEADER)
        f = self.expect(CONNECTION_START)
        r = f.args()
        self.start_args = {
            "version_major": r.octet(), "version_minor": r.octet(),
            "server_properties": r.table(), "mechanisms": r.longstr().decode(),
            "locales": r.longstr().decode(),
        }
        response = b"\x00" + user.encode() + b"\x00" + password.encode()
        args = (table({"product": "rawamqp", "capabilities": {"authentication_failure_close": True}})
                + shortstr(mechanism) + longstr(response) + shortstr("en_US"))
        self.send_method(0, CONNECTION_START_OK, args)
        f = self.read_method()
        if f.method == CONNECTION_CLOSE:
            self.buf = method_frame(0, CONNECTION_CLOSE, f.payload[4:]) + self.buf
            return None
        assert f.method == CONNECTION_TUNE, f
        r = f.args()
        self.tune = {"channel_max": r.short(), "frame_max": r.long(), "heartbeat": r.short()}
        self.send_method(0, CONNECTION_TUNE_OK, short(channel_max) + long_(frame_max) + short(heartbeat))
        self.send_method(0, CONNECTION_OPEN, shortstr(vhost) + shortstr("") + octet(0))
        if open_ok:
            self.expect(CONNECTION_OPEN_OK)
        return self.tune

    def open_channel(self, channel=1):
        self.send_method(channel, CHANNEL_OPEN, shortstr(""))
        self.expect(CHANNEL_OPEN_OK)

    def read_close(self, timeout=None, reply=True):
        """Reads frames until a connection.close; returns (code, text, class_id, method_id).
        Sends connection.close-ok if reply is true."""
        while True:
            f = self.read_method(timeout)
            if f.type == FRAME_METHOD and f.method == CONNECTION_CLOSE:
                r = f.args()
                out = (r.short(), r.shortstr(), r.short(), r.short())
                if reply:
                    try:
                        self.send_method(0, CONNECTION_CLOSE_OK)
                    except OSError:
                        pass
                return out

    def read_channel_close(self, timeout=None, reply=True):
        """Reads frames until a channel.close; returns (channel, code, text, class_id, method_id)."""
        while True:
            f = self.read_method(timeout)
            if f.type == FRAME_METHOD and f.method == CONNECTION_CLOSE:
                r = f.args()
                raise AssertionError(f"connection.close instead: {(r.short(), r.shortstr(), r.short(), r.short())}")
            if f.type == FRAME_METHOD and f.method == CHANNEL_CLOSE:
                r = f.args()
                out = (f.channel, r.short(), r.shortstr(), r.short(), r.short())
                if reply:
                    self.send_method(f.channel, CHANNEL_CLOSE_OK)
                return out


def connect(broker, **handshake_kw):
    """A RawConnection to the broker, handshake done (connection.open-ok received)."""
    c = RawConnection(broker.host, broker.port)
    c.handshake(**handshake_kw)
    return c


# ----------------------------------------------------------------------------- content

BASIC_GET = (60, 70)
BASIC_GET_OK = (60, 71)
BASIC_GET_EMPTY = (60, 72)
CONFIRM_SELECT = (85, 10)
CONFIRM_SELECT_OK = (85, 11)
BASIC_ACK = (60, 80)

# basic property flags, in wire order (bit 15 first)
PROPERTY_FLAGS = [
    ("content_type", 1 << 15), ("content_encoding", 1 << 14), ("headers", 1 << 13),
    ("delivery_mode", 1 << 12), ("priority", 1 << 11), ("correlation_id", 1 << 10),
    ("reply_to", 1 << 9), ("expiration", 1 << 8), ("message_id", 1 << 7),
    ("timestamp", 1 << 6), ("type", 1 << 5), ("user_id", 1 << 4), ("app_id", 1 << 3),
    ("cluster_id", 1 << 2),
]


def publish_frames(channel, exchange, routing_key, body, flags=0, props=b"",
                   frame_max=131072, mandatory=False):
    """The frames of one basic.publish: method, content header (flags + encoded props as
    given) and as many body frames as frame_max requires."""
    out = method_frame(channel, BASIC_PUBLISH, short(0) + shortstr(exchange)
                       + shortstr(routing_key) + octet(1 if mandatory else 0))
    out += content_header_frame(channel, len(body), flags=flags, props=props)
    step = frame_max - 8
    for i in range(0, len(body), step):
        out += body_frame(channel, body[i:i + step])
    return out


def read_content(conn, timeout=None):
    """After a basic.deliver / basic.get-ok / basic.return: (header_frame, [body_frames])."""
    header = conn.read_method(timeout)
    assert header.type == FRAME_HEADER, header
    size = struct.unpack(">Q", header.payload[4:12])[0]
    frames, got = [], 0
    while got < size:
        f = conn.read_method(timeout)
        assert f.type == FRAME_BODY, f
        frames.append(f)
        got += len(f.payload)
    return header, frames


def basic_get(conn, channel, queue, no_ack=True, timeout=None):
    """One basic.get: (get_ok_frame, header_frame, [body_frames]) or None when empty."""
    conn.send_method(channel, BASIC_GET, short(0) + shortstr(queue) + octet(1 if no_ack else 0))
    f = conn.read_method(timeout)
    if f.method == BASIC_GET_EMPTY:
        return None
    assert f.method == BASIC_GET_OK, f
    header, bodies = read_content(conn, timeout)
    return f, header, bodies
