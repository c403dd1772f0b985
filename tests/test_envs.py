"""The conda environments (envs/*.yaml) for `snakemake --sdm conda`, checked without conda:

- every environment file parses and installs the remoteclip package (post-deploy script);
- every rule that runs code names an environment, and that environment provides every
  third-party distribution the rule's code imports (found by reading the imports of its
  script or `-m` module and of the remoteclip modules they reach);
- versions agree with pyproject.toml, every dependency states a floor (`make test-min` pins
  them), torchvision's floor is the release built for torch's, and the environments build
  the package with a setuptools that pyproject.toml's build-system admits;
- the GPU environments can only resolve to CUDA builds of PyTorch.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "envs"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# the runtime dependencies and the `zoo` extra (the eval environment carries it for the leaderboard)
PROJECT_DEPS = {
    canonicalize_name(r.name): r
    for r in map(
        Requirement, PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["zoo"]
    )
}
# conda-forge names whose PyPI (pyproject) name differs
CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-gpu": "torch", "pytorch-cuda": "torch"}
CONDA_ONLY = {"python", "pip", "setuptools", "wheel", "git", "cuda-version"}
GPU_ENVS = {"train.yaml", "eval.yaml"}

# Load the workflow (demo config) in a subprocess and list its rules: name, conda env, script,
# shell command. Snakemake's API keeps the rule objects on the private `_workflow`; the
# linter's "Specify a conda environment" check reads the same attribute.
RULES_SCRIPT = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, Quietness, ResourceSettings
with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    wf = api.workflow(snakefile=Path(sys.argv[1]) / "Snakefile", resource_settings=ResourceSettings(cores=1),
                      config_settings=ConfigSettings(configfiles=[Path(sys.argv[2])]), workdir=Path(sys.argv[3]))._workflow
    print(json.dumps([{"name": r.name, "conda": r.conda_env, "script": r.script, "shell": r.shellcmd,
                       "runs_code": bool(r.shellcmd or r.script or r.wrapper or r.notebook or r.is_run),
                       "file": str(r.snakefile)} for r in wf.rules]))
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("envs")
    (workdir / "config").mkdir()
    (workdir / "config" / "b2c_templates.yaml").symlink_to(REPO / "config" / "b2c_templates.yaml")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    # the paper configuration defines every rule (evaluation rules included)
    proc = subprocess.run(
        [sys.executable, "-c", RULES_SCRIPT, str(REPO), str(REPO / "config" / "paper.yaml"), str(workdir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=workdir,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def env_files():
    return sorted(ENVS.glob("*.yaml"))


def load_env(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def conda_spec(entry: str) -> tuple[str, SpecifierSet | None, str | None]:
    """A conda MatchSpec as (name, version specifier, build glob): `numpy>=1.26`, `python=3.11`,
    `pytorch[version='>=2.2', build='cuda*']`."""
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\[(.*)\]", entry.strip())
    if m:
        keys = dict(re.findall(r"(\w+)\s*=\s*['\"]([^'\"]*)['\"]", m.group(2)))
        return m.group(1), SpecifierSet(keys["version"]) if "version" in keys else None, keys.get("build")
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", entry.strip())
    name, rest = m.group(1), m.group(2).strip()
    if not rest:
        return name, None, None
    if rest.startswith("=") and not rest.startswith("=="):  # conda's `=3.11` means 3.11.*
        return name, SpecifierSet(f"=={rest[1:]}.*"), None
    return name, SpecifierSet(rest), None


def provided(env: dict) -> dict[str, tuple[SpecifierSet | None, str | None, str]]:
    """Distributions an environment installs: canonical PyPI name -> (specifier, build, source)."""
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                req = Requirement(line)
                out[canonicalize_name(req.name)] = (req.specifier, None, "pip")
        else:
            name, spec, build = conda_spec(dep)
            out[canonicalize_name(CONDA_TO_PYPI.get(name, name))] = (spec, build, "conda")
    return out


# ---------------------------------------------------------------- imports of a rule's code


def _module_file(module: str) -> Path | None:
    base = REPO / "src" / Path(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO / "src").with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(imported module names, modules run with `sys.executable -m X`) of one file."""
    text = path.read_text()
    names = set()
    package = _module_name(path) if path.is_relative_to(REPO / "src") else ""
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    spawned = set(re.findall(r"sys\.executable,\s*[\"']-m[\"'],\s*[\"']([\w.]+)[\"']", text))
    return names, spawned


# imports of opt-in steps that a rule's environment leaves out on purpose: super-resolution
# before the shards runs the user's torch model, so the data environment (which needs no
# PyTorch) does not carry it; a run that sets super_resolution uses an environment with torch
OPT_IN_IMPORTS = {"src/remoteclip/super_resolution.py": {"torch"}}
SHARD_RULES = ("plan_shards", "build_shards", "shard_manifest")


@cache
def third_party_imports(start: Path) -> frozenset[str]:
    """Top-level third-party modules reached from a script or module through remoteclip's code."""
    seen, found, todo = set(), set(), [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        names, spawned = _imports(path)
        names -= OPT_IN_IMPORTS.get(path.relative_to(REPO).as_posix(), set())
        for name in names | spawned:
            top = name.split(".")[0]
            if top == "remoteclip":
                parts = name.split(".")
                todo += [f for i in range(1, len(parts) + 1) if (f := _module_file(".".join(parts[:i])))]
            elif top not in sys.stdlib_module_names and top != "snakemake":  # Snakemake injects its own
                found.add(top)
    return frozenset(found)


def rule_entry_point(rule: dict) -> Path:
    if rule["script"]:
        return (Path(rule["file"]).parent / rule["script"]).resolve()
    module = re.search(r"-m (remoteclip[\w.]*)", rule["shell"] or "")
    assert module, f"rule {rule['name']}: cannot tell what its shell command runs: {rule['shell']}"
    return _module_file(module.group(1) + ".__main__") or _module_file(module.group(1))


def _optional_distributions() -> dict[str, list[str]]:
    """Import name -> distribution for pyproject's optional extras that need not be installed
    here (the `zoo` extra's transformers: import name and distribution name are the same)."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    names = {canonicalize_name(Requirement(r).name) for group in extras.values() for r in group}
    return {name.replace("-", "_"): [name] for name in names}


def distributions(modules) -> set[str]:
    table = {**_optional_distributions(), **importlib.metadata.packages_distributions()}
    out = set()
    for module in modules:
        dists = table.get(module)
        assert dists, f"{module} is imported but not installed here, so its distribution is unknown"
        out.add(canonicalize_name(dists[0]))
    return out


# ---------------------------------------------------------------- tests


def test_every_env_file_parses_and_installs_the_package():
    files = env_files()
    assert {p.name for p in files} >= {"data.yaml", "train.yaml", "eval.yaml"}
    for path in files:
        env = load_env(path)
        assert "conda-forge" in env["channels"], path
        deps = env["dependencies"]
        assert any(isinstance(d, str) and conda_spec(d)[0] == "python" for d in deps), f"{path}: no python"
        assert any(isinstance(d, dict) and d.get("pip") for d in deps), f"{path}: no pip section"
        provided(env)  # every entry is a valid conda MatchSpec / pip requirement
        # Snakemake runs <env>.post-deploy.sh inside a new environment: the repository's own package
        deploy = path.with_suffix("").with_name(path.stem + ".post-deploy.sh")
        assert deploy.is_file(), f"{path.name}: no {deploy.name} to install remoteclip"
        text = deploy.read_text()
        assert text.startswith("#!"), deploy
        assert "envs/install-remoteclip.sh" in text, deploy  # one installer shared by every env
        text = (REPO / "envs" / "install-remoteclip.sh").read_text()
        assert re.search(r"pip install[^\n]*--no-deps[^\n]*--editable", text), deploy
        assert "REMOTECLIP_ROOT" in text and "pyproject.toml" in text, deploy


def test_every_rule_that_runs_code_names_an_environment(rules):
    names = {r["name"] for r in rules}
    assert {"synthesize", "parse", "b2c", "dedup", "build_shards", "train", "features"} <= names
    missing = [r["name"] for r in rules if r["runs_code"] and not r["conda"]]
    assert not missing, f"rules without a conda environment: {missing}"
    for rule in rules:
        if rule["conda"]:
            path = (Path(rule["file"]).parent / rule["conda"]).resolve()
            assert path.parent == ENVS and path.is_file(), f"rule {rule['name']}: {rule['conda']} is not in envs/"


def test_each_rule_env_provides_what_its_code_imports(rules):
    problems = []
    for rule in rules:
        if not rule["conda"]:
            continue
        env_path = (Path(rule["file"]).parent / rule["conda"]).resolve()
        need = distributions(third_party_imports(rule_entry_point(rule)))
        have = set(provided(load_env(env_path)))
        if need - have:
            problems.append(f"rule {rule['name']} ({env_path.name}) lacks {sorted(need - have)}")
    assert not problems, "\n".join(problems)


def test_families_share_an_environment(rules):
    by_rule = {r["name"]: Path(r["conda"]).name for r in rules if r["conda"]}
    for name in ("synthesize", "parse", "b2c", "ret_captions", "hash_training_source", "dedup", *SHARD_RULES):
        assert by_rule[name] == "data.yaml", name
    assert by_rule["train"] == "train.yaml"
    for name in ("eval_split", "features", "eval_summary"):
        assert by_rule[name] == "eval.yaml", name


def test_versions_agree_with_pyproject():
    requires_python = SpecifierSet(PYPROJECT["project"]["requires-python"])
    problems = []
    for path in env_files():
        for name, (spec, _, source) in provided(load_env(path)).items():
            if name == "python":
                version = next(iter(spec)).version.rstrip(".*") if spec else None
                if not version or version not in requires_python:
                    problems.append(f"{path.name}: python {spec} outside requires-python {requires_python}")
            elif name in PROJECT_DEPS:
                want = PROJECT_DEPS[name].specifier
                if spec != want:
                    problems.append(f"{path.name}: {name} {spec or '(any)'} but pyproject.toml says {want or '(any)'}")
            elif name not in CONDA_ONLY:
                problems.append(f"{path.name}: {name} ({source}) is not a dependency in pyproject.toml")
    assert not problems, "\n".join(problems)


def test_gpu_environments_resolve_only_to_cuda_builds():
    for name in GPU_ENVS:
        env = load_env(ENVS / name)
        deps = provided(env)
        for dist in ("torch", "torchvision"):
            spec, build, source = deps[dist]
            assert source == "conda", f"{name}: {dist} must come from conda-forge with a CUDA build string"
            assert build and build.startswith("cuda"), (
                f"{name}: {dist} has no cuda* build pin (a login node without a GPU would resolve a CPU build)"
            )
        text = (ENVS / name).read_text()
        assert "CONDA_OVERRIDE_CUDA" in text, f"{name}: say how to create it on a node without a GPU"
    data = provided(load_env(ENVS / "data.yaml"))
    assert "torch" not in data, "the data stages need no PyTorch"


def test_every_dependency_states_a_floor_that_make_test_min_pins():
    sys.path.insert(0, str(REPO / "tools"))
    try:
        from floor_pins import floor_pins
    finally:
        sys.path.remove(str(REPO / "tools"))
    pins = floor_pins(REPO / "pyproject.toml", ["test"])
    requirements = PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["test"]
    assert len(pins) == len(requirements)
    for pin, line in zip(pins, requirements):
        req, floor = Requirement(line), Requirement(pin)
        version = next(iter(floor.specifier)).version
        assert canonicalize_name(req.name) == canonicalize_name(floor.name)
        assert req.specifier.contains(version), f"{line}: its floor {version} is outside its own range"
    makefile = (REPO / "Makefile").read_text()
    assert "test-min:" in makefile and "tools/floor_pins.py" in makefile


def test_torchvision_floor_is_the_release_for_the_torch_floor():
    def floor(name):
        return next(s.version for s in PROJECT_DEPS[name].specifier if s.operator == ">=")

    torch_major, torch_minor = map(int, floor("torch").split(".")[:2])
    vision_major, vision_minor = map(int, floor("torchvision").split(".")[:2])
    assert torch_major == 2 and vision_major == 0
    assert vision_minor == torch_minor + 15, f"torch {floor('torch')} pairs with torchvision 0.{torch_minor + 15}"


def test_environments_build_the_package_with_an_admitted_setuptools():
    # install-remoteclip.sh uses --no-build-isolation: the environment's setuptools builds it
    wanted = next(
        Requirement(r)
        for r in PYPROJECT["build-system"]["requires"]
        if canonicalize_name(Requirement(r).name) == "setuptools"
    ).specifier
    for path in env_files():
        spec, _, _ = provided(load_env(path))["setuptools"]
        assert spec == wanted, f"{path.name}: setuptools {spec or '(any)'} but the build-system needs {wanted}"
