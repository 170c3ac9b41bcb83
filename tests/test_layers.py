"""The package's imports read top-down: no import circle, and no module imports a higher layer.

Layers, from the bottom: the foundations (errors, budgets, the noise schedule, files); the
degradations and the networks; what is computed with them (metrics, pictures, the solvers);
face framing; the work on folders (runner, benchmark, tuning, training, demo); the interfaces
(CLI, app). A module may import its own layer's package mates and anything below.
"""

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "ssdiff"

LAYERS = [
    ("errors", "schedule", "fid", "threads"),
    ("limits",),
    ("io",),
    ("operators", "models", "data", "tasks"),
    ("metrics", "pipeline", "figures", "solvers"),
    ("faces",),
    ("runner", "tune", "train", "progress", "memory"),
    ("demo", "bench"),
    ("app",),
    ("cli",),
    ("__main__",),
]


def module_names() -> dict[str, Path]:
    names = {}
    for path in SOURCE.rglob("*.py"):
        parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imports() -> dict[str, set[str]]:
    """Every ssdiff module each module imports, at the top or inside functions."""
    names, edges = module_names(), {}
    for name, path in names.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                found |= {t for t in [target, *(f"{target}.{a.name}" for a in node.names)] if t in names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in names}
        edges[name] = found - {name}
    return edges


def layer(name: str) -> int | None:
    top = name.split(".")[1] if "." in name else None
    return next((i for i, group in enumerate(LAYERS) if top in group), None)


def test_every_module_has_a_layer():
    assert [name for name in module_names() if name != "ssdiff" and layer(name) is None] == []


def test_no_import_reaches_a_higher_layer():
    upward = [(name, target) for name, targets in imports().items() for target in targets
              if name != "ssdiff" and layer(target) is not None and layer(target) > layer(name)]
    assert upward == []


def test_no_import_circle():
    edges, state, circles = imports(), {}, []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(edges[name]):
            if state.get(target) == "open":
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert circles == []
