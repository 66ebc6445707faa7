"""One model version behind an HTTP API: config, artifact loading, FastAPI app.

Importable without Django so the console can share the config schema and the loader.
"""
