"""Derive independent, stable seeds from the study's one seed."""

from __future__ import annotations

import hashlib


def seed_for(seed: int, *parts: object) -> int:
    """Return a 31-bit seed derived from ``seed`` and a label such as ``"cv"`` or ``"sampler"``.

    Hashing (instead of ``seed + 1``) keeps the component seeds unrelated to each other, and the
    result is the same on every platform and Python version.
    """
    text = ":".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF
