"""Every project shape built once per session (git origin + DVC remote on moto), copied per test."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.shapes.projects import ShapeProject, ShapeTemplate, build_templates, copy_shape


@pytest.fixture(scope="session")
def fast_python_env() -> dict[str, str]:
    """This machine sets PYTHONDONTWRITEBYTECODE=1, so every `dvc` and `ci-helpers` process these
    tests start would recompile all of its imports (a `dvc` call takes 2 s instead of 1 s). They cache
    bytecode under the system temp folder instead: never in the venv nor in the repository."""
    prefix = Path(tempfile.gettempdir()) / "mlops-actions-tests-pycache"
    return {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(prefix)}


@pytest.fixture(scope="session")
def shape_templates(moto_endpoint, tmp_path_factory, fast_python_env) -> dict[str, ShapeTemplate]:
    return build_templates(tmp_path_factory.mktemp("shapes"), moto_endpoint, fast_python_env)


@pytest.fixture
def shape_project(shape_templates, moto_endpoint, fast_python_env, tmp_path):
    """shape_project(name) -> this test's own copy of that shape (origin and bucket)."""

    def make(name: str) -> ShapeProject:
        return copy_shape(shape_templates[name], tmp_path / name, moto_endpoint, fast_python_env)

    return make
