"""mongod.conf-style YAML and command-line settings become one checked ServerConfig."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from phidb.cli import config_from_args
from phidb.config import ConfigError, build_config, parse_audit_filter, read_config_file

# The least a secure default start needs: a certificate and a master key.
SECURE = ["--tlsCertificateKeyFile", "server.pem", "--encryptionKeyFile", "master.key"]
PLAIN = ["--tlsMode", "disabled", "--noEncryption"]


def write_conf(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mongod.conf"
    path.write_text(textwrap.dedent(text))
    return str(path)


FULL_CONF = """\
    net:
      port: 27018
      bindIp: 127.0.0.1,::1
      tls:
        mode: preferTLS
        certificateKeyFile: /etc/phidb/server.pem
        CAFile: /etc/phidb/ca.pem
        allowConnectionsWithoutCertificates: true
    storage:
      dbPath: /var/lib/phidb
    security:
      authorization: enabled
      enableEncryption: true
      encryptionKeyFile: /etc/phidb/master.key
    auditLog:
      destination: file
      format: BSON
      path: /var/log/phidb/audit.bson
      filter: '{ atype: "authenticate" }'
    systemLog:
      destination: file
      path: /var/log/phidb/phidb.log
      verbosity: 2
"""


def test_full_config_file_maps_every_setting(tmp_path: Path) -> None:
    path = write_conf(tmp_path, FULL_CONF)
    config = config_from_args(["--config", path])

    assert config.port == 27018
    assert config.bind_ip == ["127.0.0.1", "::1"]
    assert config.tls_mode == "preferTLS"
    assert config.tls_certificate_key_file == "/etc/phidb/server.pem"
    assert config.tls_ca_file == "/etc/phidb/ca.pem"
    assert config.tls_allow_connections_without_certificates is True
    assert config.dbpath == "/var/lib/phidb"
    assert config.authorization is True
    assert config.enable_encryption is True
    assert config.encryption_key_file == "/etc/phidb/master.key"
    assert config.audit_destination == "file"
    assert config.audit_format == "BSON"
    assert config.audit_path == "/var/log/phidb/audit.bson"
    assert config.audit_filter == {"atype": "authenticate"}
    assert config.log_destination == "file"
    assert config.log_path == "/var/log/phidb/phidb.log"
    assert config.log_verbosity == 2


def test_parsed_has_mongod_conf_shape_with_config_path(tmp_path: Path) -> None:
    path = write_conf(tmp_path, FULL_CONF)
    config = config_from_args(["-f", path, "--port", "27019"])

    assert config.argv == ["phidb", "serve", "-f", path, "--port", "27019"]
    assert config.parsed["config"] == path
    assert config.parsed["net"]["port"] == 27019
    assert config.parsed["net"]["tls"] == {
        "mode": "preferTLS",
        "certificateKeyFile": "/etc/phidb/server.pem",
        "CAFile": "/etc/phidb/ca.pem",
        "allowConnectionsWithoutCertificates": True,
    }
    assert config.parsed["storage"] == {"dbPath": "/var/lib/phidb"}
    assert config.parsed["auditLog"]["filter"] == '{ atype: "authenticate" }'


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    path = write_conf(tmp_path, FULL_CONF)
    config = config_from_args(["--config", path, "--port", "1234", "--noauth", "--dbpath", "/d"])

    assert config.port == 1234
    assert config.authorization is False
    assert config.dbpath == "/d"
    assert config.tls_mode == "preferTLS"


def test_command_line_audit_destination_replaces_file_audit_output(tmp_path: Path) -> None:
    path = write_conf(tmp_path, FULL_CONF)
    config = config_from_args(["--config", path, "--auditDestination", "console"])

    assert config.audit_destination == "console"
    assert config.audit_format == "JSON"
    assert config.audit_path is None
    assert config.audit_filter == {"atype": "authenticate"}


def test_no_audit_on_command_line_turns_file_audit_off(tmp_path: Path) -> None:
    path = write_conf(tmp_path, FULL_CONF)
    config = config_from_args(["--config", path, "--noAudit"])

    assert config.audit_destination is None
    assert config.audit_filter is None


def test_defaults_are_secure() -> None:
    config = config_from_args(SECURE)

    assert config.port == 27017
    assert config.bind_ip == ["127.0.0.1"]
    assert config.tls_mode == "requireTLS"
    assert config.authorization is True
    assert config.enable_encryption is True
    assert config.audit_destination == "file"
    assert config.audit_path == "./data/db/auditLog.json"
    assert config.log_destination is None
    assert config.parsed == {
        "net": {"tls": {"certificateKeyFile": "server.pem"}},
        "security": {"encryptionKeyFile": "master.key"},
    }


def test_audit_path_defaults_into_dbpath_by_format() -> None:
    json_config = config_from_args([*PLAIN, "--dbpath", "/data"])
    bson_config = config_from_args([*PLAIN, "--dbpath", "/data", "--auditFormat", "BSON"])

    assert json_config.audit_path == "/data/auditLog.json"
    assert bson_config.audit_path == "/data/auditLog.bson"


def test_unknown_yaml_key_is_named(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "net:\n  tls:\n    modes: requireTLS\n")
    with pytest.raises(ConfigError, match=r"^unknown setting 'net\.tls\.modes' in "):
        read_config_file(path)


def test_unknown_top_level_section_is_named(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "replication:\n  replSetName: rs0\n")
    with pytest.raises(ConfigError, match=r"^unknown setting 'replication' in "):
        read_config_file(path)


def test_section_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "net: 27017\n")
    with pytest.raises(ConfigError, match=r"^setting 'net' in .* must be a mapping"):
        read_config_file(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "net:\n  port: [1\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML at line \d+"):
        read_config_file(path)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^cannot read config file .*nope\.conf"):
        read_config_file(str(tmp_path / "nope.conf"))


def test_empty_config_file_means_defaults(tmp_path: Path) -> None:
    assert read_config_file(write_conf(tmp_path, "")) == {}


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("net.port", "27017", "net.port must be an integer, not '27017'"),
        ("net.port", True, "net.port must be an integer, not bool True"),
        ("net.tls.mode", "required", "net.tls.mode must be one of disabled, allowTLS, "),
        ("security.authorization", True, "security.authorization must be a string"),
        ("security.authorization", "on", "security.authorization must be one of enabled"),
        ("security.enableEncryption", "yes", "security.enableEncryption must be true or false"),
        ("auditLog.format", "json", "auditLog.format must be one of JSON, BSON, not 'json'"),
        ("auditLog.filter", 3, "auditLog.filter must be a query document"),
        ("storage.dbPath", "", "storage.dbPath must not be empty"),
    ],
)
def test_bad_values_are_refused(setting: str, value: object, message: str) -> None:
    base = {"net.tls.mode": "disabled", "security.enableEncryption": False}
    with pytest.raises(ConfigError) as info:
        build_config({**base, setting: value}, {}, [])
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("port", [-1, 65536])
def test_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ConfigError, match=f"^net.port must be between 0 and 65535, not {port}$"):
        config_from_args([*PLAIN, "--port", str(port)])


def test_port_zero_is_allowed_for_an_ephemeral_port() -> None:
    assert config_from_args([*PLAIN, "--port", "0"]).port == 0


def test_tls_without_certificate_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^net\.tls\.mode is preferTLS but no --tlsCert"):
        config_from_args(["--tlsMode", "preferTLS", "--noEncryption"])


def test_ca_file_with_tls_disabled_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^--tlsCAFile was given but net.tls.mode is disabled$"):
        config_from_args([*PLAIN, "--tlsCAFile", "ca.pem"])


def test_encryption_without_key_file_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_args(["--tlsMode", "disabled"])
    assert str(info.value).startswith(
        "encryption at rest is on but no --encryptionKeyFile was given; "
    )
    assert "--noEncryption" in str(info.value)


def test_key_file_with_encryption_off_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^--encryptionKeyFile was given but encryption"):
        config_from_args([*PLAIN, "--encryptionKeyFile", "k"])


def test_bson_audit_to_console_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^auditLog.format BSON needs destination file"):
        config_from_args([*PLAIN, "--auditDestination", "console", "--auditFormat", "BSON"])


def test_audit_path_with_syslog_destination_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^auditLog.path was given but the audit destination"):
        config_from_args([*PLAIN, "--auditDestination", "syslog", "--auditPath", "/a.json"])


def test_audit_settings_with_audit_off_in_file_are_refused(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "auditLog:\n  destination: none\n  path: /a.json\n")
    with pytest.raises(ConfigError, match=r"^auditLog.path was given but auditing is off$"):
        config_from_args([*PLAIN, "--config", path])


def test_audit_off_in_file_is_honoured(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "auditLog:\n  destination: none\n")
    assert config_from_args([*PLAIN, "--config", path]).audit_destination is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--auth", "--noauth"], "--auth and --noauth contradict each other"),
        (
            ["--enableEncryption", "--noEncryption"],
            "--enableEncryption and --noEncryption contradict each other",
        ),
        (
            ["--noAudit", "--auditDestination", "file"],
            "--noAudit and --auditDestination contradict each other",
        ),
    ],
)
def test_contradicting_flags_are_refused(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_args([*PLAIN, *args])
    assert str(info.value) == message


def test_empty_bind_ip_entry_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^net\.bindIp has an empty address"):
        config_from_args([*PLAIN, "--bind_ip", "127.0.0.1,"])


def test_logpath_implies_file_destination() -> None:
    config = config_from_args([*PLAIN, "--logpath", "/var/log/phidb.log"])
    assert (config.log_destination, config.log_path) == ("file", "/var/log/phidb.log")


def test_log_file_destination_without_path_is_refused(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "systemLog:\n  destination: file\n")
    with pytest.raises(ConfigError, match=r"^systemLog.destination is file but no --logpath"):
        config_from_args([*PLAIN, "--config", path])


def test_verbosity_counts_v_flags_up_to_five() -> None:
    assert config_from_args([*PLAIN, "-vvv"]).log_verbosity == 3
    with pytest.raises(ConfigError, match=r"^systemLog.verbosity must be between 0 and 5, not 6$"):
        config_from_args([*PLAIN, "-vvvvvv"])


def test_audit_filter_accepts_json_relaxed_syntax_and_mapping() -> None:
    assert parse_audit_filter('{"atype": {"$in": ["authenticate", "authCheck"]}}') == {
        "atype": {"$in": ["authenticate", "authCheck"]}
    }
    assert parse_audit_filter("{ atype: 'authCheck', 'param.command': { $in: [find] } }") == {
        "atype": "authCheck",
        "param.command": {"$in": ["find"]},
    }
    assert parse_audit_filter({"atype": "logout"}) == {"atype": "logout"}


@pytest.mark.parametrize("text", ["[1, 2]", "authCheck", "{ atype: [ }"])
def test_audit_filter_that_is_not_a_document_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^auditLog\.filter "):
        parse_audit_filter(text)


def test_audit_filter_as_yaml_mapping_in_file(tmp_path: Path) -> None:
    path = write_conf(tmp_path, "auditLog:\n  filter:\n    atype: createUser\n")
    assert config_from_args([*PLAIN, "-f", path]).audit_filter == {"atype": "createUser"}


def test_journal_commit_interval_from_file_and_command_line(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, "storage:\n  journal:\n    commitIntervalMs: 50\n")
    assert (
        config_from_args(
            ["--config", conf, "--noEncryption", "--tlsMode", "disabled"]
        ).journal_commit_interval_ms
        == 50
    )
    args = ["--journalCommitInterval", "7", "--noEncryption", "--tlsMode", "disabled"]
    assert config_from_args(args).journal_commit_interval_ms == 7
    assert (
        config_from_args(["--noEncryption", "--tlsMode", "disabled"]).journal_commit_interval_ms
        == 100
    )


@pytest.mark.parametrize("value", ["0", "501"])
def test_journal_commit_interval_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="commitIntervalMs must be between 1 and 500"):
        config_from_args(
            ["--journalCommitInterval", value, "--noEncryption", "--tlsMode", "disabled"]
        )
