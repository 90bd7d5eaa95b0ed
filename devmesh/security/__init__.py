"""Authentication, tenants and the credentials vault."""
