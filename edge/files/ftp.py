"""The FTP listener for diagnostics uploads (chargers that cannot upload over HTTP).

The users are the live FTP upload grants of the FileStore: each grant has a random
user and password, is bound to one charger and expires. A user sees an empty,
write-only root directory: it may only STOR new plain file names there, each at
most once; listing, reading, deleting, renaming, directories and appending are
refused. A received file is streamed (size-limited) into the same diagnostics
folder as HTTP uploads and journalled.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from pathlib import PurePosixPath
from typing import Any

import aioftp
from aioftp.server import Connection, ConnectionConditions, worker

from edge.config import FtpConfig
from edge.files.store import FileStore, Grant, TooLarge, valid_name
from edge.services import Services

__all__ = ["FtpServer"]

log = logging.getLogger(__name__)

# Commands a write-only upload user never needs.
REFUSED = ("appe", "dele", "list", "mkd", "mlsd", "mlst", "rest", "retr", "rmd", "rnfr", "rnto")


class _GrantUser(aioftp.User):
    def __init__(self, grant: Grant, store: FileStore) -> None:
        super().__init__(
            grant.user,
            grant.password,
            base_path=store.diagnostics_dir / ".ftp" / grant.token,
            home_path="/",
            permissions=[aioftp.Permission("/", readable=False, writable=True)],
            maximum_connections=4,
        )
        self.token = grant.token


class _GrantUsers(aioftp.AbstractUserManager):
    def __init__(self, store: FileStore) -> None:
        super().__init__()
        self.store = store

    async def get_user(
        self, login: str
    ) -> tuple[aioftp.AbstractUserManager.GetUserResponse, aioftp.User | None, str]:
        grant = self.store.grant_for_user(login)
        if grant is None or grant.protocol != "ftp":
            return aioftp.AbstractUserManager.GetUserResponse.ERROR, None, "no such user"
        return (
            aioftp.AbstractUserManager.GetUserResponse.PASSWORD_REQUIRED,
            _GrantUser(grant, self.store),
            "password required",
        )

    async def authenticate(self, user: aioftp.User, password: str) -> bool:
        assert isinstance(user, _GrantUser)
        grant = self.store.grant(user.token)
        return (
            grant is not None
            and grant.password is not None
            and hmac.compare_digest(grant.password.encode(), password.encode())
        )


class _Server(aioftp.Server):
    def __init__(self, store: FileStore, services: Services, **kwargs: Any) -> None:
        super().__init__(_GrantUsers(store), **kwargs)
        self.store = store
        self.services = services
        for command in REFUSED:
            self.commands_mapping.pop(command, None)
        self.commands_mapping["stor"] = self.stor

    @ConnectionConditions(  # type: ignore[arg-type]  # (aioftp types self as Server)
        ConnectionConditions.login_required,
        ConnectionConditions.passive_server_started,
    )
    async def stor(
        self, connection: Connection, rest: str | PurePosixPath, mode: str = "wb"
    ) -> bool:
        user = connection.user
        assert isinstance(user, _GrantUser)
        grant = self.store.grant(user.token)
        _, virtual = self.get_paths(connection, rest)
        name = virtual.name
        if grant is None:
            connection.response("530", "the upload grant has expired")
            return True
        if virtual.parent != PurePosixPath("/") or not valid_name(name) or name in grant.files:
            connection.response("553", "file name not allowed")
            return True
        grant.files.append(name)  # reserved now: a second STOR of the name is refused
        store, services = self.store, self.services

        @ConnectionConditions(
            ConnectionConditions.data_connection_made,
            wait=True,
            fail_code="425",
            fail_info="Can't open data connection",
        )
        @worker
        async def stor_worker(srv: aioftp.Server, connection: Connection, rest: Any) -> bool:
            stream = connection.data_connection
            del connection.data_connection
            async with stream:
                chunks = stream.iter_by_block(connection.block_size)
                try:
                    meta = await store.receive_diagnostics(grant, name, chunks, "ftp")
                except TooLarge:
                    grant.files.remove(name)
                    connection.response("552", "exceeded the size limit; file discarded")
                    return True
                except BaseException:
                    grant.files.remove(name)
                    raise
            store.save_grants()
            services.record(grant.charger_id, "DiagnosticsReceived", meta)
            log.info("received diagnostics %s from %s over FTP", meta["name"], grant.charger_id)
            connection.response("226", "data transfer done")
            return True

        coro = stor_worker(self, connection, rest)
        task: asyncio.Task[bool] = asyncio.create_task(coro)  # type: ignore[arg-type]
        connection.extra_workers.add(task)
        connection.response("150", "data transfer started")
        return True


class FtpServer:
    """Starts and stops the FTP listener; `address` is (host, port) as bound."""

    def __init__(self, config: FtpConfig, store: FileStore, services: Services) -> None:
        ports = None
        if config.passive_ports is not None:
            ports = range(config.passive_ports[0], config.passive_ports[1] + 1)
        self.config = config
        self._server = _Server(
            store,
            services,
            data_ports=ports,
            ipv4_pasv_forced_response_address=_ipv4(config.public_host),
            idle_timeout=300,
            socket_timeout=60,
            wait_future_timeout=10,
            maximum_connections=64,
            welcome_message="edge-csms diagnostics upload",
        )
        self.address: tuple[str, int] = (config.host, config.port)

    async def start(self) -> tuple[str, int]:
        await self._server.start(self.config.host, self.config.port)
        sock = self._server.server.sockets[0]
        host, port = sock.getsockname()[:2]
        self.address = (host, port)
        return self.address

    async def close(self) -> None:
        await self._server.close()


def _ipv4(host: str | None) -> str | None:
    """The PASV answer address when public_host is a literal IPv4 address."""
    if host is None:
        return None
    parts = host.split(".")
    if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts):
        return host
    return None
