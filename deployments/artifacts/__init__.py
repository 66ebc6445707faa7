"""Artifact storage and uploads: where model files live and how they arrive.

`stores` holds the interface and the local-folder store, `gcs` the Google Cloud Storage store (the
only module that imports google-cloud-storage), `uploads` the upload handler that hashes and
measures a file while Django streams it to disk.
"""
