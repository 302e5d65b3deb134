"""Errors of the artifacts layer.

Every error derives from :class:`ArtifactError`; its message is written for the user who
owns the ModelEndpoint (it becomes the message of the ``ArtifactsSynced`` condition), so
it says what to change. ``retryable`` tells the reconcile whether trying again later can
help (a network hiccup) or the spec must change first (a source that is too large).
"""

from __future__ import annotations


class ArtifactError(Exception):
    """Base of all artifact errors."""

    retryable: bool = False


class InvalidSourceError(ArtifactError):
    """The source URI is malformed, not allowed, or holds nothing usable as a model."""


class SourceNotFoundError(ArtifactError):
    """The source does not exist (no object, no prefix, no file, HTTP 404)."""


class SourceAccessError(ArtifactError):
    """The operator may not read the source (S3 403, HTTP 401/403)."""


class SourceFetchError(ArtifactError):
    """Reading the source failed in a way that may pass (timeout, connection reset, 5xx)."""

    retryable = True


class SourceChangedError(ArtifactError):
    """The source changed between computing its fingerprint and reading it."""

    retryable = True


class SourceTooLargeError(ArtifactError):
    """The source is larger than the configured limit."""


class UnsafeArchiveError(ArtifactError):
    """An input archive or directory holds entries that could escape the model directory."""


class NotOwnedError(ArtifactError):
    """An object was about to be deleted that this ModelEndpoint does not own."""


class ArtifactConflictError(ArtifactError):
    """The archive's key is already taken by an object this ModelEndpoint does not own."""


class ArchiveConfigError(ArtifactError):
    """An uploaded archive's config.pbtxt cannot be read back from the start of the archive."""
