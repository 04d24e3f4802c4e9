"""Shared test support: real parts started per test session (see each module)."""
