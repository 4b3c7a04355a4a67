"""The key that signs model cards, and the signature itself.

A model file is a pickle, and unpickling runs code. The card's SHA-256 alone catches a file that
changed by accident, but anyone who can replace the model can rewrite the card's hash as well.
``tuner refit`` therefore signs the card (which holds the model file's SHA-256) with an
HMAC-SHA256 under a key kept *outside* the model folder, and ``tuner predict`` checks the
signature before unpickling. Someone who can write the model folder but cannot read the key
cannot produce a card that verifies.

The key comes from ``$TUNER_MODEL_KEY``, else from a key file in the user's configuration folder
(``$XDG_CONFIG_HOME/tuner/model.key``, else ``~/.config/tuner/model.key``), which the first refit
creates with mode 0600. A key file that others may read or write is refused, as ssh refuses such
private keys: the protection is only as good as the key's secrecy.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuner.errors import ModelFileError

KEY_ENV = "TUNER_MODEL_KEY"
SIGNATURE = "signature"
ALGORITHM = "hmac-sha256"
# A shorter secret could be guessed offline from any signed card, which an attacker can read.
MIN_KEY_CHARS = 32
# The signed message starts with this, so a signature can never be replayed as another kind of MAC
# made with the same key.
_DOMAIN = b"tuner-model-card/1\0"
_GENERATE = 'python -c "import secrets; print(secrets.token_hex(32))"'


@dataclass(frozen=True)
class ModelKey:
    """The signing secret and where it came from (for messages; never the secret itself)."""

    secret: bytes
    source: str

    @property
    def key_id(self) -> str:
        """A public fingerprint of the key: tells which key signed a card without revealing it."""
        return hashlib.sha256(b"tuner-model-key-id\0" + self.secret).hexdigest()[:16]


def key_file() -> Path:
    """Where the key file lives: ``$XDG_CONFIG_HOME/tuner/model.key``, else ``~/.config/tuner/model.key``."""
    config = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(config) if config and Path(config).is_absolute() else Path.home() / ".config"
    return base / "tuner" / "model.key"


def key_file_text() -> str:
    """The key file's path for a message, also when there is no home folder to put it in."""
    try:
        return str(key_file())
    except RuntimeError:
        return "~/.config/tuner/model.key"


def signing_key() -> ModelKey:
    """The key ``tuner refit`` signs with: ``$TUNER_MODEL_KEY``, else the key file, created on first use.

    Raises:
        ModelFileError: the key is too short, the key file is readable or writable by others, or
            it cannot be read or created.
    """
    found = _key(create=True)
    assert found is not None  # _key creates the file or raises
    return found


def verifying_key() -> ModelKey | None:
    """The key ``tuner predict`` checks with; None when this machine has none (nothing is created)."""
    return _key(create=False)


def _key(*, create: bool) -> ModelKey | None:
    value = os.environ.get(KEY_ENV)
    if value is not None:
        return _checked_key(value, f"${KEY_ENV}")
    try:
        path = key_file()
    except RuntimeError:  # no home folder to find ~/.config in
        if not create:
            return None
        raise ModelFileError(
            f"cannot find a folder for the model key: $HOME is not set and neither is $XDG_CONFIG_HOME. "
            f"Set {KEY_ENV} to a secret of at least {MIN_KEY_CHARS} characters (e.g. from `{_GENERATE}`) and run again."
        ) from None
    if not path.exists():
        if not create:
            return None
        _create_key_file(path)
    return _read_key_file(path)


def sign(key: ModelKey, card: dict[str, Any]) -> dict[str, str]:
    """The signature of ``card`` (its ``signature`` entry, if any, left out)."""
    return {"algorithm": ALGORITHM, "key_id": key.key_id, "value": _mac(key, card)}


def signature_matches(key: ModelKey, card: dict[str, Any]) -> bool:
    """Whether the card's signature was made with ``key`` over exactly this card."""
    signature = card.get(SIGNATURE)
    if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM:
        return False
    value = signature.get("value")
    return isinstance(value, str) and hmac.compare_digest(value, _mac(key, card))


def _mac(key: ModelKey, card: dict[str, Any]) -> str:
    body = {k: v for k, v in card.items() if k != SIGNATURE}
    # One byte sequence per card however its JSON was indented or ordered on disk.
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hmac.new(key.secret, _DOMAIN + canonical.encode("ascii"), hashlib.sha256).hexdigest()


def _checked_key(value: str, source: str) -> ModelKey:
    secret = value.strip()
    if len(secret) < MIN_KEY_CHARS:
        raise ModelFileError(
            f"the model key in {source} has {len(secret)} characters; it needs at least {MIN_KEY_CHARS}, or anyone "
            f"holding a signed model card could guess it. Use a random one, e.g. from `{_GENERATE}`."
        )
    return ModelKey(secret=secret.encode("utf-8"), source=source)


def _read_key_file(path: Path) -> ModelKey:
    try:
        # O_NOFOLLOW: a symlink planted in the config folder must not choose the key.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "r", encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            _refuse_shared(path, info)
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(
            f"cannot read the model key file {str(path)!r} ({exc}). Make it a regular file readable by you only "
            f"(`chmod 600`), or set {KEY_ENV} instead."
        ) from None
    return _checked_key(text, str(path))


def _refuse_shared(path: Path, info: os.stat_result) -> None:
    owner_differs = hasattr(os, "getuid") and info.st_uid != os.getuid()
    if stat.S_IMODE(info.st_mode) & 0o077 or owner_differs:
        raise ModelFileError(
            f"the model key file {str(path)!r} can be read or changed by other users (mode "
            f"{stat.S_IMODE(info.st_mode):04o}{', owned by another user' if owner_differs else ''}), so it cannot "
            f"vouch for a model. Run `chmod 600 {path}` as its owner; if others may have read it, delete it (the "
            "next `tuner refit` makes a new one) and refit your models."
        )


def _create_key_file(path: Path) -> None:
    """Write a new random key with mode 0600, atomically: a concurrent refit finds either no file or all of it."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            # Fails if another refit created the key first; its key wins.
            with contextlib.suppress(FileExistsError):
                os.link(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    except OSError as exc:
        raise ModelFileError(
            f"cannot create the model key file {str(path)!r} ({exc.strerror or exc}). Make its folder writable, "
            f"or set {KEY_ENV} to a secret of at least {MIN_KEY_CHARS} characters (e.g. from `{_GENERATE}`)."
        ) from None
