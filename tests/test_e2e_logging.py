"""What a real server writes to its operational log and audit log while it serves PHI:
after inserts, a query on an SSN, failed logins and failing writes whose error replies
quote values, neither log holds an SSN, a document value or a password."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError, OperationFailure, WriteError

from harness import PhidbServer

SSN = "999-31-7754"
FAMILY = "Quillfeatherstone"
DIAGNOSIS = "Lyme-carditis-20931"
PASSWORD = "nurse-pass-Vx83kq-0012"
WRONG_PASSWORD = "nurse-wrong-Zq77pl-3390"


def test_logs_hold_no_ssn_document_value_or_password(make_phidb: Any) -> None:
    # Full verbosity: whatever debug logging exists must keep values out too.
    srv: PhidbServer = make_phidb("-vvvvv")
    admin_password = srv.create_admin()
    admin = srv.admin_client()
    admin["clinic"].command("createUser", "nurse", pwd=PASSWORD, roles=["readWrite"])
    nurse = srv.client("nurse", PASSWORD, db="clinic")
    patients = nurse["clinic"]["patients"]
    patients.create_index("ssn", unique=True)
    patient = {"_id": 1, "ssn": SSN, "name": {"family": FAMILY}, "dx": DIAGNOSIS, "age": 41}
    patients.insert_one(patient)

    assert patients.find_one({"ssn": SSN}) == patient
    assert patients.count_documents({"name.family": FAMILY}) == 1
    with pytest.raises(DuplicateKeyError) as duplicate:
        patients.insert_one({"_id": 2, "ssn": SSN})
    assert SSN in str(duplicate.value.details)  # the client may see the key; the logs may not
    with pytest.raises(WriteError) as bad_update:
        patients.update_one({"ssn": SSN}, {"$inc": {"dx": 1}})
    assert bad_update.value.code == 14
    with pytest.raises(OperationFailure):
        patients.find_one({"ssn": {"$regex": f"({SSN}"}})
    with pytest.raises(OperationFailure):
        patients.find_one({"$expr": {"$divide": [FAMILY, 0]}})
    for _ in range(2):
        with pytest.raises(OperationFailure) as refused:
            srv.client("nurse", WRONG_PASSWORD, db="clinic")["clinic"].command("ping")
        assert refused.value.code == 18
    srv.stop()

    log = srv.log_text()
    audit = srv.audit_path.read_text()
    assert "waiting for connections" in log
    # The operational events are there (so the absence of secrets below means something).
    assert "authentication failed for" in log
    assert "authenticated admin@admin with SCRAM-SHA-256" in log
    assert "accepted from 127.0.0.1" in log
    assert '"atype":"authenticate"' in audit
    for secret in (SSN, FAMILY, DIAGNOSIS, PASSWORD, WRONG_PASSWORD, admin_password):
        assert secret not in log, f"{secret} in the operational log"
        assert secret not in audit, f"{secret} in the audit log"
