"""medchain: encrypted, patient-controlled medical records on a permissioned blockchain."""
