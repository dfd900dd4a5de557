"""Shared test helpers: system requirements that skip on a laptop but fail under CI."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip (on a developer's machine) or fail (under CI=true) unless ``condition`` holds."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def require_system(program: str, package: str) -> str:
    """Path of ``program``; skips or fails (under CI) naming the Debian package to install."""
    path = shutil.which(program)
    require(
        path is not None,
        f"{program} not found: install the Debian package '{package}' (make system-deps)",
    )
    assert path is not None
    return path
