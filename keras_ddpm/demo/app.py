"""The web demo: a Gradio app around a trained `DiffusionModel`."""

import os
import shutil
import tempfile

import numpy as np

from keras_ddpm.demo.generation import (
    generate_progressively,
    inpaint_picture,
    model_summary,
    painted_mask,
    reconstruct_picture,
    save_animation,
)
from keras_ddpm.demo.limits import (
    MAX_GUIDANCE,
    MAX_JUMP_N_SAMPLE,
    DemoLimits,
    check_class,
    class_choices,
    sampler_choices,
)
from keras_ddpm.demo.uploads import read_upload
from keras_ddpm.models import autoguidance
from keras_ddpm.models.guidance_interval import check_interval
from keras_ddpm.training.recipe import GUIDANCE_SCALE
from keras_ddpm.utils import check_int

CSS = """
.pixelated img { image-rendering: pixelated; }
"""
# Every event that runs the model shares one queue slot: a model is not meant to
# be called from two threads at once, and the queue makes other users wait their
# turn instead of failing.
MODEL_QUEUE = "model"


def _gradio():
    try:
        import gradio
    except ImportError:
        raise ImportError(
            'The web demo needs Gradio: pip install "keras-ddpm[demo]"'
        ) from None
    return gradio


def _summary_markdown(summary):
    return " · ".join(
        f"**{key[0].upper() + key[1:]}:** {value}" for key, value in summary.items()
    )


def _whole_slider(gr, low, high, value, label, elem_id):
    """A slider of whole numbers in [low, high] starting at `value` (capped at `high`)."""
    return gr.Slider(
        low, high, value=min(value, high), step=1, label=label, elem_id=elem_id
    )


def _sampling_controls(
    gr, max_steps, steps_label, eta_label, prefix, linear_only=False, default="DDIM"
):
    """Sampler, steps, η and seed inputs of one tab; η shows only for samplers with one.

    The samplers are those of `kd.samplers.names()` (only the linear step
    rule's with `linear_only`), `default` first chosen when there.
    Element ids are `prefix` + `sampler`, `steps`, `eta` and `seed`.
    """
    takes_eta = sampler_choices(linear_only)
    default = default if default in takes_eta else next(iter(takes_eta))
    sampler = gr.Radio(
        list(takes_eta), value=default, label="Sampler", elem_id=f"{prefix}sampler"
    )
    steps = _whole_slider(gr, 1, max_steps, 50, steps_label, f"{prefix}steps")
    eta = gr.Slider(
        0.0,
        1.0,
        value=0.0,
        step=0.05,
        label=eta_label,
        visible=takes_eta[default],
        elem_id=f"{prefix}eta",
    )
    seed = gr.Number(
        value=0,
        precision=0,
        minimum=0,
        maximum=2**31 - 1,
        label="Seed",
        elem_id=f"{prefix}seed",
    )

    def show_eta(name):
        return gr.update(visible=takes_eta.get(str(name).upper(), False))

    sampler.change(show_eta, sampler, eta, queue=False)
    return sampler, steps, eta, seed


def build_demo(
    model,
    *,
    max_images=16,
    max_steps=250,
    batch_size=4,
    max_queue=32,
    title="keras-ddpm",
    model_name=None,
    guide=None,
    guide_scale=None,
    guidance_interval=None,
):
    """Build the web demo of a diffusion model as a Gradio app (not yet launched).

    Three tabs. *Generate*: number of images, sampler (each of
    `kd.samplers.names()`: DDIM, DDPM, ...), steps, seed and η; the grid fills
    in batch by batch while a progress bar runs, a Stop button cancels between
    batches, and a GIF shows the denoising afterwards. For a class-conditional
    model it also has a class picker (its class names, or "Any" for
    unconditional samples) and a classifier-free guidance slider (0–10).
    *Reconstruct*: an uploaded picture is cropped and resized to the model's
    size, noised to a chosen step t and denoised back. *Inpaint*: an uploaded
    picture, with the region to fill painted over in an image editor, is
    filled in by `DiffusionModel.inpaint` (RePaint) with the linear-rule
    samplers, a jump length and resampling count. A panel lists the
    model's metadata. Requests wait in one queue (one model call at a time,
    at most `max_queue` waiting); every value is validated on the server
    against `max_images` and `max_steps`, and a bad one is answered with a
    message in the page. The server reads no file a request names, only
    images uploaded to it.

    Args:
        model: a `DiffusionModel`.
        max_images: int, most images per request. Defaults to 16.
        max_steps: int, most denoising steps per request (capped at the
            schedule's T). Defaults to 250.
        batch_size: int, images per compiled sampling call; the grid updates
            after each batch. Defaults to 4.
        max_queue: int, most requests waiting; more are turned away with a
            message. Defaults to 32.
        title: str, the page title. Defaults to `"keras-ddpm"`.
        model_name: str or None, shown in the metadata panel.
        guide: an unconditional model's guide (autoguidance, as in
            `DiffusionModel.generate`), e.g. the `guide.keras` of a
            `keras-ddpm train` run: the Generate tab then samples guided by
            it, as the run drew its final pictures. Defaults to None.
        guide_scale: float or None, the autoguidance scale, as in
            `DiffusionModel.generate` (None: 5.0). Defaults to None.
        guidance_interval: None or `(low, high)`, the timesteps at which
            the guide guides, as in `DiffusionModel.generate` (None: 0 to
            0.6 T). Defaults to None.

    Returns:
        A `gradio.Blocks`; start it with `launch_demo` (or its own `launch`).

    Raises:
        ImportError: if Gradio is not installed (`pip install "keras-ddpm[demo]"`).
        ValueError: for non-positive bounds, or a guide that does not match
            the model or is given for a class-conditional one, or a bad
            `guidance_interval` or one without a guide.

    Example:

    ```python
    import keras_ddpm as kd
    from keras_ddpm.demo import build_demo

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    demo = build_demo(model, max_images=4, max_steps=10)  # demo.launch() serves it
    ```
    """
    gr = _gradio()
    from gradio.utils import get_upload_folder

    limits = DemoLimits(model.schedule.timesteps, max_images, max_steps)
    if guide is not None and model.num_classes is not None:
        raise ValueError(
            "The demo guides unconditional models only; a class-conditional one "
            "has its classifier-free guidance slider."
        )
    guide_scale = autoguidance.check_guide(model, guide, guide_scale, None)
    guided = guide is not None
    guidance_interval = check_interval(
        guidance_interval, model.schedule.timesteps, guided, guide=guided
    )
    batch_size = check_int("batch_size", batch_size, low=1)
    max_queue = check_int("max_queue", max_queue, low=1)
    timesteps = model.schedule.timesteps
    image_mode = "L" if model.image_shape[-1] == 1 else "RGB"
    upload_folder = get_upload_folder()

    tracker = gr.Progress()  # Gradio sees it as the default and reports through it
    classes = class_choices(model)

    def generate(
        num_images,
        sampler,
        steps,
        seed,
        eta,
        label=None,
        guidance=1.0,
        progress=tracker,
    ):
        try:
            request = limits.check_generate(num_images, sampler, steps, seed, eta)
            if classes is not None:
                request.update(check_class(label, guidance, classes))
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from None
        total = request["num_images"]
        progress((0, total), desc="Denoising", unit="images")
        folder = tempfile.mkdtemp(prefix="keras-ddpm-demo-")
        path = os.path.join(folder, "denoise.gif")
        try:
            for done, grid, trajectory in generate_progressively(
                model,
                total,
                sampler=request["sampler"],
                steps=request["steps"],
                seed=request["seed"],
                batch_size=batch_size,
                labels=request.get("labels"),
                guidance_scale=request.get("guidance_scale", 1.0),
                guide=guide,
                guide_scale=guide_scale,
                guidance_interval=guidance_interval,
            ):
                progress((done, total), desc="Denoising", unit="images")
                status = f"{done} of {total} images · seed {request['seed']}"
                if guide is not None:
                    low, high = guidance_interval
                    status += (
                        f" · autoguidance {guide_scale:g} at timesteps {low:g}–{high:g}"
                    )
                if trajectory is None:
                    yield grid, gr.skip(), status
                else:
                    save_animation(trajectory, path, model.image_shape)
                    yield grid, path, status
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from None
        finally:
            # Gradio has copied the GIF into its own cache by now.
            shutil.rmtree(folder, ignore_errors=True)

    def reconstruct(upload, t, sampler, steps, seed, eta):
        # Runs without Gradio's preprocessing: the upload arrives as its payload
        # and is read here, from the upload folder only; numbers are checked here.
        try:
            image = read_upload(upload, upload_folder, image_mode)
            if image is None:
                raise ValueError("Upload an image first.")
            request = limits.check_reconstruct(t, sampler, steps, seed, eta)
            return reconstruct_picture(model, image, **request)
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from None

    def inpaint(edited, sampler, steps, jump_length, jump_n_sample, num, seed, eta):
        # Gradio's preprocessing reads the editor's files (uploads and strokes
        # only; it refuses other paths) into RGBA arrays.
        try:
            picture = None if edited is None else edited.get("background")
            if picture is None:
                raise ValueError("Upload an image first.")
            picture = np.asarray(picture)
            request = limits.check_inpaint(
                sampler, steps, jump_length, jump_n_sample, num, seed, eta
            )
            mask = painted_mask(edited.get("layers"), picture.shape[:2])
            if picture.ndim == 3 and picture.shape[-1] == 4:
                # Transparent pixels of the upload show as white, as in the editor.
                alpha = picture[..., 3:].astype(np.float32) / 255.0
                picture = (picture[..., :3] * alpha + 255.0 * (1.0 - alpha)).round()
                picture = picture.astype(np.uint8)
            return inpaint_picture(model, picture, mask, **request)
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from None

    with gr.Blocks(
        title=title, analytics_enabled=False, delete_cache=(3600, 3600)
    ) as demo:
        gr.Markdown(
            f"# {title}\nA denoising diffusion model made with keras-ddpm. "
            "Generate images from noise, noise a picture and let the model "
            "restore it, or paint over part of a picture and let it fill that in."
        )
        gr.Markdown(
            _summary_markdown(model_summary(model, model_name)),
            elem_id="model-info",
            container=True,
        )
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=260):
                        num_images = _whole_slider(
                            gr,
                            1,
                            limits.max_images,
                            8,
                            "Number of images",
                            "num-images",
                        )
                        sampler, steps, eta, seed = _sampling_controls(
                            gr,
                            limits.max_steps,
                            steps_label="Steps",
                            eta_label="η (DDIM: 0 deterministic, 1 as noisy as DDPM)",
                            prefix="",
                        )
                        class_inputs = []
                        if classes is not None:
                            class_inputs = [
                                gr.Dropdown(
                                    classes,
                                    value=classes[1],
                                    label="Class",
                                    elem_id="class",
                                ),
                                gr.Slider(
                                    0.0,
                                    MAX_GUIDANCE,
                                    value=GUIDANCE_SCALE,
                                    step=0.5,
                                    label="Guidance (1: plain conditional; "
                                    "higher: more typical of the class)",
                                    elem_id="guidance",
                                ),
                            ]
                        with gr.Row():
                            run = gr.Button(
                                "Generate",
                                variant="primary",
                                elem_id="generate",
                            )
                            stop = gr.Button("Stop", elem_id="stop")
                    with gr.Column(scale=3):
                        with gr.Row():
                            grid = gr.Image(
                                label="Samples",
                                format="png",
                                interactive=False,
                                elem_id="grid",
                                elem_classes="pixelated",
                            )
                            animation = gr.Image(
                                label="Denoising, from noise to image",
                                type="filepath",
                                interactive=False,
                                elem_id="animation",
                                elem_classes="pixelated",
                            )
                        status = gr.Markdown(elem_id="status")
            with gr.Tab("Reconstruct", id="reconstruct"):
                gr.Markdown(
                    "The picture is cropped and resized to "
                    f"{model.image_shape[0]}×{model.image_shape[1]}, noised "
                    "to step t, then denoised back. Small t keeps it; t near "
                    f"{timesteps - 1} forgets it."
                )
                with gr.Row():
                    with gr.Column(scale=1, min_width=260):
                        upload = gr.Image(
                            label="Image",
                            sources=["upload", "clipboard"],
                            elem_id="upload",
                        )
                        t = _whole_slider(
                            gr,
                            0,
                            timesteps - 1,
                            int(0.3 * timesteps),
                            "Noise to step t",
                            "t",
                        )
                        r_sampler, r_steps, r_eta, r_seed = _sampling_controls(
                            gr,
                            limits.max_steps,
                            steps_label="Steps (at most t + 1)",
                            eta_label="η",
                            prefix="r-",
                        )
                        r_run = gr.Button(
                            "Reconstruct",
                            variant="primary",
                            elem_id="run-reconstruct",
                        )
                    with gr.Column(scale=3):
                        strip = gr.Image(
                            label="Input · noised to t · reconstructed",
                            format="png",
                            interactive=False,
                            elem_id="reconstruction",
                            elem_classes="pixelated",
                        )

            with gr.Tab("Inpaint", id="inpaint"):
                gr.Markdown(
                    "Upload a picture and paint over what the model should fill "
                    "in; the rest is kept. The picture is cropped and resized to "
                    f"{model.image_shape[0]}×{model.image_shape[1]} (RePaint: after "
                    "every step the kept pixels are put back, noised to that "
                    "step; resampling walks each stretch again to blend them)."
                )
                with gr.Row():
                    with gr.Column(scale=1, min_width=260):
                        editor = gr.ImageEditor(
                            label="Image: paint the region to fill in",
                            type="numpy",
                            image_mode="RGBA",
                            sources=["upload", "clipboard"],
                            brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed"),
                            eraser=gr.Eraser(),
                            layers=False,
                            transforms=(),
                            elem_id="inpaint-editor",
                        )
                        i_sampler, i_steps, i_eta, i_seed = _sampling_controls(
                            gr,
                            limits.max_steps,
                            steps_label="Steps",
                            eta_label="η",
                            prefix="i-",
                            linear_only=True,
                            default="DDPM",
                        )
                        jump_length = _whole_slider(
                            gr,
                            1,
                            limits.max_steps,
                            5,
                            "Jump length (steps per jump back)",
                            "i-jump-length",
                        )
                        jump_n_sample = _whole_slider(
                            gr,
                            1,
                            MAX_JUMP_N_SAMPLE,
                            5,
                            "Resampling (walks per stretch; 1: none)",
                            "i-jump-n-sample",
                        )
                        fillings = _whole_slider(
                            gr,
                            1,
                            limits.max_fillings,
                            2,
                            "Number of fillings",
                            "i-num",
                        )
                        i_run = gr.Button(
                            "Inpaint", variant="primary", elem_id="run-inpaint"
                        )
                    with gr.Column(scale=3):
                        filled = gr.Image(
                            label="Input · region to fill · fillings",
                            format="png",
                            interactive=False,
                            elem_id="inpainting",
                            elem_classes="pixelated",
                        )

        # One request at a time uses the model, whichever tab it comes from.
        model_queue = dict(concurrency_limit=1, concurrency_id=MODEL_QUEUE)
        generating = run.click(
            generate,
            [num_images, sampler, steps, seed, eta, *class_inputs],
            [grid, animation, status],
            api_name="generate",
            **model_queue,
        )
        stop.click(None, None, None, cancels=[generating], queue=False)
        r_run.click(
            reconstruct,
            [upload, t, r_sampler, r_steps, r_seed, r_eta],
            strip,
            api_name="reconstruct",
            preprocess=False,
            **model_queue,
        )
        i_run.click(
            inpaint,
            [
                editor,
                i_sampler,
                i_steps,
                jump_length,
                jump_n_sample,
                fillings,
                i_seed,
                i_eta,
            ],
            filled,
            api_name="inpaint",
            **model_queue,
        )
    demo.queue(max_size=max_queue, default_concurrency_limit=1)
    return demo


def launch_demo(demo, host="127.0.0.1", port=7860, block=True, **kwargs):
    """Serve a demo from `build_demo` (bound to this machine only by default).

    Args:
        demo: the `gradio.Blocks` from `build_demo`.
        host: str, address to listen on. Defaults to `"127.0.0.1"`: only this
            machine can connect; use `"0.0.0.0"` deliberately (e.g. in a container).
        port: int or None, TCP port; None takes the first free one from 7860.
            Defaults to 7860.
        block: bool, wait until the server is stopped (Ctrl-C). Defaults to True;
            False returns at once with the server running in the background.
        **kwargs: other `gradio.Blocks.launch` arguments.

    Returns:
        The local URL of the page.

    Example:

    ```python
    import keras_ddpm as kd
    from keras_ddpm.demo import build_demo, launch_demo

    net = kd.models.build_unet(image_size=8, widths=(8,), block_depth=1, attention_levels=())
    demo = build_demo(kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20}))
    url = launch_demo(demo, port=None, block=False)  # e.g. http://127.0.0.1:7860/
    demo.close()
    ```
    """
    options = dict(
        server_name=host,
        server_port=port,
        share=False,
        max_file_size="20mb",
        css=CSS,
        footer_links=[],
        show_error=False,
        quiet=True,
        prevent_thread_lock=not block,
    )
    options.update(kwargs)
    _, url, _ = demo.launch(**options)
    return url
