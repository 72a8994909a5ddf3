"""Build the regression fixtures of issue 10 in ``malformed/`` from the bundled real fixtures (deterministic).

Each file reproduces one class of damage the reader once mishandled (see NOTICE.md for the list). They are
committed; this script says exactly how each was made, and re-running it gives the same bytes:

    .venv/bin/python tests/data/warc/make_malformed.py
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "malformed"
_CL = re.compile(rb"^Content-Length:[^\r\n]*", re.M | re.I)
_DIGESTS = re.compile(rb"^WARC-(?:Block|Payload)-Digest:[^\r\n]*\r\n", re.M | re.I)


def members(data: bytes) -> list[bytes]:
    """The decompressed data of each gzip member."""
    out, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        out.append(d.decompress(data[pos:]))
        pos = len(data) - len(d.unused_data)
    return out


def member_bytes(data: bytes) -> list[bytes]:
    """The compressed bytes of each gzip member."""
    out, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        end = len(data) - len(d.unused_data)
        out.append(data[pos:end])
        pos = end
    return out


def gz(record: bytes) -> bytes:
    return gzip.compress(record, compresslevel=9, mtime=0)


def set_length(record: bytes, value: bytes | None) -> bytes:
    head_end = record.index(b"\r\n\r\n")
    head = record[:head_end]
    m = _CL.search(head)
    field = b"" if value is None else b"Content-Length: " + value
    head = head[:m.start()] + field + head[m.end():]
    if value is None:
        head = head.replace(b"\r\n\r\n", b"\r\n")
    return head + record[head_end:]


def split(record: bytes) -> tuple[bytes, bytes, bytes]:
    """(WARC header, HTTP head, HTTP body) of a response record."""
    head_end = record.index(b"\r\n\r\n") + 4
    length = int(_CL.search(record[:head_end]).group(0).split(b":")[1])
    block = record[head_end:head_end + length]
    split_at = block.index(b"\r\n\r\n") + 4
    return record[:head_end], block[:split_at], block[split_at:]


def rebuild(header: bytes, head: bytes, body: bytes) -> bytes:
    block = head + body
    return set_length(_DIGESTS.sub(b"", header), str(len(block)).encode()) + block + b"\r\n\r\n"


def with_http_header(head: bytes, name: bytes, value: bytes) -> bytes:
    lines = [ln for ln in head[:-4].split(b"\r\n") if not ln.lower().startswith(name.lower() + b":")]
    return b"\r\n".join(lines + [name + b": " + value]) + b"\r\n\r\n"


def chunked(body: bytes, size: int = 4096) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def main() -> None:
    cc = (HERE / "cc-main-2020-34.warc.gz").read_bytes()
    cc_members, cc_raw = member_bytes(cc), members(cc)
    heritrix = members((HERE / "ia-2008-heritrix.warc.gz").read_bytes())
    clueweb = members((HERE / "clueweb09-invalid-date.warc.gz").read_bytes())
    files: dict[str, bytes] = {}

    # Per-record gzip (Common Crawl 2020): records 0..4 are warcinfo, request, response (37 KB), metadata,
    # request; record 5 (a 105 KB response) is left out to keep the files small; 8 and 11 are responses.
    keep = [0, 1, 2, 3, 4, 6, 7]

    def cc_with(index: int, record: bytes, indexes: list[int] = keep) -> bytes:
        return b"".join(gz(record) if i == index else cc_members[i] for i in indexes)

    files["cl-not-a-number.warc.gz"] = cc_with(2, set_length(cc_raw[2], b"abc"))
    files["cl-zero.warc.gz"] = cc_with(2, set_length(cc_raw[2], b"0"))
    length = int(_CL.search(cc_raw[2]).group(0).split(b":")[1])
    files["cl-too-small-member.warc.gz"] = cc_with(2, set_length(cc_raw[2], str(length - 5000).encode()))
    files["member-cut-mid-file.warc.gz"] = b"".join(
        cc_members[i][:len(cc_members[i]) // 2] if i == 2 else cc_members[i] for i in keep)
    longer = keep + list(range(8, 16))
    flipped = bytearray(b"".join(cc_members[i] for i in longer))
    at = sum(len(cc_members[i]) for i in longer[:longer.index(11)]) + len(cc_members[11]) // 2
    flipped[at] ^= 0x10  # inside the deflate data of response 11, mid-file
    files["flipped-bit.warc.gz"] = bytes(flipped)
    files["garbage-between-members.warc.gz"] = b"".join(cc_members[i] for i in keep[:3]) + \
        b"this is not a gzip member\n" + b"".join(cc_members[i] for i in keep[3:])
    files["duplicate-member.warc.gz"] = b"".join(cc_members[i] for i in keep[:4]) + cc_members[3] + \
        b"".join(cc_members[i] for i in keep[4:])
    files["empty.warc.gz"] = gz(b"")

    header, head, body = split(cc_raw[2])
    huge = rebuild(header, b"HTTP/1.1 3000000000 OK" + head[head.index(b"\r\n"):], body)
    header8, head8, body8 = split(cc_raw[8])
    huger = rebuild(header8, b"HTTP/1.1 99999999999999999999 X" + head8[head8.index(b"\r\n"):], body8)
    files["status-out-of-range.warc.gz"] = cc_with(2, huge) + gz(huger)
    not_gzip = rebuild(header, with_http_header(head, b"Content-Encoding", b"gzip"), b"\x00\x01not gzip" * 50)
    not_br = rebuild(header8, with_http_header(head8, b"Content-Encoding", b"br"), b"\xff\xfe" * 500)
    files["content-encoding-not-gzip.warc.gz"] = gz(cc_raw[0]) + gz(not_gzip) + gz(not_br) + cc_members[3]
    bomb = rebuild(header, with_http_header(with_http_header(head, b"Content-Encoding", b"gzip"),
                                            b"Transfer-Encoding", b"chunked"),
                   chunked(gzip.compress(b"\0" * (1 << 30), compresslevel=9, mtime=0), 1 << 16))
    files["chunked-gzip-bomb.warc.gz"] = gz(cc_raw[0]) + gz(bomb) + cc_members[3]
    tampered = bytearray(cc_raw[2])
    tampered[len(tampered) // 2] ^= 0x01  # one byte of the body changed; the digests still say the old bytes
    files["digest-mismatch.warc.gz"] = cc_with(2, bytes(tampered))

    # Plain WARC/1.0 of small Common Crawl records (warcinfo, requests, metadata, the 8.9 KB response 11).
    small = [cc_raw[i] for i in (0, 1, 3, 10, 11, 12, 13)]
    files["no-content-length.warc"] = b"".join(set_length(r, None) if i == 3 else r for i, r in enumerate(small))
    files["cl-negative.warc"] = b"".join(set_length(r, b"-20") if i == 3 else r for i, r in enumerate(small))
    files["cl-not-a-number.warc"] = b"".join(set_length(r, b"abc") if i == 3 else r for i, r in enumerate(small))
    iana = (HERE / "malformed" / "example-iana.org-chunked.warc").read_bytes()
    # Its one chunk's size line made not hex (digests dropped, so that it is the chunking that is read and fails).
    files["chunked-bad-size.warc"] = _DIGESTS.sub(b"", iana.replace(b"\r\n\r\n001c37\r\n", b"\r\n\r\n001c3g\r\n", 1))

    # Uncompressed WARC/0.17 (Heritrix 2008) and WARC/0.18 (ClueWeb09): a damaged record in the middle.
    her = [heritrix[i] for i in (0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 12, 13, 14)]  # the small records
    her[5] = her[5].replace(b"WARC/0.17\r\n", b"WARC/0.1?\r\n", 1)  # a version line that is not one
    her[9] = set_length(her[9], str(int(_CL.search(her[9]).group(0).split(b":")[1]) + 300).encode())
    files["warc-0.17-resync.warc"] = b"".join(her)
    cw = clueweb[:3]
    cw[1] = set_length(cw[1], str(int(_CL.search(cw[1]).group(0).split(b":")[1]) + 40000).encode())
    files["warc-0.18-resync.warc"] = b"".join(cw)

    # Uncompressed ARC v1 of real (small) Heritrix HTTP responses; record 3's length field damaged.
    responses = []
    for record in heritrix:
        if b"WARC-Type: response" in record[:200] and b"Target-URI: http" in record[:300]:
            url = re.search(rb"WARC-Target-URI: (\S+)", record).group(1)
            _, http_head, http_body = split(record)
            if len(http_head) + len(http_body) < 3000:
                responses.append((url, http_head + http_body))
        if len(responses) == 6:
            break
    version = b"1 0 lowbackground-test\nURL IP-address Archive-date Content-type Archive-length\n\n"
    arc = [b"filedesc://arc-resync.arc 0.0.0.0 20080430204825 text/plain %d\n%s\n" % (len(version), version)]
    for i, (url, block) in enumerate(responses):
        length = b"x%d" % len(block) if i == 3 else b"%d" % len(block)
        arc.append(b"%s 207.241.229.39 2008043020482%d text/html %s\n%s\n" % (url, i, length, block))
    files["arc-resync.arc"] = b"".join(arc)

    # One gzip member holding six records, one bit flipped late in it: the records before it are read.
    single = bytearray(gz(b"".join(cc_raw[i] for i in (0, 1, 3, 4, 6, 7))))
    single[-200] ^= 0x04
    files["single-member-flipped.warc.gz"] = bytes(single)

    # Inputs that are not archives.
    files["index.cdx"] = (b" CDX N b a m s k r M S V g\n"
                          b"org,archive)/ 20080430204826 http://www.archive.org/ text/html 200 "
                          b"2WAXX5NUWNNCS2BDKCO5OVDQBJVNKIVV - - 1134 707 ia-2008-heritrix.warc.gz\n")
    files["index.cdxj"] = (b'org,archive)/ 20080430204826 {"url": "http://www.archive.org/", "mime": "text/html", '
                           b'"status": "200", "length": "1134", "offset": "707", '
                           b'"filename": "ia-2008-heritrix.warc.gz"}\n')
    files["README.txt"] = b"These files are test inputs for lowbackground's reader.\nSee ../NOTICE.md.\n"
    example = members((OUT / "example.arc.gz").read_bytes())[1]
    files["page.html"] = example[example.index(b"<!doctype html>"):].rstrip(b"\n")  # the page an ARC record holds
    files["copy-of-missing-http.warc.gz"] = (OUT / "missing-http.warc.gz").read_bytes()

    for name, data in files.items():
        (OUT / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
