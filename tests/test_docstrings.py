"""Every public name is documented: a summary, `Args:` where it takes any, an example."""

import inspect

import pytest

import keras_ddpm as kd

MODULES = [
    kd.layers,
    kd.models,
    kd.schedules,
    kd.samplers,
    kd.datasets,
    kd.viz,
    kd.callbacks,
    kd.distribute,
]
PUBLIC = sorted(
    {(module.__name__, name) for module in MODULES for name in module.__all__},
)


def takes_arguments(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    parameters = [
        p
        for p in inspect.signature(target).parameters
        if p not in ("self", "kwargs", "args")
    ]
    return bool(parameters)


@pytest.mark.parametrize("module_name,name", PUBLIC)
def test_public_name_is_documented(module_name, name):
    module = next(m for m in MODULES if m.__name__ == module_name)
    obj = getattr(module, name)
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{module_name}.{name} has no docstring"
    if inspect.isclass(obj) or inspect.isfunction(obj):
        if takes_arguments(obj):
            assert "Args:" in doc, f"{module_name}.{name} documents no Args"
        assert "Example" in doc, f"{module_name}.{name} has no Example"


def test_diffusion_model_methods_are_documented():
    for method in ("generate", "reconstruct", "compile"):
        assert inspect.getdoc(getattr(kd.DiffusionModel, method))
