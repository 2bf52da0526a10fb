"""The docs stay true: every public name has an API page, and every example runs.

- Every name in the `__all__` of every public module (found by walking the
  package) is rendered by a `::: target` line of some page under docs/.
- Every ```python block of docs/**/*.md runs: per file, in order, in one
  namespace, in a temporary working directory, with TFDS serving generated data
  (nothing is downloaded).
- Every ```python block of a public docstring (the `Example:` sections the API
  pages show) runs, each in a fresh namespace.

Running examples does not depend on the Keras backend (the library's behaviour
per backend is tested elsewhere), so those tests run once, under TensorFlow, with
`tf.function`s run eagerly: at the examples' toy sizes, tracing a train step or a
sampling loop costs far more than running it (graph mode is tested elsewhere).
"""

import importlib.util
import inspect
import re
import textwrap
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```", re.M | re.S)

spec = importlib.util.spec_from_file_location(
    "docs_hooks", ROOT / "scripts" / "docs_hooks.py"
)
docs_hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs_hooks)

# Under PyTorch, whose tiny models run without tracing: several times faster
# than TensorFlow here, which already runs the command-line plumbing tests.
one_backend_only = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="examples do not depend on the backend: they run once, under PyTorch",
)


@pytest.fixture
def example_env(tmp_path, monkeypatch):
    """A temporary working directory, eager `tf.function`s, no plot windows."""
    import matplotlib
    import tensorflow as tf

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    eager = tf.config.functions_run_eagerly()
    tf.config.run_functions_eagerly(True)
    yield tmp_path
    tf.config.run_functions_eagerly(eager)


def python_blocks(text):
    """`(first line number of the code, code)` of each ```python block of `text`."""
    blocks = []
    for match in FENCE.finditer(text):
        if match.group(2) == "python":
            line = text.count("\n", 0, match.start(3)) + 1
            blocks.append((line, textwrap.dedent(match.group(3))))
    return blocks


def run_block(code, line, filename, namespace):
    # Pad with blank lines so that tracebacks point at the line in the file.
    compiled = compile("\n" * (line - 1) + code, str(filename), "exec")
    try:
        exec(compiled, namespace)
    except Exception as error:
        raise AssertionError(
            f"{filename}:{line}: the python block starting here fails: "
            f"{type(error).__name__}: {error}"
        ) from error


# -- API pages ------------------------------------------------------------------


def test_public_modules_are_found_by_walking_the_package():
    modules = docs_hooks.public_modules()
    for name in ("keras_ddpm", "keras_ddpm.layers", "keras_ddpm.samplers"):
        assert name in modules
    assert not any(part.startswith("_") for m in modules for part in m.split("."))
    assert "keras_ddpm.layers.residual_block" not in modules  # no __all__


def test_every_public_name_is_on_an_api_page():
    targets = [target for _, target in docs_hooks.directives(DOCS)]
    documented = docs_hooks.documented_objects(targets)
    missing = docs_hooks.missing_names(docs_hooks.public_api(), documented)
    assert not missing, (
        f"no docs/api page renders {missing}; add `::: module` or `::: module.Name`"
    )


def test_the_coverage_check_notices_a_missing_name():
    targets = [t for _, t in docs_hooks.directives(DOCS) if t != "keras_ddpm.layers"]
    missing = docs_hooks.missing_names(
        docs_hooks.public_api(), docs_hooks.documented_objects(targets)
    )
    assert "keras_ddpm.layers.ResidualBlock" in missing


def test_every_directive_names_something_importable():
    for path, target in docs_hooks.directives(DOCS):
        assert docs_hooks.resolve(target) is not None, f"{path}: ::: {target}"


def test_cli_page_shows_the_help_of_every_command():
    from keras_ddpm.cli import build_parser

    assert docs_hooks.CLI_MARKER in (DOCS / "cli.md").read_text()
    text = docs_hooks.cli_help_markdown()
    assert build_parser().format_usage().split()[1] in text
    commands = re.findall(r"^## `keras-ddpm (\w+) --help`", text, re.M)
    assert {"train", "sample", "reconstruct", "info"} <= set(commands)
    assert "--sample-steps" in text and "--raw-weights" in text


# -- examples that run ----------------------------------------------------------


def test_python_blocks_are_found_with_their_line_numbers():
    text = "intro\n\n```python\nx = 1\n```\n\n```bash\nrm -rf /\n```\n    ```python\n    y = 2\n    ```\n"
    assert python_blocks(text) == [(4, "x = 1\n"), (11, "y = 2\n")]


def test_a_failing_block_names_its_file_and_line(tmp_path):
    with pytest.raises(AssertionError, match=r"guide\.md:7: .*ZeroDivisionError"):
        run_block("x = 1\ny = x / 0\n", 7, tmp_path / "guide.md", {})


DOC_FILES = sorted(
    p.relative_to(DOCS).as_posix()
    for p in DOCS.rglob("*.md")
    if python_blocks(p.read_text(encoding="utf-8"))
)


@one_backend_only
@pytest.mark.parametrize("name", DOC_FILES)
def test_docs_python_blocks_run(name, example_env):
    import tensorflow_datasets as tfds

    path = DOCS / name
    namespace = {"__name__": "__docs__"}
    with tfds.testing.mock_data(num_examples=48):
        for line, code in python_blocks(path.read_text(encoding="utf-8")):
            run_block(code, line, path, namespace)


def _docstring_examples():
    seen, examples = set(), []
    for module_name, names in docs_hooks.public_api().items():
        for name, obj in names.items():
            members = [(name, obj)]
            if inspect.isclass(obj):
                members += [
                    (f"{name}.{attr}", value)
                    for attr, value in vars(obj).items()
                    if not attr.startswith("_")
                ]
            for label, member in members:
                doc = inspect.getdoc(member)
                if not doc or id(member) in seen:
                    continue
                seen.add(id(member))
                for index, (_, code) in enumerate(python_blocks(doc)):
                    examples.append(
                        pytest.param(code, id=f"{module_name}.{label}[{index}]")
                    )
    return examples


@one_backend_only
@pytest.mark.parametrize("code", _docstring_examples())
def test_docstring_examples_run(code, example_env, request):
    run_block(code, 1, request.node.callspec.id, {"__name__": "__docs__"})
