"""mkdocs hooks: the CLI page's `--help` text, and a check that the API pages are complete.

- The CLI page (`docs/cli.md`) holds a `<!-- cli-help -->` marker that is replaced,
  at build time, by `keras-ddpm --help` and the help of every subcommand, rendered
  from the parser itself. Generating it while building (instead of committing the
  text and testing that it is fresh) means the page can never be stale, and a new
  subcommand appears on it without anyone regenerating anything.
- After the build, every name in the `__all__` of every public module of
  `keras_ddpm` must be in the site's `objects.inv`, the inventory of the objects
  mkdocstrings rendered; otherwise the build fails and names the missing ones.

`tests/test_docs.py` uses `public_api()` and `documented_objects()` for the same
check on the markdown sources, without building the site.
"""

import ast
import contextlib
import importlib
import importlib.util
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "keras_ddpm"
CLI_MARKER = "<!-- cli-help -->"
DIRECTIVE = re.compile(r"^:::\s+([\w.]+)\s*$", re.M)


def _defines_all(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def public_modules(root=ROOT):
    """Dotted names of the package's public modules: those that define `__all__`.

    Found by walking the package's files (so a new subpackage is covered without
    being listed anywhere); modules or packages whose name starts with `_` are
    private and skipped.
    """
    found = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        if _defines_all(path):
            found.append(".".join(parts))
    return found


def public_api(root=ROOT):
    """`{module name: {public name: object}}` for every public module.

    Dunder names (`__version__`) are left out; a name bound to a module stands
    for that module, which is covered by its own entry or by a `::: module` page.
    """
    api = {}
    for name in public_modules(root):
        module = importlib.import_module(name)
        api[name] = {
            attr: getattr(module, attr)
            for attr in module.__all__
            if not (attr.startswith("__") and attr.endswith("__"))
        }
    return api


def resolve(dotted):
    """Import `a.b.C.method` and return the object, or None if it does not exist."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None


def directives(docs_dir):
    """`(markdown file, target)` for every `::: target` line under `docs_dir`."""
    return [
        (path, target)
        for path in sorted(Path(docs_dir).rglob("*.md"))
        for target in DIRECTIVE.findall(path.read_text(encoding="utf-8"))
    ]


def documented_objects(targets):
    """The objects a list of mkdocstrings targets renders, by `id`.

    A module target renders the names of its `__all__`, except a name that is
    also a submodule of that package (`keras_ddpm.cli.main`, the function, and
    `keras_ddpm/cli/main.py`): the docs' static analysis sees the submodule
    there, so such a name needs a target of its own (`::: keras_ddpm.cli.main.main`).
    Any other target renders that object.
    """
    documented = {}
    for target in targets:
        obj = resolve(target)
        if obj is None:
            raise ValueError(f"`::: {target}` names nothing importable.")
        documented[id(obj)] = target
        if not isinstance(obj, type(os)):
            continue
        for attr in getattr(obj, "__all__", ()):
            if not hasattr(obj, "__path__") or (
                importlib.util.find_spec(f"{target}.{attr}") is None
            ):
                documented[id(getattr(obj, attr))] = f"{target}.{attr}"
    return documented


def missing_names(api, documented):
    """`module.name` of every public object that no target documents."""
    missing = []
    for module_name, names in api.items():
        for name, obj in names.items():
            if isinstance(obj, type(os)) and (
                hasattr(obj, "__all__") or id(obj) in documented
            ):
                continue  # a public module: its own names are checked
            if id(obj) not in documented:
                missing.append(f"{module_name}.{name}")
    return missing


def cli_help_markdown():
    """`keras-ddpm --help` and `keras-ddpm COMMAND --help`, as markdown sections."""
    import argparse

    from keras_ddpm.cli import build_parser

    environ = {"COLUMNS": "78", "NO_COLOR": "1", "PYTHON_COLORS": "0"}
    saved = {key: os.environ.get(key) for key in environ}
    os.environ.update(environ)
    try:
        parser = build_parser()
        sections = [("keras-ddpm --help", parser.format_help())]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for command, subparser in action.choices.items():
                    sections.append(
                        (f"keras-ddpm {command} --help", subparser.format_help())
                    )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return "\n".join(
        f"## `{title}`\n\n```text\n{text.rstrip()}\n```\n" for title, text in sections
    )


def on_page_markdown(markdown, page, config, files):
    if CLI_MARKER in markdown:
        return markdown.replace(CLI_MARKER, cli_help_markdown())
    return markdown


def on_post_build(config):
    from mkdocs.exceptions import PluginError
    from mkdocstrings import Inventory

    inventory_path = Path(config["site_dir"]) / "objects.inv"
    if not inventory_path.is_file():
        raise PluginError(f"{inventory_path} was not written by mkdocstrings.")
    with open(inventory_path, "rb") as file:
        inventory = Inventory.parse_sphinx(file, domain_filter=("py",))
    rendered = {}
    for name in inventory:
        with contextlib.suppress(Exception):
            obj = resolve(name)
            if obj is not None:
                rendered[id(obj)] = name
    missing = missing_names(public_api(), rendered)
    if missing:
        raise PluginError(
            "No API page renders these public names (add them to a docs/api page): "
            + ", ".join(missing)
        )
