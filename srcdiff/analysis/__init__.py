"""Read-only analyses of a normalized function; each returns frozen data."""
