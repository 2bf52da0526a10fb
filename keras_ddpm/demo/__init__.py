"""A web demo of a trained model: generate, reconstruct and inpaint images in the browser.

Importing this package needs no web framework; `build_demo` imports Gradio
when called (`pip install "keras-ddpm[demo]"`).
"""

from keras_ddpm.demo.app import build_demo, launch_demo
from keras_ddpm.demo.generation import (
    display_scale,
    fit_image,
    generate_progressively,
    inpaint_picture,
    model_summary,
    painted_mask,
    reconstruct_picture,
    save_animation,
)
from keras_ddpm.demo.limits import DemoLimits, check_class, class_choices
from keras_ddpm.demo.uploads import read_upload

__all__ = [
    "DemoLimits",
    "build_demo",
    "check_class",
    "class_choices",
    "display_scale",
    "fit_image",
    "generate_progressively",
    "inpaint_picture",
    "launch_demo",
    "model_summary",
    "painted_mask",
    "read_upload",
    "reconstruct_picture",
    "save_animation",
]
