"""Shared test helpers (fakes, builders, reference cases)."""
