"""File transfer storage: firmware images, diagnostics uploads, signed links, upload grants.

Layout under the data directory:

* `firmware/<name>` with a sidecar `firmware/.<name>.json` (sha256, size, uploadedAt);
* `diagnostics/<charger>/<timestamp>-<filename>` with a sidecar `.<file>.json`
  (size, receivedAt, via; logType and requestId for a GetLog's upload);
* `file_secret` (0600): the HMAC key signing firmware links;
* `upload_grants.json`: the live diagnostics upload grants (survive a restart).

Every file is written to a temporary file, fsynced and renamed into place, so a
crash or an oversize upload never leaves a partial file under its final name.
Blocking disk work runs in the default executor.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from edge.config import Config
from edge.store.atomic import replace_durably, write_atomic
from edge.times import file_stamp, format_time, from_epoch, to_epoch

__all__ = ["FileStore", "Grant", "TooLarge", "default_public_url", "valid_name"]

log = logging.getLogger(__name__)

MAX_NAME = 128
CHUNK = 64 * 1024
_BAD_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


class TooLarge(Exception):
    """An upload exceeded its size limit; nothing was kept."""


def valid_name(name: str) -> bool:
    """A plain file name: 1..128 characters, no path separators or controls, no leading dot."""
    return 0 < len(name) <= MAX_NAME and not name.startswith(".") and not _BAD_NAME.search(name)


def _first_address() -> str:
    """The first non-loopback IPv4 address of this host, or 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent for UDP connect
            address: str = s.getsockname()[0]
            if not address.startswith("127."):
                return address
    except OSError:
        pass
    return "127.0.0.1"


def default_public_url(host: str, port: int) -> str:
    """The base URL chargers use when files.public_url is not configured."""
    if host in ("0.0.0.0", "", "::"):
        host = _first_address()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _charger_dir(charger_id: str) -> str:
    safe = quote(charger_id, safe="")
    return "%2E" + safe[1:] if safe.startswith(".") else safe


@dataclass(slots=True)
class Grant:
    """Permission for one charger to upload diagnostics until `expires` (unix time)."""

    token: str
    charger_id: str
    protocol: str
    expires: float
    user: str | None = None
    password: str | None = None
    files: list[str] = field(default_factory=list)
    log_type: str | None = None
    """For a GetLog upload (Security Whitepaper): DiagnosticsLog or SecurityLog."""
    request_id: int | None = None
    """For a GetLog upload: the request's requestId."""


class _Writer:
    """A temporary file next to its destination, filled chunk by chunk."""

    def __init__(self, directory: Path, limit: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix=".upload-")
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")
        self.limit = limit
        self.size = 0
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(f"larger than {self.limit} bytes")
        self.sha.update(data)
        self.file.write(data)

    def commit(self, dest: Path) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        replace_durably(self.path, dest)

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class FileStore:
    """Firmware and diagnostics files, link signing and upload grants of one data directory."""

    def __init__(self, config: Config, clock: Callable[[], datetime]) -> None:
        self.config = config.files
        self.retention_days = config.storage.event_retention_days
        self.clock = clock
        data_dir = config.storage.data_dir
        self.firmware_dir = data_dir / "firmware"
        self.diagnostics_dir = data_dir / "diagnostics"
        self._secret_path = data_dir / "file_secret"
        self._grants_path = data_dir / "upload_grants.json"
        self._secret: bytes | None = None
        # Set by the App once the listeners are bound.
        self.public_url = self.config.public_url or ""
        self.ftp_address: tuple[str, int] | None = None
        self.grants: dict[str, Grant] = {}
        for directory in (self.firmware_dir, self.diagnostics_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._load_grants()

    def now(self) -> float:
        return to_epoch(self.clock())

    # --- signed firmware links ----------------------------------------------------------

    def _key(self) -> bytes:
        if self._secret is None:
            try:
                self._secret = bytes.fromhex(self._secret_path.read_text().strip())
            except (FileNotFoundError, ValueError):
                self._secret = secrets.token_bytes(32)
                write_atomic(self._secret_path, self._secret.hex().encode() + b"\n", mode=0o600)
                log.info("generated a new file link secret in %s", self._secret_path)
        return self._secret

    def sign(self, name: str, charger_id: str, expires: int) -> str:
        message = "\n".join((name, charger_id, str(expires))).encode()
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def check_signature(self, name: str, charger_id: str, expires: str, sig: str) -> bool:
        """True when `sig` signs (name, charger, expires) and the link has not expired."""
        try:
            expiry = int(expires)
        except ValueError:
            return False
        if expiry < self.now():
            return False
        return hmac.compare_digest(self.sign(name, charger_id, expiry), sig)

    def firmware_url(self, name: str, charger_id: str, *, valid_from: float | None = None) -> str:
        """A link for `charger_id` to download `name`, valid for `link_validity` seconds
        from now or, for a download scheduled later, from `valid_from` (unix time)."""
        expires = int(max(self.now(), valid_from or 0.0)) + self.config.link_validity
        query = urlencode(
            {"charger": charger_id, "expires": expires, "sig": self.sign(name, charger_id, expires)}
        )
        return f"{self.public_url}/files/firmware/{quote(name, safe='')}?{query}"

    # --- firmware -----------------------------------------------------------------------

    def firmware_path(self, name: str) -> Path | None:
        path = self.firmware_dir / name
        return path if valid_name(name) and path.is_file() else None

    async def save_firmware(self, name: str, chunks: AsyncIterator[bytes]) -> dict[str, Any]:
        """Stream an image into place; raises TooLarge (nothing kept) beyond the limit."""
        writer = await self._receive(self.firmware_dir, chunks, self.config.max_firmware_bytes)
        meta = {
            "name": name,
            "size": writer.size,
            "sha256": writer.sha.hexdigest(),
            "uploadedAt": format_time(self.clock()),
        }

        def commit() -> None:
            writer.commit(self.firmware_dir / name)
            write_atomic(self.firmware_dir / f".{name}.json", json.dumps(meta).encode())

        await asyncio.to_thread(commit)
        return meta

    def list_firmware(self) -> list[dict[str, Any]]:
        result = []
        for path in sorted(self.firmware_dir.iterdir()):
            if not valid_name(path.name) or not path.is_file():
                continue
            meta = self._sidecar(path)
            if "sha256" not in meta:
                meta["sha256"] = _sha256_of(path)
            meta.update(name=path.name, size=path.stat().st_size)
            meta.setdefault("uploadedAt", format_time(from_epoch(path.stat().st_mtime)))
            result.append(meta)
        return result

    def delete_firmware(self, name: str) -> bool:
        path = self.firmware_path(name)
        if path is None:
            return False
        path.unlink()
        (self.firmware_dir / f".{name}.json").unlink(missing_ok=True)
        return True

    # --- diagnostics --------------------------------------------------------------------

    def create_grant(
        self,
        charger_id: str,
        protocol: str,
        *,
        log_type: str | None = None,
        request_id: int | None = None,
        extra_validity: float = 0.0,
    ) -> Grant:
        """A one-off upload grant, valid for `link_validity` plus `extra_validity` seconds
        (a charger's retries); `log_type` and `request_id` mark a GetLog's upload, whose
        files then carry them (`list_logs`)."""
        grant = Grant(
            token=secrets.token_urlsafe(24),
            charger_id=charger_id,
            protocol=protocol,
            expires=self.now() + self.config.link_validity + extra_validity,
            log_type=log_type,
            request_id=request_id,
        )
        if protocol == "ftp":
            grant.user = "diag-" + secrets.token_hex(8)
            grant.password = secrets.token_urlsafe(18)
        self.grants[grant.token] = grant
        self.save_grants()
        return grant

    def upload_location(self, grant: Grant) -> str:
        """Where a charger uploads under `grant`: an HTTP URL or an FTP URL with its
        one-off credentials."""
        if grant.protocol == "http":
            return f"{self.public_url}/files/diagnostics/{grant.token}/"
        assert self.ftp_address is not None
        host, port = self.ftp_address
        return f"ftp://{grant.user}:{grant.password}@{host}:{port}/"

    def grant(self, token: str) -> Grant | None:
        """The live grant with this token, if any (expired ones are dropped)."""
        grant = self.grants.get(token)
        if grant is None:
            return None
        if grant.expires < self.now():
            self.drop_expired()
            return None
        return grant

    def grant_for_user(self, user: str) -> Grant | None:
        for grant in self.grants.values():
            if grant.user is not None and hmac.compare_digest(grant.user, user):
                return self.grant(grant.token)
        return None

    def revoke(self, grant: Grant) -> None:
        if self.grants.pop(grant.token, None) is not None:
            self.save_grants()

    def drop_expired(self) -> int:
        now = self.now()
        expired = [t for t, g in self.grants.items() if g.expires < now]
        for token in expired:
            del self.grants[token]
        if expired:
            self.save_grants()
        return len(expired)

    def note_upload(self, grant: Grant, filename: str) -> None:
        grant.files.append(filename)
        self.save_grants()

    async def receive_diagnostics(
        self, grant: Grant, filename: str, chunks: AsyncIterator[bytes], via: str
    ) -> dict[str, Any]:
        """Stream an upload into the charger's diagnostics folder; raises TooLarge."""
        directory = self.diagnostics_dir / _charger_dir(grant.charger_id)
        writer = await self._receive(directory, chunks, self.config.max_diagnostics_bytes)
        meta = await asyncio.to_thread(self._commit_diagnostics, writer, grant, filename, via)
        await asyncio.to_thread(self.prune)  # keeps the total under the cap between hourly runs
        return meta

    def _commit_diagnostics(
        self, writer: _Writer, grant: Grant, filename: str, via: str
    ) -> dict[str, Any]:
        writer.file.flush()
        os.fsync(writer.file.fileno())
        writer.file.close()
        return self._place(writer.path, writer.path.parent, grant, filename, via, writer.size)

    def _place(
        self, src: Path, directory: Path, grant: Grant, filename: str, via: str, size: int
    ) -> dict[str, Any]:
        now = self.clock()
        stamp = file_stamp(now)
        final = f"{stamp}-{filename}"[:200]
        n = 1
        while (directory / final).exists():
            n += 1
            final = f"{stamp}-{n}-{filename}"[:200]
        replace_durably(src, directory / final)
        meta: dict[str, Any] = {
            "chargerId": grant.charger_id,
            "name": final,
            "size": size,
            "receivedAt": format_time(now),
            "via": via,
        }
        if grant.log_type is not None:
            meta["logType"] = grant.log_type
            meta["requestId"] = grant.request_id
        write_atomic(directory / f".{final}.json", json.dumps(meta).encode())
        return meta

    def diagnostics_path(self, charger_id: str, name: str) -> Path | None:
        path = self.diagnostics_dir / _charger_dir(charger_id) / name
        return path if valid_name(name) and path.is_file() else None

    def list_diagnostics(self, charger_id: str | None = None) -> list[dict[str, Any]]:
        result = [meta for _, meta in self._diagnostics_files()]
        if charger_id is not None:
            result = [m for m in result if m["chargerId"] == charger_id]
        return sorted(result, key=lambda m: (m["receivedAt"], m["name"]), reverse=True)

    def list_logs(
        self, charger_id: str | None = None, request_id: int | None = None
    ) -> list[dict[str, Any]]:
        """The uploads of GetLog requests (a charger's, one request's), newest first."""
        logs = [m for m in self.list_diagnostics(charger_id) if "logType" in m]
        if request_id is not None:
            logs = [m for m in logs if m.get("requestId") == request_id]
        return logs

    def _diagnostics_files(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        for directory in self.diagnostics_dir.iterdir():
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                if valid_name(path.name) and path.is_file():
                    meta = self._sidecar(path)
                    meta.setdefault("chargerId", directory.name)
                    mtime = from_epoch(path.stat().st_mtime)
                    meta.setdefault("receivedAt", format_time(mtime))
                    meta.update(name=path.name, size=path.stat().st_size)
                    meta.setdefault("via", "http")
                    yield path, meta

    def prune(self) -> int:
        """Drop diagnostics older than the event retention or beyond the total size cap."""
        self.drop_expired()
        cutoff = time.time() - self.retention_days * 86400
        files = sorted(self._diagnostics_files(), key=lambda item: item[0].stat().st_mtime)
        total = sum(meta["size"] for _, meta in files)
        removed = 0
        for path, meta in files:
            if path.stat().st_mtime >= cutoff and total <= self.config.diagnostics_total_bytes:
                break
            path.unlink(missing_ok=True)
            (path.parent / f".{path.name}.json").unlink(missing_ok=True)
            total -= meta["size"]
            removed += 1
        return removed

    # --- helpers ------------------------------------------------------------------------

    async def _receive(self, directory: Path, chunks: AsyncIterator[bytes], limit: int) -> _Writer:
        writer = await asyncio.to_thread(_Writer, directory, limit)
        try:
            async for chunk in chunks:
                await asyncio.to_thread(writer.write, chunk)
        except BaseException:
            await asyncio.to_thread(writer.discard)
            raise
        return writer

    @staticmethod
    def _sidecar(path: Path) -> dict[str, Any]:
        try:
            data = json.loads((path.parent / f".{path.name}.json").read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _load_grants(self) -> None:
        try:
            raw = json.loads(self._grants_path.read_bytes())
            self.grants = {g["token"]: Grant(**g) for g in raw}
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError):
            log.exception("could not read %s; upload grants dropped", self._grants_path)
            self.grants = {}

    def save_grants(self) -> None:
        data = json.dumps([asdict(g) for g in self.grants.values()]).encode()
        write_atomic(self._grants_path, data, mode=0o600)


def _sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def public_host(url: str) -> str:
    """The host part of a base URL."""
    return urlsplit(url).hostname or "127.0.0.1"
