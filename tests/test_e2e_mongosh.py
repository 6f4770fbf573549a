"""mongosh, the real npm package, against phidb: it reaches its prompt without
error lines and reads and writes over TLS with SCRAM."""

from __future__ import annotations

import subprocess

import pytest

from harness import PhidbServer, env_mongosh

MONGOSH = env_mongosh()
pytestmark = pytest.mark.skipif(MONGOSH is None, reason="mongosh is installed by scripts/test")


def mongosh(
    server: PhidbServer, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    assert MONGOSH is not None and server.admin_password is not None
    uri = (
        f"mongodb://{server.admin_user}:{server.admin_password}@127.0.0.1:{server.port}/shell"
        f"?tls=true&tlsCAFile={server.certs.ca}&authSource=admin"
    )
    return subprocess.run(
        [MONGOSH, uri, "--norc", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_mongosh_reads_and_writes(server: PhidbServer):
    result = mongosh(
        server,
        "--quiet",
        "--eval",
        "db.people.insertOne({name: 'Ada', n: NumberLong(5)});"
        "const d = db.people.findOne({name: 'Ada'});"
        "print('FOUND', d.name, d.n.toString(), db.people.countDocuments({}));",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "FOUND Ada 5 1" in result.stdout


def test_mongosh_reaches_its_prompt_without_error_lines(server: PhidbServer):
    result = mongosh(server, stdin="db.runCommand({ping: 1}).ok\nshow dbs\nexit\n")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "shell>" in output or "test>" in output or ">" in output
    bad = [
        line
        for line in output.splitlines()
        if "Error" in line or "error" in line.lower() and "warning" not in line.lower()
    ]
    assert bad == []
