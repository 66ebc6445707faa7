"""Why an upload was refused, with the HTTP status the API answers it with."""

from __future__ import annotations


class ArtifactRejected(Exception):
    """The artifact is not a usable model for this registered model; the message says why."""

    status_code = 400


class ArtifactTooLarge(ArtifactRejected):
    status_code = 413


class ValidationUnavailable(ArtifactRejected):
    """Validation could not run (the cluster did not answer); nothing is known about the
    artifact, and the upload may be retried."""

    status_code = 503
