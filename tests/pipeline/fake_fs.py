"""A Beam filesystem for tests: ``fakefs://KEY`` is an object store (no directories, like gs:// or s3://) kept
in a local folder, whose writes can be made to fail part-way, as on a full disk.

Registering a :class:`apache_beam.io.filesystem.FileSystem` subclass is all Beam needs: ``FileSystems`` finds
it by its scheme, so every run file the pipeline and the CLI write or read goes through it, in-process (the
in-memory DirectRunner). Configure it through class attributes: ``FakeFileSystem.root`` (the local folder) and
``FakeFileSystem.full_disk`` (None, or ``(predicate on the path, bytes that fit)``).
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
from pathlib import Path

from apache_beam.io.filesystem import BeamIOError, CompressionTypes, FileMetadata, FileSystem

SCHEME = "fakefs"


class _Writer(io.RawIOBase):
    def __init__(self, path: str, budget: int | None):
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._budget = budget

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        if self._budget is not None and len(data) > self._budget:
            self._fh.write(data[: self._budget])  # the disk fills up part-way through this write
            self._budget = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        if self._budget is not None:
            self._budget -= len(data)
        return self._fh.write(data)

    def tell(self) -> int:
        return self._fh.tell()

    def flush(self) -> None:
        if not self._fh.closed:
            self._fh.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        finally:
            self._fh.close()


class FakeFileSystem(FileSystem):
    root: Path | None = None
    full_disk: tuple | None = None  # (predicate(path) -> bool, bytes that fit) or None

    @classmethod
    def scheme(cls) -> str:
        return SCHEME

    # --- paths ---
    def _local(self, path: str) -> str:
        if not path.startswith(f"{SCHEME}://"):
            raise ValueError(f"not a {SCHEME}:// path: {path}")
        return os.path.join(str(self.root), path[len(SCHEME) + 3:])

    def _url(self, local: str) -> str:
        return f"{SCHEME}://" + os.path.relpath(local, str(self.root)).replace(os.sep, "/")

    def join(self, basepath: str, *paths: str) -> str:
        return posixpath.join(basepath.rstrip("/"), *paths)

    def split(self, path: str) -> tuple[str, str]:
        head, tail = posixpath.split(path[len(SCHEME) + 3:].rstrip("/"))
        return f"{SCHEME}://{head}", tail

    def mkdirs(self, path: str) -> None:
        pass

    def has_dirs(self) -> bool:
        return False

    # --- listing ---
    def _list(self, dir_or_prefix: str):
        for dirpath, _, files in os.walk(str(self.root)):
            for name in files:
                local = os.path.join(dirpath, name)
                url = self._url(local)
                if url.startswith(dir_or_prefix):
                    yield FileMetadata(url, os.path.getsize(local), os.path.getmtime(local))

    # --- files ---
    def create(self, path: str, mime_type: str = "application/octet-stream",
               compression_type: str = CompressionTypes.AUTO):
        local = self._local(path)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        budget = None
        if self.full_disk is not None and self.full_disk[0](path):
            budget = self.full_disk[1]
        return io.BufferedWriter(_Writer(local, budget), buffer_size=64)

    def open(self, path: str, mime_type: str = "application/octet-stream",
             compression_type: str = CompressionTypes.AUTO):
        return open(self._local(path), "rb")  # noqa: SIM115 - the caller closes it

    def copy(self, source_file_names, destination_file_names) -> None:
        for src, dst in zip(source_file_names, destination_file_names):
            Path(self._local(dst)).parent.mkdir(parents=True, exist_ok=True)
            Path(self._local(dst)).write_bytes(Path(self._local(src)).read_bytes())

    def rename(self, source_file_names, destination_file_names) -> None:
        errors = {}
        for src, dst in zip(source_file_names, destination_file_names):
            try:
                os.replace(self._local(src), self._local(dst))
            except OSError as exc:
                errors[(src, dst)] = exc
        if errors:
            raise BeamIOError("Rename operation failed", errors)

    def exists(self, path: str) -> bool:
        return os.path.isfile(self._local(path))

    def size(self, path: str) -> int:
        return os.path.getsize(self._local(path))

    def last_updated(self, path: str) -> float:
        return os.path.getmtime(self._local(path))

    def checksum(self, path: str) -> str:
        return str(self.size(path))

    def metadata(self, path: str) -> FileMetadata:
        return FileMetadata(path, self.size(path), self.last_updated(path))

    def delete(self, paths) -> None:
        errors = {}
        for path in paths:
            try:
                os.remove(self._local(path))
            except OSError as exc:
                errors[path] = exc
        if errors:
            raise BeamIOError("Delete operation failed", errors)
