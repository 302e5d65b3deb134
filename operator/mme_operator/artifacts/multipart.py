"""An archive's upload to S3 while it is being packaged: each part goes up once it is final.

The packager writes the archive to a file in the work dir and says, as it grows, how
many of its bytes are final (:meth:`ArchiveUpload.written`, on the packager's writer
thread). Once that reaches the multipart threshold the multipart upload is created, and
every complete part is sent from the file by a pool of ``concurrency`` threads while
packaging goes on; neither side waits for the other, and no part is held in memory (each
is read from the file as it is sent). :meth:`ArchiveUpload.finish` sends the rest and
completes the upload; an archive that stayed under the threshold is sent in one
PutObject instead. Parts grow after the 1000th so that any archive fits in S3's 10000
parts without knowing its size in advance.

Object metadata is fixed when an upload is created, so metadata known only once the
archive is complete (its sha256) is sent only where the object is made in one call
(``finish``'s ``late_metadata``, for a PutObject); a multipart archive carries it in the
resource's status instead.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.httpchecksum import DEFAULT_CHECKSUM_ALGORITHM

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger("mme_operator.artifacts")

MAX_PARTS = 10000
MIN_PART_BYTES = 5 * 1024**2
_GROW_EVERY = 1000
_READ_BYTES = 64 * 1024


class FileRange:
    """``length`` bytes of an open file from ``offset``, as a seekable request body.

    Reads with ``os.pread``, so any number of them share one descriptor, and a range
    stays readable after the file is renamed or removed.
    """

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self.fd = fd
        self.offset = offset
        self.length = length
        self.position = 0

    def __len__(self) -> int:
        return self.length

    def read(self, size: int | None = -1) -> bytes:
        left = self.length - self.position
        # At most 64 KiB at a time (a short read, as raw files give): botocore reads each
        # part through, to hash and to send it, in every upload thread, and 1 MiB buffers
        # would stay in each thread's malloc arena. Only read() with no size reads it all.
        want = left if size is None or size < 0 else min(size, left, _READ_BYTES)
        if want <= 0:
            return b""
        data = os.pread(self.fd, want, self.offset + self.position)
        if len(data) < want:
            raise OSError(f"archive file ended at {self.offset + self.position + len(data)}")
        self.position += len(data)
        return data

    def seek(self, position: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: self.length}[whence]
        self.position = max(0, base + position)
        return self.position

    def tell(self) -> int:
        return self.position

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


def part_bytes(index: int, base: int) -> int:
    """Size of part ``index`` (0-based): ``base``, growing by ``base`` every 1000 parts.

    10000 parts then hold 55000 x ``base`` (275 GiB with S3's minimum of 5 MiB).
    """
    return base * (1 + index // _GROW_EVERY)


class ArchiveUpload:
    """The upload of one archive file to ``s3://bucket/key`` while it is written.

    ``extra_args``: ContentType, Metadata, server-side encryption, as PutObject and
    CreateMultipartUpload take them. ``progress`` is called with the bytes of each part
    once S3 has it.
    """

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        key: str,
        extra_args: Mapping[str, Any],
        *,
        threshold: int,
        part_size: int,
        concurrency: int,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.extra_args = dict(extra_args)
        self.threshold = threshold
        self.part_size = max(part_size, MIN_PART_BYTES)  # S3 refuses smaller parts
        self.progress = progress or (lambda _n: None)
        # As the managed transfer does: parts carry CRC32 checksums S3 verifies.
        self.checksum = (
            DEFAULT_CHECKSUM_ALGORITHM.upper()
            if getattr(s3.meta.config, "request_checksum_calculation", None) == "when_supported"
            else None
        )
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="mme-upload")
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._created: Future[str] | None = None
        self._parts: list[Future[dict[str, Any]]] = []
        self._sent = 0  # bytes handed to part uploads

    # ------------------------------------------------------------------ while packaging

    def written(self, fd: int, total: int) -> None:
        """The first ``total`` bytes of the file open as ``fd`` are final: send whole parts.

        Returns at once; raises the error of a part that failed (packaging then stops).
        """
        with self._lock:
            if self._fd is None:
                self._fd = os.dup(fd)
            self._raise_failed()
            if self._created is None and total >= self.threshold:
                self._created = self._pool.submit(self._create)
            if self._created is None:
                return
            while self._sent + part_bytes(len(self._parts), self.part_size) <= total:
                self._send_part(part_bytes(len(self._parts), self.part_size))

    def _raise_failed(self) -> None:
        for future in [self._created, *self._parts]:
            if future is not None and future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    def _send_part(self, length: int) -> None:
        assert self._fd is not None and self._created is not None
        if len(self._parts) >= MAX_PARTS:
            raise ValueError(f"archive for {self.key} needs more than {MAX_PARTS} parts")
        number = len(self._parts) + 1
        body = FileRange(self._fd, self._sent, length)
        self._parts.append(self._pool.submit(self._upload_part, number, body))
        self._sent += length

    def _create(self) -> str:
        args = dict(self.extra_args)
        if self.checksum:
            args["ChecksumAlgorithm"] = self.checksum
        created = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key, **args)
        return created["UploadId"]

    def _upload_part(self, number: int, body: FileRange) -> dict[str, Any]:
        assert self._created is not None
        upload_id = self._created.result()
        args: dict[str, Any] = {}
        if self.checksum:
            args["ChecksumAlgorithm"] = self.checksum
        answer = self.s3.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,  # type: ignore[arg-type]  # a seekable file-like body
            **args,
        )
        part: dict[str, Any] = {"PartNumber": number, "ETag": answer["ETag"]}
        if self.checksum and f"Checksum{self.checksum}" in answer:
            part[f"Checksum{self.checksum}"] = answer[f"Checksum{self.checksum}"]  # type: ignore[literal-required]
        self.progress(len(body))
        return part

    # ------------------------------------------------------------------ once packaged

    def finish(self, size: int, late_metadata: Mapping[str, str] | None = None) -> str | None:
        """Send what is left of the ``size``-byte file and make the object; its ETag.

        ``late_metadata`` (known only now) is added to the object's metadata where the
        archive goes up in one PutObject.
        """
        with self._lock:
            self._raise_failed()
            if self._created is None:
                return self._put_whole(size, late_metadata or {})
            if self._sent < size or not self._parts:
                self._send_part(size - self._sent)
        parts = [future.result() for future in self._parts]
        upload_id = self._created.result()
        done = self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
        )
        self._close()
        return done.get("ETag")

    def _put_whole(self, size: int, late_metadata: Mapping[str, str]) -> str | None:
        assert self._fd is not None
        args = dict(self.extra_args)
        args["Metadata"] = {**args.get("Metadata", {}), **late_metadata}
        answer = self.s3.put_object(
            Bucket=self.bucket,
            Key=self.key,
            Body=FileRange(self._fd, 0, size),  # type: ignore[arg-type]
            **args,
        )
        self.progress(size)
        self._close()
        return answer.get("ETag")

    def abort(self) -> None:
        """Stop: cancel parts not started, wait for the others, abort the multipart upload."""
        for future in self._parts:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        created = self._created
        if created is not None and created.done() and created.exception() is None:
            try:
                self.s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=created.result()
                )
            except Exception as exc:  # the bucket's lifecycle rule is the backstop
                logger.warning("Could not abort multipart upload key=%s error=%s", self.key, exc)
        self._close()

    def _close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
