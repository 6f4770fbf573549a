"""Loading FHIR R4 Bundles (such as the shipped Synthea sample) into phidb with pymongo."""
