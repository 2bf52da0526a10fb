"""A hosted web demo (e.g. a Hugging Face Space) of a keras-ddpm model.

Put the `model.keras` written by `keras-ddpm train` next to this file, with
requirements.txt, and the host runs `python app.py`. The page is the one
`keras-ddpm serve` gives locally.
"""

import os

# Before Keras is imported; JAX runs the sampling loop as one compiled program on CPUs.
os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402

import keras_ddpm  # noqa: E402, F401  (registers the classes the model file names)
from keras_ddpm.demo import build_demo, launch_demo  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.environ.get("KERAS_DDPM_MODEL", os.path.join(HERE, "model.keras"))

model = keras.saving.load_model(MODEL)
demo = build_demo(
    model,
    max_images=int(os.environ.get("KERAS_DDPM_MAX_IMAGES", 16)),
    max_steps=int(os.environ.get("KERAS_DDPM_MAX_STEPS", 100)),
    title="keras-ddpm flowers",
    model_name=os.path.basename(MODEL),
)

if __name__ == "__main__":
    # A hosted container must listen on every interface; the host names the
    # address and port in GRADIO_SERVER_NAME / GRADIO_SERVER_PORT.
    launch_demo(
        demo,
        host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        port=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
    )
