"""Write docs/api.md from the package's docstrings and signatures.

    python docs/generate_api.py > docs/api.md

``tests/test_docs.py`` fails when the committed file differs from what this
prints, so the reference cannot drift from the code.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SECTIONS: list[tuple[str, str, list[str] | None]] = [
    ("sa_pgque", "Top level: install, publish, queue calls, consumers", None),
    ("sa_pgque.aio", "asyncio: the same queue calls, awaited", None),
    ("sa_pgque.errors", "Errors", None),
    ("sa_pgque.functions", "SQL constructs (`func.pgque.*`)", None),
    ("sa_pgque.migrate", "Installing without an alembic.ini", None),
    ("sa_pgque.alembic", "Alembic: operations, declared queues, autogenerate filters", None),
    ("sa_pgque.metrics", "Metrics for OpenTelemetry and Prometheus", None),
]


def first_paragraph(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


def signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj)).replace("'", "")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return sorted(names, key=str.lower)


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/generate_api.py > docs/api.md`; a test keeps it current.",
        "",
    ]
    for module_name, title, _ in SECTIONS:
        module = sys.modules.get(module_name) or __import__(module_name, fromlist=["_"])
        lines += [f"## {title}", "", f"`{module_name}`: {first_paragraph(module)}", ""]
        for name in public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            if inspect.isclass(obj):
                kind = "class"
            elif callable(obj):
                kind = "def"
            else:
                continue
            if getattr(obj, "__module__", "").split(".")[0] != "sa_pgque":
                continue
            lines.append(f"- **`{name}`** `{kind}{signature(obj) if kind == 'def' else ''}` — {first_paragraph(obj)}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
