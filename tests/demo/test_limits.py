"""Validation of demo requests: every value a client can send is checked on the server."""

import math

import pytest

import keras_ddpm as kd
from keras_ddpm.demo import DemoLimits
from keras_ddpm.demo.limits import sampler_choices

LIMITS = DemoLimits(timesteps=100, max_images=8, max_steps=40)


def generate(**overrides):
    values = dict(num_images=4, sampler="DDIM", steps=10, seed=3, eta=0.5)
    values.update(overrides)
    return LIMITS.check_generate(**values)


def test_valid_request_is_normalised_to_plain_values():
    request = generate(num_images=4.0, sampler=" ddim ", steps="10", seed=3.0)
    assert request == {
        "num_images": 4,
        "sampler": {"name": "ddim", "eta": 0.5},
        "steps": 10,
        "seed": 3,
    }
    assert all(type(request[k]) is int for k in ("num_images", "steps", "seed"))


def test_ddpm_ignores_eta():
    assert generate(sampler="DDPM", eta=math.nan)["sampler"] == {"name": "ddpm"}


@pytest.mark.parametrize(
    "field,value,message",
    [
        (
            "num_images",
            0,
            r"Number of images must be a whole number in \[1, 8\], got 0",
        ),
        ("num_images", 9, r"in \[1, 8\], got 9"),
        ("num_images", 10**9, r"in \[1, 8\]"),
        ("num_images", 2.5, r"whole number"),
        ("num_images", True, r"whole number"),
        ("num_images", None, r"got None"),
        ("num_images", "many", r"got 'many'"),
        ("num_images", math.inf, r"whole number"),
        ("steps", 0, r"Steps must be a whole number in \[1, 40\], got 0"),
        ("steps", 41, r"in \[1, 40\]"),
        ("steps", math.nan, r"Steps must be"),
        (
            "sampler",
            "lms",
            r"Sampler must be 'DDIM', 'DDPM', 'DPM_SOLVER', 'EULER' or 'HEUN', got 'lms'",
        ),
        ("sampler", None, r"Sampler must be"),
        ("eta", -0.1, r"η must be a number in \[0, 1\]"),
        ("eta", 1.5, r"η must be a number in \[0, 1\]"),
        ("eta", math.nan, r"η must be"),
        ("eta", "0.5", r"η must be"),
        ("seed", -1, r"Seed must be a whole number in \[0, 2147483647\]"),
        ("seed", 2**31, r"Seed must be"),
        ("seed", 1.5, r"Seed must be"),
    ],
)
def test_bad_values_get_one_line_errors(field, value, message):
    with pytest.raises(ValueError, match=message) as error:
        generate(**{field: value})
    assert "\n" not in str(error.value)


def test_blank_seed_draws_a_random_one():
    seeds = {generate(seed=blank)["seed"] for blank in (None, "", " ", None, None)}
    assert all(0 <= s < 2**31 for s in seeds)
    assert len(seeds) > 1


def test_steps_never_exceed_the_schedule():
    limits = DemoLimits(timesteps=20, max_images=2, max_steps=1000)
    assert limits.max_steps == 20
    assert limits.check_generate(1, "ddpm", 20)["steps"] == 20
    with pytest.raises(ValueError, match=r"\[1, 20\], got 21"):
        limits.check_generate(1, "ddpm", 21)


def test_reconstruction_steps_are_bounded_by_t():
    request = LIMITS.check_reconstruct(t=9, sampler="DDIM", steps=10, seed=1, eta=0)
    assert request == {
        "t": 9,
        "sampler": {"name": "ddim", "eta": 0.0},
        "steps": 10,
        "seed": 1,
    }
    assert LIMITS.check_reconstruct(0, "DDPM", 1, 0)["t"] == 0
    with pytest.raises(ValueError, match=r"Steps must be a whole number in \[1, 10\]"):
        LIMITS.check_reconstruct(9, "DDIM", 11)
    with pytest.raises(ValueError, match=r"Noise step t must be .* \[0, 99\], got 100"):
        LIMITS.check_reconstruct(100, "DDIM", 1)
    with pytest.raises(ValueError, match=r"Noise step t"):
        LIMITS.check_reconstruct(-1, "DDIM", 1)


@pytest.mark.parametrize("field", ["timesteps", "max_images", "max_steps"])
@pytest.mark.parametrize("value", [0, -3, 2.0, True, None, "4"])
def test_bounds_must_be_positive_ints(field, value):
    kwargs = dict(timesteps=10, max_images=2, max_steps=5)
    kwargs[field] = value
    with pytest.raises(ValueError, match=f"`{field}` must be a positive int"):
        DemoLimits(**kwargs)


def test_samplers_come_from_the_registry(monkeypatch):
    # A sampler registered under a new name is offered by itself; it takes η
    # when its config has one.
    monkeypatch.setitem(kd.samplers._REGISTRY.names, "toy", kd.samplers.DDPMSampler)
    monkeypatch.setitem(kd.samplers._REGISTRY.names, "toyeta", kd.samplers.DDIMSampler)
    assert kd.samplers.names() == (
        "ddim",
        "ddpm",
        "dpm_solver",
        "euler",
        "heun",
        "toy",
        "toyeta",
    )
    assert sampler_choices() == {
        "DDIM": True,
        "DDPM": False,
        "DPM_SOLVER": False,
        "EULER": False,
        "HEUN": False,
        "TOY": False,
        "TOYETA": True,
    }
    assert generate(sampler="Toy", eta=math.nan)["sampler"] == {"name": "toy"}
    assert generate(sampler="TOYETA", eta=1)["sampler"] == {
        "name": "toyeta",
        "eta": 1.0,
    }
    with pytest.raises(
        ValueError,
        match=r"^Sampler must be 'DDIM', 'DDPM', 'DPM_SOLVER', 'EULER', 'HEUN', 'TOY' "
        r"or 'TOYETA', got 'x'\.$",
    ):
        generate(sampler="x")


def inpaint(**overrides):
    values = dict(
        sampler="DDPM", steps=20, jump_length=5, jump_n_sample=3, num_images=2, seed=1
    )
    values.update(overrides)
    return LIMITS.check_inpaint(**values)


def test_inpainting_request_is_normalised_to_plain_values():
    assert inpaint(sampler="ddim", steps="20", eta=0.25) == {
        "sampler": {"name": "ddim", "eta": 0.25},
        "steps": 20,
        "jump_length": 5,
        "jump_n_sample": 3,
        "num_images": 2,
        "seed": 1,
    }


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("sampler", "DPM_SOLVER", r"Sampler must be 'DDIM', 'DDPM' or 'EULER'"),
        ("steps", 41, r"Steps must be a whole number in \[1, 40\]"),
        ("jump_length", 21, r"Jump length must be a whole number in \[1, 20\], got 21"),
        ("jump_length", 0, r"Jump length must be"),
        ("jump_n_sample", 11, r"Resampling must be a whole number in \[1, 10\]"),
        ("num_images", 5, r"Number of fillings must be a whole number in \[1, 4\]"),
        ("seed", -1, r"Seed must be"),
    ],
)
def test_inpainting_request_out_of_bounds(field, value, message):
    with pytest.raises(ValueError, match=message):
        inpaint(**{field: value})


def test_inpainting_offers_only_the_linear_step_rule():
    assert set(sampler_choices(linear_only=True)) == {"DDIM", "DDPM", "EULER"}
    assert DemoLimits(100, max_images=2).max_fillings == 2


def test_class_and_guidance_of_a_conditional_request():
    from keras_ddpm.demo.limits import ANY_CLASS, check_class, class_choices

    net = kd.models.build_unet(
        8, widths=(8,), block_depth=1, attention_levels=(), num_classes=2
    )
    named = kd.DiffusionModel(net, num_classes=2, class_names=["tulip", "rose"])
    choices = class_choices(named)
    assert choices == [ANY_CLASS, "tulip", "rose"]
    assert class_choices(kd.DiffusionModel(net, num_classes=2))[1:] == [
        "class 0",
        "class 1",
    ]
    assert check_class("rose", 2.5, choices) == {"labels": 1, "guidance_scale": 2.5}
    assert check_class(ANY_CLASS, 1, choices) == {
        "labels": None,
        "guidance_scale": 1.0,
    }
    for choice, guidance, message in [
        ("daisy", 1.0, "Class must be one of the 3 offered, got 'daisy'."),
        (1, 1.0, "Class must be one of the 3 offered, got 1."),
        ("rose", 10.5, r"Guidance scale must be a number in \[0, 10\], got 10.5."),
        ("rose", math.nan, "Guidance scale must be a number in"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_class(choice, guidance, choices)
