"""The documents a newcomer reads stay true: config/README.md describes every config file,
CONTRIBUTING.md names only Makefile targets, paths and markers that exist, the Snakemake workflow
catalog file has the keys the catalog reads, and every module says what it is for."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "CONTRIBUTING.md", "config/README.md"]
# a backticked repository path: checked for existence unless it is a pattern (<arch>, {dataset}, *)
REPO_PATH = re.compile(r"`((?:config|workflow|src|tests|benchmarks|scripts|profiles|envs|docs|tools)/[\w./+-]*)`")
# named on purpose though absent: written by the first fetch_weights; optional (there is none
# today) (the docs say each)
NOT_YET = {"config/weights.lock.yaml", "config/models/pretrained_tags.yaml"}
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)


def read(name: str) -> str:
    return (REPO / name).read_text()


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w.-]*):(?!=)", read("Makefile"), re.MULTILINE))


def test_every_config_file_is_described_in_config_readme():
    readme = read("config/README.md")
    files = sorted(
        p.relative_to(REPO / "config").as_posix()
        for p in [*(REPO / "config").glob("*.yaml"), *(REPO / "config").glob("models/*.yaml")]
    )
    assert files, "no config files found"
    missing = [f for f in files if f"`{f}`" not in readme]
    assert not missing, f"config/README.md does not describe {missing}"
    assert "`models/<arch>.json`" in readme and list((REPO / "config" / "models").glob("*.json"))
    for schema in sorted((REPO / "workflow" / "schemas").glob("*.yaml")):
        assert f"`workflow/schemas/{schema.name}`" in readme, schema.name


def test_config_readme_names_the_lock_files_the_schema_defaults_to():
    schema = yaml.safe_load(read("workflow/schemas/config.schema.yaml"))
    download = schema["properties"]["download"]["properties"]
    readme = read("config/README.md")
    for key in ("lock", "weights_lock"):
        default = download[key]["default"]
        assert f"`{default}`" in readme and f"`download.{key}`" in readme, key


@pytest.mark.parametrize("doc", DOCS)
def test_make_targets_named_in_the_docs_exist(doc):
    code = "\n".join(CODE.findall(read(doc)))  # commands, not prose ("they make up 30 %")
    named = set(re.findall(r"(?:^|[\s`;&|])make ([a-z][\w-]*)", code))
    assert doc == "config/README.md" or named, f"{doc} names no make target"
    assert not named - makefile_targets(), (
        f"{doc} names make targets the Makefile lacks: {sorted(named - makefile_targets())}"
    )


def test_contributing_names_the_test_commands_that_work():
    text, makefile = read("CONTRIBUTING.md"), read("Makefile")
    for target in ("test", "test-min", "lint"):
        assert f"make {target}" in text, target
    assert "$(PYTEST_ARGS)" in makefile and "PYTEST_ARGS=" in text
    assert "REMOTECLIP_SLURM_TEST" in read("tests/test_slurm.py")
    pytest_ini = tomllib.loads(read("pyproject.toml"))["tool"]["pytest"]["ini_options"]
    registered = {m.split(":", 1)[0].strip() for m in pytest_ini["markers"]}
    named = set(re.findall(r"@pytest\.mark\.(\w+)", text))
    named |= {m for pair in re.findall(r"markers? `(\w+)`(?: and `(\w+)`)?", text) for m in pair if m}
    assert "slow" in named and named <= registered, f"CONTRIBUTING.md names markers {sorted(named - registered)}"


@pytest.mark.parametrize("doc", DOCS)
def test_repository_paths_named_in_the_docs_exist(doc):
    missing = sorted(
        {
            p
            for p in REPO_PATH.findall(read(doc))
            if not re.search(r"[<>{}*]", p) and p not in NOT_YET and not (REPO / p).exists()
        }
    )
    assert not missing, f"{doc} names paths that do not exist: {missing}"


def test_workflow_catalog_file_has_the_usage_keys_the_catalog_reads():
    # https://snakemake.github.io/snakemake-workflow-catalog: usage.mandatory-flags {desc, flags},
    # usage.software-stack-deployment {conda, singularity|apptainer, ...+conda}, usage.report
    settings = yaml.safe_load(read(".snakemake-workflow-catalog.yml"))
    usage = settings["usage"]
    flags = usage["mandatory-flags"]
    assert set(flags) == {"desc", "flags"} and isinstance(flags["desc"], str) and flags["desc"].strip()
    assert isinstance(flags["flags"], (str, list))
    deployment = usage["software-stack-deployment"]
    allowed = {"conda", "singularity", "singularity+conda", "apptainer", "apptainer+conda"}
    assert "conda" in deployment and set(deployment) <= allowed, deployment
    assert all(isinstance(v, bool) for v in deployment.values()), deployment
    assert isinstance(usage["report"], bool)
    # and what it claims is how the workflow is built
    rules = "\n".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    assert deployment["conda"] == ("conda:" in rules and bool(list((REPO / "envs").glob("*.yaml"))))
    containers = any(v for k, v in deployment.items() if k != "conda")
    assert containers == bool(re.search(r"^\s*container:", rules + read("Snakefile"), re.MULTILINE))
    assert usage["report"] == bool(re.search(r"^report:", read("Snakefile"), re.MULTILINE))
    for flag in ("--configfile config/paper.yaml", "--workflow-profile profiles/slurm", "--sdm conda"):
        assert flag in flags["desc"], flag
    assert (REPO / "config" / "README.md").is_file()  # the catalog shows it as the configuration page


def module_files() -> list[Path]:
    return sorted((REPO / "src" / "remoteclip").rglob("*.py"))


@pytest.mark.parametrize("path", module_files(), ids=lambda p: p.relative_to(REPO / "src").as_posix())
def test_every_module_has_a_docstring(path):
    assert (ast.get_docstring(ast.parse(path.read_text())) or "").strip(), f"{path.relative_to(REPO)} has no docstring"


@pytest.fixture(scope="module")
def rule_names() -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--list-rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {line.strip() for line in proc.stdout.splitlines() if re.fullmatch(r"\s*\w+\s*", line)}


@pytest.mark.parametrize("path", sorted((REPO / "scripts").glob("*.py")), ids=lambda p: p.name)
def test_every_script_names_the_rules_that_run_it(path, rule_names):
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert re.match(r"Rules? `", doc), f"scripts/{path.name}: the docstring should start with the rule that runs it"
    # the backticked names before the first ": " are the rules (`root:` and the like are not names)
    named = set(re.findall(r"`(\w+)`", doc.split(": ", 1)[0]))
    assert named and named <= rule_names, f"scripts/{path.name} names {sorted(named - rule_names)}, not rules"
    rules = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    assert f"scripts/{path.name}" in rules, f"no rule runs scripts/{path.name}"


# a dotted name in the package (remoteclip.models.register_pretrained_tags), not a file name
# that merely contains the word (envs/install-remoteclip.sh)
PACKAGE_NAME = re.compile(r"(?<![\w/.-])remoteclip(?:\.[A-Za-z_]\w*)+")
TEXT_FILES = [
    *(p for d in ("src", "config", "workflow", "docs", "scripts", "benchmarks") for p in (REPO / d).rglob("*")),
    *(REPO / name for name in ("README.md", "CONTRIBUTING.md", "Snakefile")),
]


def resolves(dotted: str) -> bool:
    """Whether `dotted` names a module of the package or an attribute inside one."""
    import importlib

    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for name in parts[1:]:
        if hasattr(obj, name):
            obj = getattr(obj, name)
            continue
        try:
            obj = importlib.import_module(f"{obj.__name__}.{name}")
        except (ImportError, AttributeError):
            return False
    return True


def test_every_dotted_name_of_the_package_in_code_and_docs_exists():
    """Comments, docstrings, configs and docs name modules and functions as `remoteclip.x.y`; a
    name left behind by a move (a module renamed, a function moved) points nowhere."""
    names = {
        m.group(0).rstrip(".")
        for path in TEXT_FILES
        if path.suffix in (".py", ".yaml", ".md", ".smk", "") and path.is_file()
        for m in PACKAGE_NAME.finditer(path.read_text(errors="ignore"))
    }
    assert len(names) > 20  # the scan does see them
    assert sorted(n for n in names if not resolves(n)) == []


def test_the_package_overview_names_modules_that_exist():
    overview = ast.get_docstring(ast.parse(read("src/remoteclip/__init__.py"))) or ""
    named = set(re.findall(r"`([a-z_]+)`", overview))
    package = REPO / "src" / "remoteclip"
    assert (
        named and sorted(n for n in named if not (package / f"{n}.py").is_file() and not (package / n).is_dir()) == []
    )


def package_imports() -> dict[str, set[str]]:
    """{module of remoteclip: the modules of remoteclip it imports}, at module level or inside a
    function alike (an import moved into a function still closes a circle when it runs)."""
    src = REPO / "src"
    modules = {}
    for path in sorted((src / "remoteclip").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if package else parts)] = (path, package)

    def targets(module: str, package: bool, node: ast.AST) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        assert isinstance(node, ast.ImportFrom)
        base = module.split(".") if package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1] if node.level else []
        where = ".".join(base + ([node.module] if node.module else []))
        return [f"{where}.{a.name}" if f"{where}.{a.name}" in modules else where for a in node.names]

    graph: dict[str, set[str]] = {}
    for module, (path, package) in modules.items():
        graph[module] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in targets(module, package, node):
                    while target not in modules and "." in target:
                        target = target.rsplit(".", 1)[0]
                    if target in modules and target != module:
                        graph[module].add(target)
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The circles of `graph`: its strongly connected parts of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                circles.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_the_circle_finder_sees_a_circle_through_a_function_level_import():
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_in_the_package():
    graph = package_imports()
    assert "remoteclip.models.factory" in graph["remoteclip.models"]  # the scan resolves relative imports
    assert import_circles(graph) == []


def test_download_code_is_imported_by_the_fetch_rule_alone():
    """remoteclip.weights.fetch downloads; training and scoring read the cache."""
    importers = sorted(m for m, targets in package_imports().items() if "remoteclip.weights.fetch" in targets)
    assert importers == []
    scripts = [p.name for p in (REPO / "scripts").glob("*.py") if "remoteclip.weights.fetch" in p.read_text()]
    assert scripts == ["fetch_weights.py"]


def test_state_dicts_are_loaded_strictly_in_one_place():
    """models.state.load_strict is the one strict loader (one message for keys that do not fit);
    a partial load says strict=False and is its own business (a hybrid's text tower)."""
    calls = {
        str(path.relative_to(REPO)): re.findall(r"\w+\.load_state_dict\(([^)]*)\)", path.read_text())
        for path in module_files()
    }
    model_loads = {
        path: [c for c in found if not c.startswith("state[") and "strict=False" not in c]
        for path, found in calls.items()
    }
    assert {p: c for p, c in model_loads.items() if c} == {"src/remoteclip/models/state.py": ["state, strict=True"]}
