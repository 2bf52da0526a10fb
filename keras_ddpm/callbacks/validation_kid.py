import keras

from keras_ddpm.metrics import KernelInceptionDistance
from keras_ddpm.utils import check_int


class ValidationKID(keras.callbacks.Callback):
    """Score samples against the validation images every few epochs, as `val_kid`.

    At the end of every `every_n_epochs`-th epoch the model generates images
    with a fast sampler (DDIM, few steps, EMA weights, always the same seed so
    successive scores compare the model, not the noise), and the metric
    compares them with the validation images, whose features are extracted
    once, at the first evaluation. The score goes into the epoch's logs under
    `name` (and its spread over KID subsets under `name + "_std"`), so it shows
    in the progress bar and in `fit`'s history, and other callbacks can use it:
    `keras.callbacks.ModelCheckpoint(path, monitor="val_kid", mode="min",
    save_best_only=True)` keeps the model with the best KID.

    Keras calls callbacks in the order of the list and hands them one logs
    dict, so list `ValidationKID` **before** the callbacks that read
    `val_kid` (ModelCheckpoint, EarlyStopping, ...). On epochs without an
    evaluation `val_kid` is absent from the logs; those callbacks then skip
    the epoch (ModelCheckpoint warns once).

    Args:
        validation_data: the validation images: an array `(N, H, W, C)` in
            [-1, 1], a `tf.data.Dataset` or an iterable of batches (or of
            `(images, labels)`). Only the first `num_images` are used.
        metric: a `KernelInceptionDistance` (or `FrechetInceptionDistance`, or
            any `kd.metrics` feature distance). Defaults to
            `KernelInceptionDistance()` (InceptionV3 at 75×75, ImageNet weights).
        every_n_epochs: int, epochs between evaluations. Defaults to 1.
        num_images: int, validation images used and images generated.
            Defaults to 500.
        sampler: sampler name, config or instance. Defaults to `"ddim"`.
        steps: int, sampling steps. Defaults to 20.
        seed: int, seed of the generated images' noise. Defaults to 0.
        batch_size: int or None, images per sampling call.
        name: str, the logs key. Defaults to `"val_kid"`.

    Raises:
        ValueError: for a non-positive `every_n_epochs`, `num_images` below 2,
            or a `metric` that is not a `kd.metrics` feature distance.

    Example:

    ```python
    import keras
    import numpy as np
    import keras_ddpm as kd

    val_images = np.random.uniform(-1, 1, (200, 16, 16, 3)).astype("float32")
    encoder = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3), keras.layers.GlobalAveragePooling2D()]
    )
    kid = kd.metrics.KernelInceptionDistance(feature_extractor=encoder, subset_size=100)
    callbacks = [
        kd.callbacks.ValidationKID(val_images, metric=kid, every_n_epochs=5, num_images=200),
        keras.callbacks.ModelCheckpoint("best_kid.keras", monitor="val_kid", mode="min", save_best_only=True),
    ]
    # model.fit(train_images, epochs=50, callbacks=callbacks)
    ```

    References:
        - [Bińkowski et al., 2018. Demystifying MMD GANs](https://arxiv.org/abs/1801.01401)
    """

    def __init__(
        self,
        validation_data,
        metric=None,
        every_n_epochs=1,
        num_images=500,
        sampler="ddim",
        steps=20,
        seed=0,
        batch_size=None,
        name="val_kid",
    ):
        super().__init__()
        every_n_epochs = check_int("every_n_epochs", every_n_epochs, low=1)
        num_images = check_int("num_images", num_images, low=2)
        self.validation_data = validation_data
        self.metric = KernelInceptionDistance() if metric is None else metric
        if not hasattr(self.metric, "set_reference"):
            raise ValueError(
                "`metric` must be a kd.metrics KernelInceptionDistance or "
                f"FrechetInceptionDistance, got {type(self.metric).__name__}."
            )
        self.every_n_epochs = every_n_epochs
        self.num_images = num_images
        self.sampler, self.steps, self.seed = sampler, steps, seed
        self.batch_size = batch_size
        self.name = name
        self.history = []  # (epoch, value) pairs

    def _reference(self):
        if self.metric.reference is None:
            self.metric.set_reference(
                self.metric.extractor.statistics(
                    self.validation_data,
                    max_images=self.num_images,
                    keep_features=self.metric.keep_features,
                )
            )
        return self.metric.reference

    def evaluate(self):
        """Generate images, score them against the validation images.

        Returns:
            `(value, std)`: the score and its spread over subsets (std is None
            for FID).
        """
        reference = self._reference()
        images = self.model.generate(
            min(self.num_images, reference.count),
            sampler=self.sampler,
            steps=self.steps,
            seed=self.seed,
            batch_size=self.batch_size,
        )
        self.metric.reset_state()
        self.metric.update_state(generated=images)
        if hasattr(self.metric, "result_and_std"):
            return self.metric.result_and_std()
        return self.metric.result(), None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        value, std = self.evaluate()
        self.history.append((epoch, value))
        if logs is not None:
            logs[self.name] = value
            if std is not None:
                logs[self.name + "_std"] = std
