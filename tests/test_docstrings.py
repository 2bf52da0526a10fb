"""Every public name is documented: summary, Args, Returns, Raises, Example, References.

Public names are those in the `__all__` of every public module, found by walking
the package (as the docs' API check does), plus the public methods of public
classes that have a docstring (those the API pages show). Which sections a
docstring needs is read from the code:

- `Args:` when it takes arguments (a class: its `__init__`);
- `Returns:` when a function or method returns a value;
- `Raises:` when its own body raises (a class: its `__init__`);
- `Example:` with a ```python block for every public class and function;
- `References:` naming the paper of every method in `PAPERS`.
"""

import ast
import importlib.util
import inspect
import textwrap
from pathlib import Path

import pytest

import keras_ddpm as kd

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "docs_hooks", ROOT / "scripts" / "docs_hooks.py"
)
docs_hooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs_hooks)

# The papers that define what a public name implements (arXiv ids).
PAPERS = {
    "keras_ddpm.layers.SinusoidalEmbedding": ["1706.03762", "2006.11239"],
    "keras_ddpm.layers.ResidualBlock": ["2006.11239", "1605.07146"],
    "keras_ddpm.layers.AttentionBlock": ["2006.11239", "1711.07971"],
    "keras_ddpm.layers.DownBlock": ["1505.04597", "2006.11239"],
    "keras_ddpm.layers.UpBlock": ["1505.04597", "2006.11239"],
    "keras_ddpm.layers.PixelUnshuffle": ["1609.05158"],
    "keras_ddpm.layers.PixelShuffle": ["1609.05158"],
    "keras_ddpm.models.build_unet": ["1505.04597", "2006.11239", "2301.11093"],
    "keras_ddpm.models.DiffusionModel": [
        "2006.11239",
        "2202.00512",
        "2303.09556",
        "2006.09011",
    ],
    "keras_ddpm.schedules.LinearSchedule": ["2006.11239"],
    "keras_ddpm.schedules.CosineSchedule": ["2102.09672"],
    "keras_ddpm.schedules.SigmoidSchedule": ["2212.11972", "2301.10972"],
    "keras_ddpm.samplers.DDPMSampler": ["2006.11239", "2102.09672"],
    "keras_ddpm.samplers.DDIMSampler": ["2010.02502"],
    "keras_ddpm.samplers.spaced_timesteps": ["2305.08891"],
    "keras_ddpm.ops.q_sample": ["2006.11239"],
    "keras_ddpm.ops.prediction_target": ["2202.00512"],
    "keras_ddpm.ops.predict_x0_and_eps": ["2006.11239", "2202.00512"],
}


def _public():
    found = {}
    for module_name, names in docs_hooks.public_api().items():
        for name, obj in names.items():
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.setdefault(id(obj), (f"{module_name}.{name}", obj))
    return sorted(found.values(), key=lambda item: item[0])


PUBLIC = _public()
METHODS = [
    (f"{label}.{attr}", value)
    for label, obj in PUBLIC
    if inspect.isclass(obj)
    for attr, value in vars(obj).items()
    if not attr.startswith("_")
    and inspect.isfunction(getattr(value, "__func__", value))
    and value.__doc__
]


def _function_node(function):
    source = textwrap.dedent(inspect.getsource(function))
    return ast.parse(source).body[0]


def _own_nodes(node):
    """The nodes of a function's body, not descending into nested functions/classes."""
    nested = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    stack = [child for child in node.body if not isinstance(child, nested)]
    while stack:
        child = stack.pop()
        yield child
        stack += [n for n in ast.iter_child_nodes(child) if not isinstance(n, nested)]


def returns_value(function):
    return any(
        isinstance(n, ast.Return)
        and n.value is not None
        and not (isinstance(n.value, ast.Constant) and n.value.value is None)
        for n in _own_nodes(_function_node(function))
    )


def raises(function):
    return any(isinstance(n, ast.Raise) for n in _own_nodes(_function_node(function)))


def takes_arguments(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    parameters = [
        p
        for p in inspect.signature(target).parameters
        if p not in ("self", "kwargs", "args")
    ]
    return bool(parameters)


def own_init(cls):
    init = vars(cls).get("__init__")
    return init if inspect.isfunction(init) else None


@pytest.mark.parametrize("label,obj", PUBLIC, ids=[label for label, _ in PUBLIC])
def test_public_name_is_documented(label, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{label} has no docstring"
    if takes_arguments(obj):
        assert "\nArgs:" in doc, f"{label} documents no Args"
    assert "\nExample:" in doc and "```python" in doc, f"{label} has no python Example"
    function = own_init(obj) if inspect.isclass(obj) else obj
    if inspect.isfunction(obj) and returns_value(obj):
        assert "\nReturns:" in doc, f"{label} returns a value but documents no Returns"
    if function is not None and raises(function):
        assert "\nRaises:" in doc, f"{label} raises but documents no Raises"


@pytest.mark.parametrize("label,method", METHODS, ids=[label for label, _ in METHODS])
def test_public_method_is_documented(label, method):
    function = getattr(method, "__func__", method)
    doc = inspect.getdoc(function)
    if takes_arguments(function):
        assert "\nArgs:" in doc, f"{label} documents no Args"
    if returns_value(function):
        assert "\nReturns:" in doc, f"{label} returns a value but documents no Returns"
    if raises(function):
        assert "\nRaises:" in doc, f"{label} raises but documents no Raises"


@pytest.mark.parametrize("label", sorted(PAPERS))
def test_methods_cite_their_papers(label):
    doc = inspect.getdoc(docs_hooks.resolve(label)) or ""
    assert "\nReferences:" in doc, f"{label} has no References section"
    references = doc.split("\nReferences:", 1)[1]
    for arxiv in PAPERS[label]:
        assert f"https://arxiv.org/abs/{arxiv}" in references, (
            f"{label} does not cite arXiv:{arxiv}"
        )


def test_the_section_checks_read_the_code():
    def quiet(x):
        def inner():
            raise ValueError

        return None

    def loud(x):
        if x:
            raise ValueError("x")
        return x

    assert not raises(quiet) and not returns_value(quiet)
    assert raises(loud) and returns_value(loud)


def test_diffusion_model_methods_are_documented():
    for method in ("generate", "reconstruct", "compile"):
        assert inspect.getdoc(getattr(kd.DiffusionModel, method))
