import os
import warnings

import numpy as np
import pytest
from PIL import Image

import keras_ddpm as kd


def batches(dataset):
    return [np.asarray(batch) for batch in dataset]


def test_synthetic_flowers_are_deterministic_and_resolution_free():
    a = kd.datasets.synthetic_flowers(6, image_size=32, seed=1)
    assert a.shape == (6, 32, 32, 3) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(
        a, kd.datasets.synthetic_flowers(6, image_size=32, seed=1)
    )
    assert not np.allclose(a, kd.datasets.synthetic_flowers(6, image_size=32, seed=2))
    large = kd.datasets.synthetic_flowers(6, image_size=64, seed=1)
    downsampled = large.reshape(6, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    assert (
        np.abs(downsampled - a).mean() < 0.03
    )  # the same flowers at another resolution
    assert np.std(a.reshape(6, -1), axis=1).min() > 0.05  # never a blank image


def test_load_synthetic_split_shapes_and_range():
    train = batches(
        kd.datasets.load(
            "synthetic_flowers", image_size=16, batch_size=4, num_images=20
        )
    )
    validation = batches(
        kd.datasets.load(
            "synthetic_flowers",
            image_size=16,
            batch_size=4,
            num_images=20,
            split="validation",
        )
    )
    assert [b.shape for b in train] == [(4, 16, 16, 3)] * 4
    assert sum(len(b) for b in validation) == 4
    for batch in train + validation:
        assert batch.dtype == np.float32 and batch.min() >= -1 and batch.max() <= 1
    everything = np.concatenate(
        batches(
            kd.datasets.load(
                "synthetic_flowers",
                image_size=16,
                batch_size=20,
                num_images=20,
                split="all",
                augment=False,
                shuffle=False,
            )
        )
    )
    expected = kd.datasets.synthetic_flowers(20, 16, seed=0) * 2 - 1
    np.testing.assert_allclose(everything, expected, atol=1 / 127.5 + 1e-6)


@pytest.mark.parametrize(
    "source, kwargs",
    [
        ("synthetic_flowers", {}),
        ("synthetic_flowers", {"split": "validation", "labels": True}),
        (np.zeros((8, 16, 16, 3), "uint8"), {"split": "all"}),
    ],
)
def test_load_turns_tf_data_autotuning_off(source, kwargs):
    # Its tuning thread makes iterator teardown (every epoch of `fit`) wait.
    dataset = kd.datasets.load(
        source, image_size=16, batch_size=4, num_images=8, **kwargs
    )
    assert dataset.options().autotune.enabled is False
    assert sum(1 for _ in dataset) >= 1  # still a working pipeline
    if kwargs.get("labels"):
        assert dataset.num_classes == 6 and len(dataset.class_names) == 6


def nearest_colour(hue):
    """The index of the nearest of the hues k/6 around the colour wheel."""
    centres = np.arange(6) / 6
    gap = np.abs(np.mod(np.asarray(hue)[..., None], 1.0) - centres)
    return np.argmin(np.minimum(gap, 1 - gap), axis=-1)


def test_flower_colour_is_the_nearest_of_six_hues():
    hues = np.array([0.0, 0.08, 0.09, 1 / 6, 0.3, 0.5, 0.6, 0.75, 0.95, 0.999, -0.1])
    expected = [0, 0, 1, 1, 2, 3, 4, 5, 0, 0, 5]
    np.testing.assert_array_equal(kd.datasets.flower_colour(hues), expected)
    grid = np.random.default_rng(0).uniform(0, 1, 10_000)
    np.testing.assert_array_equal(kd.datasets.flower_colour(grid), nearest_colour(grid))
    assert kd.datasets.FLOWER_COLOURS[int(kd.datasets.flower_colour(2 / 3))] == "blue"
    with pytest.raises(ValueError, match="Hues must be finite"):
        kd.datasets.flower_colour([0.1, np.nan])


def test_synthetic_labels_are_the_petal_colour_families():
    options = dict(image_size=8, num_images=30, augment=False, shuffle=False)
    pairs = kd.datasets.load(
        "synthetic_flowers", batch_size=30, split="all", labels=True, **options
    )
    assert pairs.class_names == kd.datasets.FLOWER_COLOURS and pairs.num_classes == 6
    ((images, labels),) = [tuple(np.asarray(x) for x in b) for b in pairs]
    flowers, attributes = kd.datasets.synthetic_flowers(
        30, 8, seed=0, return_attributes=True
    )
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, nearest_colour(attributes["hue"]))
    np.testing.assert_allclose(images, flowers * 2 - 1, atol=1 / 127.5 + 1e-6)
    # A split keeps each image with its own label.
    validation = kd.datasets.load(
        "synthetic_flowers", batch_size=30, split="validation", labels=True, **options
    )
    ((_, held_out),) = [tuple(np.asarray(x) for x in b) for b in validation]
    np.testing.assert_array_equal(held_out, labels[24:])
    # Trained with flips, the labels still follow their images.
    flipped = kd.datasets.load(
        "synthetic_flowers",
        batch_size=6,
        split="train",
        labels=True,
        image_size=8,
        num_images=30,
        shuffle=False,
    )
    for k, (x, y) in enumerate(flipped):
        np.testing.assert_array_equal(np.asarray(y), labels[6 * k : 6 * k + 6])
        for got, image in zip(np.asarray(x), images[6 * k : 6 * k + 6]):
            assert np.array_equal(got, image) or np.array_equal(got, image[:, ::-1])


def test_arrays_and_preprocessing_crop_centrally():
    image = np.zeros((1, 20, 40, 3), np.uint8)
    image[:, :, 10:30] = 255  # the central 20×20 square is white
    (out,) = batches(
        kd.datasets.load(image, image_size=8, batch_size=1, split="all", augment=False)
    )
    np.testing.assert_allclose(out, 1.0, atol=1e-6)
    floats = np.full((4, 8, 8, 1), 0.5, np.float32)
    (gray,) = batches(
        kd.datasets.load(floats, image_size=4, batch_size=4, split="all", channels=1)
    )
    assert gray.shape == (4, 4, 4, 1)
    np.testing.assert_allclose(
        gray, 0.5 * 255 // 1 / 127.5 - 1 + 1 / 127.5, atol=2 / 127.5
    )
    with pytest.raises(
        ValueError, match=r"float image array must hold finite values in \[0, 1\]"
    ):
        kd.datasets.load(np.full((2, 4, 4, 3), 2.0), image_size=4)
    with pytest.raises(ValueError, match="must be uint8"):
        kd.datasets.load(np.zeros((2, 4, 4, 3), np.int32), image_size=4)


def write_images(folder):
    rng = np.random.default_rng(0)
    (folder / "a" / "b").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (30, 20, 3), dtype=np.uint8)).save(
        folder / "one.png"
    )
    Image.fromarray(rng.integers(0, 255, (16, 40, 3), dtype=np.uint8)).save(
        folder / "a" / "two.jpg"
    )
    Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(
        folder / "a" / "b" / "gray.png"
    )
    Image.fromarray(rng.integers(0, 255, (12, 12, 4), dtype=np.uint8)).save(
        folder / "a" / "b" / "rgba.png"
    )
    (folder / "broken.png").write_bytes(b"not an image at all")
    (folder / "notes.txt").write_text("ignored")


def test_folder_of_images_skips_corrupt_files(tmp_path):
    write_images(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = kd.datasets.load(tmp_path, image_size=8, batch_size=2, split="all")
    assert any("broken.png" in str(w.message) for w in caught)
    images = np.concatenate(batches(dataset))
    assert images.shape == (4, 8, 8, 3)
    gray = np.concatenate(
        batches(
            kd.datasets.load(
                tmp_path, image_size=8, batch_size=1, split="all", channels=1
            )
        )
    )
    assert gray.shape == (4, 8, 8, 1)
    train = np.concatenate(
        batches(
            kd.datasets.load(
                tmp_path, image_size=8, batch_size=1, validation_fraction=0.25
            )
        )
    )
    validation = np.concatenate(
        batches(
            kd.datasets.load(
                tmp_path,
                image_size=8,
                batch_size=1,
                split="validation",
                validation_fraction=0.25,
            )
        )
    )
    assert len(train) == 3 and len(validation) == 1


def test_folder_classes_are_its_sorted_sub_folders(tmp_path):
    # Each class's images have their own grey level, so labels can be read back.
    levels = {"tulip": 200, "daisy": 40, "rose": 120}
    for name, level in levels.items():
        (tmp_path / name / "more").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((10, 10, 3), level, np.uint8)).save(
                tmp_path / name / ("more" if i == 2 else "") / f"{i}.png"
            )
    names = ("daisy", "rose", "tulip")
    seen = {}
    for split in ("train", "validation"):
        dataset = kd.datasets.load(
            tmp_path,
            image_size=4,
            batch_size=1,
            split=split,
            labels=True,
            validation_fraction=1 / 3,
        )
        assert dataset.class_names == names and dataset.num_classes == 3
        for images, labels in dataset:
            level = round((float(np.asarray(images).mean()) + 1) * 127.5)
            seen.setdefault(split, []).append(int(np.asarray(labels)[0]))
            assert levels[names[int(np.asarray(labels)[0])]] == level
    assert len(seen["train"]) == 6 and len(seen["validation"]) == 3
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "loose.png")
    with pytest.raises(ValueError, match="1 images lie in the folder itself"):
        kd.datasets.load(tmp_path, image_size=4, labels=True)
    assert kd.datasets.load(tmp_path, image_size=4, split="all", batch_size=10)


def test_labels_errors():
    with pytest.raises(
        ValueError, match=r"pass its labels to model.fit\(images, labels\)"
    ):
        kd.datasets.load(np.zeros((4, 4, 4, 3), np.uint8), image_size=4, labels=True)
    with pytest.raises(ValueError, match="`labels` must be True or False"):
        kd.datasets.load("synthetic_flowers", image_size=4, num_images=4, labels=1)


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="No images"):
        kd.datasets.load(tmp_path, image_size=8)
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="None of the 1 image files"):
            kd.datasets.load(tmp_path, image_size=8)
    with pytest.raises(ValueError, match="is not a folder of images"):
        kd.datasets.load(os.path.join(str(tmp_path), "missing", "folder"), image_size=8)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"split": "test"}, "`split` must be one of"),
        ({"validation_fraction": 1.0}, r"`validation_fraction` must lie in \[0, 1\)"),
        ({"batch_size": 0}, "`batch_size` must be a positive int"),
        ({"channels": 4}, "`channels` must be 1"),
        ({"image_size": (8,)}, "`image_size` must be"),
        ({"num_images": 0}, "`num_images` must be"),
        ({"num_images": 2.0}, "`num_images` must be a positive int or None, got 2.0"),
        ({"batch_size": True}, "`batch_size` must be a positive int, got True"),
        ({"validation_fraction": float("nan")}, "`validation_fraction` must be finite"),
        ({"image_size": (8, 0)}, r"`image_size\[1\]` must be a positive int, got 0"),
        ({"channels": True}, "`channels` must be 1"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kd.datasets.load(
            "synthetic_flowers", **{"image_size": 8, "num_images": 8, **kwargs}
        )


def test_unknown_name_and_missing_download(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset 'no_such_dataset_xyz'"):
        kd.datasets.load("no_such_dataset_xyz", image_size=8)
    with pytest.raises(
        ValueError, match="Could not prepare TFDS dataset 'oxford_flowers102'.*data_dir"
    ):
        kd.datasets.load(
            "oxford_flowers102", image_size=8, data_dir=str(tmp_path), download=False
        )


def test_a_module_tfds_lacks_is_named(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    real = tfds.builder

    def builder(name, **kwargs):
        built = real(name, **kwargs)

        def download_and_prepare():
            raise ModuleNotFoundError(
                "No module named 'some_module'", name="some_module"
            )

        built.download_and_prepare = download_and_prepare
        return built

    monkeypatch.setattr(tfds, "builder", builder)
    with pytest.raises(ImportError) as raised:
        kd.datasets.load("oxford_flowers102", image_size=8, data_dir=str(tmp_path))
    assert str(raised.value) == (
        "Could not prepare TFDS dataset 'oxford_flowers102': tensorflow-datasets "
        "could not import some_module: pip install -U some_module."
    )


# The class-label features: Oxford Flowers 102's species, the pets' breeds.
CLASSES = {"oxford_flowers102": 102, "oxford_iiit_pet": 37}


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_tfds_datasets_with_mock_data(name):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=10):
        train = np.concatenate(
            batches(kd.datasets.load(name, image_size=16, batch_size=2))
        )
        validation = np.concatenate(
            batches(
                kd.datasets.load(name, image_size=16, batch_size=2, split="validation")
            )
        )
    assert train.shape[1:] == (16, 16, 3) and validation.shape[1:] == (16, 16, 3)
    assert train.min() >= -1 and train.max() <= 1
    with tfds.testing.mock_data(num_examples=10):
        pairs = kd.datasets.load(name, image_size=16, batch_size=2, labels=True)
        labels = np.concatenate([np.asarray(y) for _, y in pairs])
    assert pairs.num_classes == CLASSES[name] == len(pairs.class_names)
    assert labels.dtype == np.int32 and len(labels) == len(train)
    assert labels.min() >= 0 and labels.max() < CLASSES[name]


def test_tfds_split_pools_every_official_split():
    from keras_ddpm.datasets.loader import tfds_split

    splits = ("train", "validation", "test")
    assert tfds_split(splits, "train", 0.2) == "test[:80%]+train[:80%]+validation[:80%]"
    assert (
        tfds_split(splits, "validation", 0.2)
        == "test[80%:]+train[80%:]+validation[80%:]"
    )
    assert tfds_split(("train",), "all", 0.2) == "train"


def test_dataset_trains_a_model_on_this_backend():
    dataset = kd.datasets.load(
        "synthetic_flowers", image_size=8, batch_size=4, num_images=10
    )
    model = kd.DiffusionModel(
        kd.models.build_unet(
            8, widths=(8,), block_depth=1, groups=4, attention_levels=()
        )
    )
    model.compile(optimizer="adam")
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    import tensorflow as tf

    uint8 = kd.datasets.load(
        "synthetic_flowers", image_size=8, batch_size=4, num_images=10
    ).map(lambda x: tf.cast(x, tf.uint8))
    with pytest.raises(ValueError, match="got dtype uint8"):
        model.fit(uint8, epochs=1, verbose=0)
