"""The repository's declarative files agree with the code."""

import subprocess

import tomllib
import yaml

from tests.conftest import PYTHON, REPO


def test_conda_yaml_pip_list_equals_pyproject_dependencies():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((REPO / "conda.yaml").read_text())
    pip_list = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert sorted(pip_list) == sorted(deps)


def test_mlproject_is_generated_from_the_entry_point_configs():
    result = subprocess.run(
        [PYTHON, "-m", "projects.core.mlproject", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_mlproject_declares_every_config_field_with_its_default():
    from projects.core.mlproject import config_class
    from projects.entrypoints import ENTRY_POINTS

    spec = yaml.safe_load((REPO / "MLproject").read_text())
    assert set(spec["entry_points"]) == set(ENTRY_POINTS)
    import dataclasses

    for entry, module in ENTRY_POINTS.items():
        fields = {f.name: f.default for f in dataclasses.fields(config_class(module))}
        params = spec["entry_points"][entry]["parameters"]
        assert set(params) == set(fields), entry
        for name, default in fields.items():
            declared = params[name]["default"]
            assert str(declared).lower() == str(default).lower() or float(declared) == float(default), (
                entry,
                name,
            )


def test_code_passes_ruff_lint_and_format():
    ruff = [PYTHON, "-m", "ruff"]
    lint = subprocess.run([*ruff, "check", "."], cwd=REPO, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = subprocess.run([*ruff, "format", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def test_system_tools_check_names_the_missing_package(tmp_path):
    """`make setup` runs .ci/system-tools; without a tool (and without root to install it) it says in one
    line which apt packages to install."""
    import shutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cat", "tr", "id", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    script = REPO / ".ci" / "system-tools"
    env = {"PATH": str(bin_dir), "PG_ROOT": str(tmp_path / "none")}
    result = subprocess.run(
        [shutil.which("bash"), str(script), "--check"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "missing system tools (NeRF study, PostgreSQL and browser tests): sudo apt-get install -y postgresql colmap ffmpeg chromium"
    )
