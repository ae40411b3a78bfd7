"""Atomic file writes, re-exported from :mod:`gaussrl.core.atomic` (where the models can reach them)."""

from __future__ import annotations

from gaussrl.core.atomic import atomic_path, check_writable, write_atomic, write_text_atomic

__all__ = ["atomic_path", "check_writable", "write_atomic", "write_text_atomic"]
