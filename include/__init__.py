"""Shared library of the Pinterest data platform: records, settings, lake layout, drain, emulator."""
