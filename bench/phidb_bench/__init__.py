"""phidb's benchmark: phidb, PostgreSQL 15 and SecantusDB on one scaled FHIR workload."""
