"""The `phidb` command line: help, refusing bad options, serve's wiring, certs."""

from __future__ import annotations

import stat
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from phidb.cli import main
from phidb.config import ServerConfig

PLAIN = ["--tlsMode", "disabled", "--noEncryption"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> list[ServerConfig]:
    """Stands in for phidb.server.main: records the config serve() was given, returns 0."""
    calls: list[ServerConfig] = []
    module = types.ModuleType("phidb.server.main")

    class StartupError(Exception):
        pass

    def serve(config: ServerConfig) -> int:
        calls.append(config)
        if config.port == 1:
            raise StartupError("cannot read master key file /k: permission denied")
        return 3 if config.port == 3 else 0

    module.StartupError = StartupError  # type: ignore[attr-defined]
    module.serve = serve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "phidb.server.main", module)
    return calls


def test_help_lists_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("serve", "certs", "load-fhir"):
        assert name in result.output


def test_serve_help_shows_mongod_option_names(runner: CliRunner) -> None:
    result = runner.invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for name in ("--dbpath", "--bind_ip", "--tlsMode", "--tlsCAFile", "--noauth", "--auditFilter"):
        assert name in result.output


def test_unknown_option_is_a_usage_error(
    runner: CliRunner, fake_server: list[ServerConfig]
) -> None:
    result = runner.invoke(main, ["serve", "--bogus"])
    assert result.exit_code == 2
    assert "No such option '--bogus'" in result.output
    assert fake_server == []


def test_bad_choice_is_a_usage_error(runner: CliRunner, fake_server: list[ServerConfig]) -> None:
    result = runner.invoke(main, ["serve", "--tlsMode", "sometimes"])
    assert result.exit_code == 2
    assert "Invalid value for '--tlsMode'" in result.output
    assert fake_server == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--noEncryption"], "Error: net.tls.mode is requireTLS but no --tlsCertificateKeyFile"),
        (["--tlsMode", "disabled"], "Error: encryption at rest is on but no --encryptionKeyFile"),
        ([*PLAIN, "--auth", "--noauth"], "Error: --auth and --noauth contradict each other"),
        ([*PLAIN, "--port", "65536"], "Error: net.port must be between 0 and 65535, not 65536"),
        ([*PLAIN, "--tlsCAFile", "ca.pem"], "Error: --tlsCAFile was given but net.tls.mode"),
        (
            [*PLAIN, "--auditDestination", "console", "--auditFormat", "BSON"],
            "Error: auditLog.format BSON needs destination file, not console",
        ),
    ],
)
def test_contradictions_exit_1_with_one_line(
    runner: CliRunner, fake_server: list[ServerConfig], args: list[str], message: str
) -> None:
    result = runner.invoke(main, ["serve", *args])
    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert result.output.count("\n") == 1
    assert fake_server == []


def test_unknown_yaml_key_exits_1_naming_it(
    runner: CliRunner, fake_server: list[ServerConfig], tmp_path: Path
) -> None:
    conf = tmp_path / "mongod.conf"
    conf.write_text("storage:\n  engine: wiredTiger\n")
    result = runner.invoke(main, ["serve", "--config", str(conf), *PLAIN])
    assert result.exit_code == 1
    assert f"Error: unknown setting 'storage.engine' in {conf}" in result.output


def test_serve_passes_the_checked_config_and_returns_its_exit_code(
    runner: CliRunner, fake_server: list[ServerConfig]
) -> None:
    result = runner.invoke(main, ["serve", *PLAIN, "--port", "3", "--dbpath", "/data"])

    assert result.exit_code == 3
    (config,) = fake_server
    assert (config.port, config.dbpath, config.tls_mode) == (3, "/data", "disabled")
    assert config.argv == ["phidb", "serve", *PLAIN, "--port", "3", "--dbpath", "/data"]


def test_startup_error_exits_1_with_its_message(
    runner: CliRunner, fake_server: list[ServerConfig]
) -> None:
    result = runner.invoke(main, ["serve", *PLAIN, "--port", "1"])
    assert result.exit_code == 1
    assert result.output == "Error: cannot read master key file /k: permission denied\n"


def test_certs_writes_the_set_and_refuses_to_overwrite(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "certs"
    result = runner.invoke(main, ["certs", "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "ca-key.pem",
        "ca.pem",
        "client.pem",
        "server.pem",
    ]
    assert stat.S_IMODE((out / "ca-key.pem").stat().st_mode) == 0o600

    again = runner.invoke(main, ["certs", "--out", str(out)])
    assert again.exit_code == 1
    assert "already holds a CA; pass --force" in again.output
    assert runner.invoke(main, ["certs", "--out", str(out), "--force"]).exit_code == 0


def test_load_fhir_refuses_a_missing_path(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["load-fhir", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_load_fhir_names_skipped_files_and_exits_0_when_something_loaded(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from phidb.fhir import loader

    def fake_load(paths: list[str], uri: str, db: str, **kw: object) -> loader.LoadReport:
        assert (paths, uri, db) == ([str(tmp_path)], "mongodb://h:1/?tls=true", "fhir")
        return loader.LoadReport(
            counts={"Patient": 2, "Observation": 5},
            skipped=[("bad.json", "not valid JSON (x)")],
        )

    monkeypatch.setattr(loader, "load_paths", fake_load)
    monkeypatch.setenv("PHIDB_URI", "mongodb://h:1/?tls=true")
    result = runner.invoke(main, ["load-fhir", str(tmp_path), "--quiet"])

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"{'Observation':24} {5:>8}",
        f"{'Patient':24} {2:>8}",
        f"{'total':24} {7:>8}",
    ]
    assert result.stderr.splitlines() == [
        "skipped bad.json: not valid JSON (x)",
        "skipped 1 file(s)",
    ]


def test_load_fhir_exits_1_when_nothing_loaded(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from phidb.fhir import loader

    def fake_load(paths: list[str], uri: str, db: str, **kw: object) -> loader.LoadReport:
        return loader.LoadReport(skipped=[("a.json", "not a FHIR Bundle (resourceType None)")])

    monkeypatch.setattr(loader, "load_paths", fake_load)
    result = runner.invoke(main, ["load-fhir", str(tmp_path), "--quiet"])

    assert result.exit_code == 1
    assert "skipped a.json: not a FHIR Bundle" in result.stderr
    assert result.stderr.endswith("Error: nothing was loaded\n")
