"""Reading web archives (WARC 0.17-1.1, WET, ARC v1/v2; plain or gzip) one layer at a time, losing nothing silently.

Each layer sees its own kind of damage and reports it, instead of passing it up as an end of file:

- :mod:`pipeline.archive.source`: the raw bytes of one file, read forward, hashed (sha256) as they pass.
- :mod:`pipeline.archive.streams`: the container. :class:`~pipeline.archive.streams.GzipStream` reads gzip members
  one by one with its own zlib decompressor, knows every member boundary and its file offset, and raises
  :class:`~pipeline.archive.streams.Damage` for a CRC or length check that fails, a deflate data error, a member cut
  by the end of the file, or bytes between members that are not a member; it can resynchronise at the next member
  that holds a record. :class:`~pipeline.archive.streams.PlainStream` is the same interface over an uncompressed file.
- :mod:`pipeline.archive.formats`: record headers: WARC version lines and fields, ARC v1/v2 header lines, and the
  scan for the next record header in damaged data.
- :mod:`pipeline.archive.http`: HTTP response headers and the body's chunked transfer coding and content codings,
  decoded as a stream under a bound on the *decoded* size.
- :mod:`pipeline.archive.digests`: WARC block/payload digests (sha1 and others; base32, hex or base64) checked as the
  bytes stream past.

:mod:`pipeline.warc_reader` frames records on top of these and turns each outcome into a document candidate, a
skipped record, or one error row per damaged stretch.
"""
