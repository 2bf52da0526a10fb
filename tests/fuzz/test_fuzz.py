"""Property-based bad-input tests over the public API.

Every drawn case either works (and gives finite output of the promised shape)
or raises a documented exception whose message is one line. Examples are few
and models tiny, so the suite runs in seconds on every backend.
"""

import io
import math
import zipfile

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_ddpm as kd
from keras_ddpm.cli import main

FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5000),
    st.sampled_from([None, "x", True, [1]]),
)


def cases(valid, fuzzy):
    """Half the cases valid in every argument, half with each argument fuzzed."""
    return st.one_of(st.fixed_dictionaries(valid), st.fixed_dictionaries(fuzzy))


def assert_clear(error):
    message = str(error)
    assert message and "\n" not in message.strip(), repr(message)


def works_or_clear(function, errors=(ValueError, TypeError)):
    try:
        return function(), None
    except errors as error:
        assert_clear(error)
        return None, error


def assert_table(schedule):
    assert schedule.betas.dtype == np.float64
    assert np.all(np.isfinite(schedule.betas)) and np.all(schedule.betas > 0)
    assert np.all(schedule.betas < 1)
    assert np.all(np.diff(schedule.alphas_cumprod) < 0)


@FUZZ
@given(
    name=st.sampled_from(["linear", "cosine", "sigmoid"]),
    case=cases(
        {
            "timesteps": st.integers(2, 300),
            "a": st.floats(1e-4, 0.01),
            "b": st.floats(0.02, 0.5),
        },
        {"timesteps": numbers, "a": numbers, "b": numbers},
    ),
)
def test_schedules(name, case):
    timesteps, a, b = case["timesteps"], case["a"], case["b"]
    keys = {
        "linear": ("beta_start", "beta_end"),
        "cosine": ("s", "max_beta"),
        "sigmoid": ("start", "end"),
    }[name]
    config = {"name": name, "timesteps": timesteps, keys[0]: a, keys[1]: b}
    schedule, _ = works_or_clear(lambda: kd.schedules.get(config))
    if schedule is not None:
        assert len(schedule.betas) == schedule.timesteps
        assert_table(schedule)


@FUZZ
@given(
    timesteps=st.integers(2, 300),
    steps=st.one_of(st.integers(1, 300), numbers),
    spacing=st.sampled_from(["leading", "trailing", "linspace", "bogus"]),
    eta=numbers,
)
def test_sampler_timesteps(timesteps, steps, spacing, eta):
    schedule = kd.schedules.LinearSchedule(timesteps)
    sampler, _ = works_or_clear(lambda: kd.samplers.DDIMSampler(eta=eta))
    visited, _ = works_or_clear(
        lambda: kd.samplers.spaced_timesteps(timesteps, steps, spacing)
    )
    if visited is not None:
        assert len(visited) == steps and len(set(visited)) == steps
        assert np.all(np.diff(visited) < 0) and 0 <= visited.min()
        assert visited.max() < timesteps
    if sampler is not None:
        again, _ = works_or_clear(lambda: sampler.timesteps(schedule, steps))
        if again is not None:
            assert np.all(np.diff(again) < 0)


@pytest.fixture(scope="module")
def model():
    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1)
    model = kd.DiffusionModel(
        net, schedule={"name": "linear", "timesteps": 20}, ema_momentum=0.9, seed=0
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def image_arrays(valid=False):
    shapes = st.sampled_from(
        [(2, 8, 8, 3)]
        if valid
        else [(2, 8, 8, 1), (2, 4, 8, 3), (8, 8, 3), (2, 8, 8, 3, 1), (0, 8, 8, 3)]
    )
    dtypes = st.sampled_from(
        ["float32", "float16", "float64"] + ([] if valid else ["uint8", "int32"])
    )
    fill = st.sampled_from(["uniform"] if valid else ["uniform", "nan", "inf", "large"])

    @st.composite
    def build(draw):
        shape, dtype, kind = draw(shapes), draw(dtypes), draw(fill)
        array = np.random.default_rng(0).uniform(-1, 1, shape)
        if kind == "large":
            array = array * 1e6
        elif kind != "uniform" and array.size:
            array.flat[0] = np.nan if kind == "nan" else np.inf
        with np.errstate(invalid="ignore", over="ignore"):
            return array.astype(dtype)

    return build()


@FUZZ
@given(
    case=cases(
        {"images": image_arrays(valid=True), "t": st.integers(0, 19)},
        {"images": image_arrays(), "t": numbers},
    )
)
def test_reconstruct_inputs(model, case):
    images, t = case["images"], case["t"]
    result, _ = works_or_clear(
        lambda: model.reconstruct(images, t, sampler="ddim", steps=2, seed=0)
    )
    if result is not None:
        assert result.shape == images.shape and result.dtype == np.float32
        assert np.isfinite(result).all()


@FUZZ
@given(
    case=cases(
        {
            "num": st.integers(1, 3),
            "steps": st.integers(1, 4),
            "seed": st.integers(0, 2**40),
            "noise": st.none(),
        },
        {
            "num": numbers,
            "steps": numbers,
            "seed": numbers,
            "noise": st.sampled_from([None, "nan", "inf", "shape"]),
        },
    )
)
def test_generate_inputs(model, case):
    num, steps, seed, noise = case["num"], case["steps"], case["seed"], case["noise"]
    initial = None
    if noise is not None:
        initial = np.zeros((2, 8, 8, 3) if noise != "shape" else (2, 4, 4, 3))
        initial[0, 0, 0, 0] = {"nan": np.nan, "inf": -np.inf}.get(noise, 0.0)
        num = 2
    result, _ = works_or_clear(
        lambda: model.generate(
            num, sampler="ddim", steps=steps, seed=seed, initial_noise=initial
        )
    )
    if result is not None:
        assert result.shape == (num, 8, 8, 3) and result.dtype == np.float32
        assert np.isfinite(result).all()


@pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="the up-front checks are Python: fuzzed once, under PyTorch, whose "
    "tiny steps need no tracing",
)
@FUZZ
@given(images=st.one_of(image_arrays(valid=True), image_arrays()))
def test_fit_inputs_are_checked_before_training(model, images):
    # Only the up-front check runs for bad input; a good batch trains a step.
    _, error = works_or_clear(
        lambda: model.fit(images, batch_size=2, epochs=1, verbose=0)
    )
    good = (
        images.shape[1:] == (8, 8, 3)
        and len(images)
        and np.issubdtype(images.dtype, np.floating)
        and np.isfinite(images).all()
    )
    if good:
        assert error is None
        assert all(
            np.isfinite(keras.ops.convert_to_numpy(v)).all() for v in model.weights
        )
    else:
        assert error is not None


@pytest.fixture(scope="module")
def saved_model(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "model.keras"
    model.save(path)
    return path.read_bytes()


def damaged(data, kind, where, byte):
    where = where % max(len(data), 1)
    if kind == "truncate":
        return data[:where]
    if kind == "flip":
        return data[:where] + bytes([data[where] ^ (byte or 1)]) + data[where + 1 :]
    if kind == "junk":
        return bytes([byte]) * where
    # A well-formed zip whose config is not JSON (or is, but names nothing).
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", data[:where].decode("latin-1")[:50] or "{}")
        archive.writestr("metadata.json", "{}")
    return buffer.getvalue()


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kind=st.sampled_from(["truncate", "flip", "junk", "zip"]),
    where=st.integers(0, 10**7),
    byte=st.integers(0, 255),
)
def test_damaged_model_files(saved_model, tmp_path_factory, capsys, kind, where, byte):
    path = tmp_path_factory.mktemp("damaged") / "model.keras"
    path.write_bytes(damaged(saved_model, kind, where, byte))
    capsys.readouterr()
    status = main(
        [
            "sample",
            "--model",
            str(path),
            "--num",
            "1",
            "--steps",
            "1",
            "--grid",
            str(path.with_suffix(".png")),
        ]
    )
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    if status == 0:  # the damage missed everything that is read
        assert not lines or all("Warning" in x or "warn" in x for x in lines)
        assert path.with_suffix(".png").is_file()
    else:
        assert status == 2 and len(lines) == 1, lines
        assert lines[0].startswith("keras-ddpm sample: error: could not load model")


@FUZZ
@given(
    case=cases(
        {
            "image_size": st.integers(1, 9),
            "batch_size": st.integers(1, 4),
            "split": st.sampled_from(["train", "validation", "all"]),
            "fraction": st.floats(0.2, 0.5),
        },
        {
            "image_size": numbers,
            "batch_size": numbers,
            "split": st.sampled_from(["train", "validation", "all", "test", 3]),
            "fraction": numbers,
        },
    )
)
def test_loader_arguments(case):
    image_size, batch_size = case["image_size"], case["batch_size"]
    split, fraction = case["split"], case["fraction"]
    array = np.random.default_rng(0).integers(0, 255, (6, 5, 7, 3), dtype=np.uint8)
    dataset, _ = works_or_clear(
        lambda: kd.datasets.load(
            array,
            image_size=image_size,
            batch_size=batch_size,
            split=split,
            validation_fraction=fraction,
        )
    )
    if dataset is not None:
        spec = dataset.element_spec
        assert spec.shape[1:3] == (image_size, image_size)
        for batch in dataset.take(1):
            batch = np.asarray(batch)
            assert np.isfinite(batch).all() and -1 <= batch.min() <= batch.max() <= 1


@settings(max_examples=8, deadline=None, derandomize=True)
@given(content=st.binary(max_size=64), suffix=st.sampled_from([".png", ".jpg"]))
def test_loader_skips_or_refuses_junk_files(tmp_path_factory, content, suffix):
    folder = tmp_path_factory.mktemp("images")
    (folder / f"junk{suffix}").write_bytes(content)
    good = np.full((6, 6, 3), 128, np.uint8)
    from PIL import Image

    Image.fromarray(good).save(folder / "good.png")
    dataset, _ = works_or_clear(
        lambda: kd.datasets.load(
            str(folder), image_size=4, batch_size=1, split="all", shuffle=False
        )
    )
    assert dataset is not None
    batches = [np.asarray(b) for b in dataset]
    assert len(batches) >= 1
    assert all(np.isfinite(b).all() for b in batches)
    assert math.isclose(float(batches[0].mean()), 128 / 127.5 - 1, abs_tol=0.02)
