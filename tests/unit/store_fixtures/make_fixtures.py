#!/usr/bin/env python3
"""Writes the committed store fixture segments (format version 1, see
src/store/FORMAT.md), one per corruption class. Independent of the C code on
purpose: if the two disagree about the format, test_store_fixtures fails.

    python3 tests/unit/store_fixtures/make_fixtures.py   # rewrites *.seg here

Every fixture is segment 1 (the test copies it to <tmp>/0000000001.seg).
Records in "good": M1 (q1, id 100), M2 (q1, id 101), M3 (q2, id 102),
REMOVE of M2, DELIVERED of M3; so recovery yields M1 and M3 (delivered).
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


TABLE = _table()


def crc32c(data, crc=0):
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def seg_header(seq=1, version=1, magic=b"SBSTORE\0"):
    h = magic + struct.pack("<IIQI", version, 0, seq, 0)
    return h + struct.pack("<I", crc32c(h))


def record(rtype, payload):
    head = struct.pack("<I", len(payload))
    rest = struct.pack("<BBH", rtype, 0, 0) + payload
    return head + struct.pack("<I", crc32c(head + rest)) + rest


def message(q, mid, hdr, body):
    return record(1, struct.pack("<IQI", q, mid, len(hdr)) + hdr + body)


def ref(rtype, q, mid, tseg, toff):
    return record(rtype, struct.pack("<IQII", q, mid, tseg, toff))


def build():
    m1 = message(1, 100, b"h1", b"body-1")
    m2 = message(1, 101, b"h2", b"body-2")
    m3 = message(2, 102, b"h3", b"body-3")
    o1 = 32
    o2 = o1 + len(m1)
    o3 = o2 + len(m2)
    tail = ref(2, 1, 101, 1, o2) + ref(3, 2, 102, 1, o3)
    good = seg_header() + m1 + m2 + m3 + tail
    m4 = message(3, 103, b"h4", b"body-4-never-finished")

    bad_crc = bytearray(m2)
    bad_crc[-1] ^= 0x40                       # flip a bit in M2's body
    bad_len = bytearray(m2)
    bad_len[3] = 0x7F                         # M2's length now runs past the file
    unknown = record(200, b"a record from the future")
    shift = len(unknown)                      # M2 and M3 move past it
    tail_u = ref(2, 1, 101, 1, o2 + shift) + ref(3, 2, 102, 1, o3 + shift)
    return {
        "good.seg": good,
        "torn_tail.seg": good + m4[: len(m4) - 7],
        "bad_crc.seg": seg_header() + m1 + bytes(bad_crc) + m3 + tail,
        "bad_length.seg": seg_header() + m1 + bytes(bad_len) + m3 + tail,
        "unknown_type.seg": seg_header() + m1 + unknown + m2 + m3 + tail_u,
        "wrong_version.seg": seg_header(version=2) + m1,
        "bad_magic.seg": seg_header(magic=b"NOTSTORE") + m1,
        "torn_header.seg": seg_header()[:20],
    }


def main():
    for name, data in build().items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
