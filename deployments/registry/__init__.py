"""The artifact path: upload, validate in a sandbox, store, record a version.

This package's `__init__` imports nothing: `sandbox_child` runs as `python -m` inside the
sandbox and must not pull Django in with its package.
"""
