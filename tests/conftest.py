"""Fixtures that start real phidb servers (see harness.py) for end-to-end tests.

- `certs`: a development CA, server and client certificate, generated per session.
- `server`: one secure server per test module with an admin user (root); tests use
  their own collection names so they can share it.
- `admin`: a pymongo client logged in as that admin.
- `make_phidb`: a factory for a fresh server with extra options, stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from pymongo import MongoClient

from harness import PhidbServer, dev_certs, make_server
from phidb.certs import DevCerts

# On a loaded two-core machine one example can take far longer than usual; the
# properties are about results, not speed, so no per-example deadline.
settings.register_profile("phidb", deadline=None)
settings.load_profile("phidb")


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
    return dev_certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, certs: DevCerts) -> Iterator[PhidbServer]:
    srv = make_server(tmp_path_factory.mktemp("phidb"), certs).start()
    srv.create_admin()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def admin(server: PhidbServer) -> MongoClient[Any]:
    return server.admin_client()


@pytest.fixture
def make_phidb(tmp_path: Path, certs: DevCerts) -> Iterator[Callable[..., PhidbServer]]:
    started: list[PhidbServer] = []

    def factory(
        *extra: str, tls: bool = True, start: bool = True, name: str = "srv"
    ) -> PhidbServer:
        srv = make_server(tmp_path / f"{name}{len(started)}", certs, *extra, tls=tls)
        started.append(srv)
        return srv.start() if start else srv

    yield factory
    for srv in started:
        srv.stop()
