"""Model sources, deterministic ``.tar.gz`` packaging, and the S3 archive store of an endpoint.

The public surface: :func:`open_source` / :class:`ModelSource` (where weights come from),
:func:`desired_archive` / :func:`archive_key` (content-addressed names, no download),
:func:`package_model` (streaming, byte-reproducible archives), :class:`ArtifactStore`
(observe, upload, delete, sync under one prefix), :class:`PreparedArchives` (local weights
packaged while they are named, so a first upload reads them once), and the
:class:`ArtifactError` family.
"""

from mme_operator.artifacts.errors import (
    ArchiveConfigError,
    ArtifactConflictError,
    ArtifactError,
    InvalidSourceError,
    NotOwnedError,
    SourceAccessError,
    SourceChangedError,
    SourceFetchError,
    SourceNotFoundError,
    SourceTooLargeError,
    UnsafeArchiveError,
)
from mme_operator.artifacts.naming import (
    PACKAGING_FORMAT_VERSION,
    DesiredArchive,
    archive_hash,
    archive_key,
    desired_archive,
    parse_target_model,
)
from mme_operator.artifacts.packaging import PackagedArchive, package_model
from mme_operator.artifacts.prepared import PreparedArchives
from mme_operator.artifacts.sources import (
    FileSource,
    HttpsSource,
    ModelSource,
    S3ClientFactory,
    S3Source,
    SourceContent,
    SourceEntry,
    open_source,
)
from mme_operator.artifacts.store import (
    ArtifactStore,
    ListedObject,
    StoredArchive,
    SyncResult,
    archive_folder,
    transfer_config_from_settings,
)

__all__ = [
    "PACKAGING_FORMAT_VERSION",
    "ArchiveConfigError",
    "ArtifactConflictError",
    "ArtifactError",
    "ArtifactStore",
    "DesiredArchive",
    "FileSource",
    "HttpsSource",
    "InvalidSourceError",
    "ListedObject",
    "ModelSource",
    "NotOwnedError",
    "PackagedArchive",
    "PreparedArchives",
    "S3ClientFactory",
    "S3Source",
    "SourceAccessError",
    "SourceChangedError",
    "SourceContent",
    "SourceEntry",
    "SourceFetchError",
    "SourceNotFoundError",
    "SourceTooLargeError",
    "StoredArchive",
    "SyncResult",
    "UnsafeArchiveError",
    "archive_folder",
    "archive_hash",
    "archive_key",
    "desired_archive",
    "open_source",
    "package_model",
    "parse_target_model",
    "transfer_config_from_settings",
]
