"""Quarantine: a bad file's original bytes kept, with the reason beside them."""

from __future__ import annotations

import json

import fsspec

from ingestion.parsing import FileResult


def quarantine(quarantine_url: str | None, rel: str, result: FileResult) -> str | None:
    """Keep the original bytes and the reason beside them."""
    if quarantine_url is None or (result.data is None and not result.data_sha):
        return None  # never read (too big): it stays where it is in the landing area
    data = result.data if result.data is not None else result.item.read_bytes()
    fs, root = fsspec.core.url_to_fs(quarantine_url)
    target = f"{root.rstrip('/')}/{result.data_sha[:12]}/{rel}"
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(target, data)
    reason = {"file": rel, "sha256": result.data_sha, "reason": result.error}
    fs.pipe_file(target + ".reason.json", json.dumps(reason, indent=2).encode())
    return target
