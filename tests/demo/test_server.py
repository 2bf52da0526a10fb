"""The web demo served for real on localhost, driven by a browser and by concurrent clients.

The page is the same on every backend, and the model calls behind it are tested
on all three in tests/demo/test_generation.py; these tests start a server and a
browser, so they run once, under PyTorch (where a tiny model compiles nothing).
"""

import base64
import io
import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.request

import keras
import numpy as np
import pytest
from PIL import Image

import keras_ddpm as kd
from keras_ddpm.demo._browser import CHROMIUM_FLAGS, set_slider
from keras_ddpm.models import sampling

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "torch",
    reason="server and browser tests run once, under the PyTorch backend",
)

CHROMIUM = os.environ.get("KERAS_DDPM_CHROMIUM", "/usr/bin/chromium")
SERVED = {}
SIZE = 8  # the tiny model's images: 8×8, shown 16× larger (128 px tiles)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("gradio")
    from keras_ddpm.demo import build_demo, launch_demo

    net = kd.models.build_unet(
        image_size=SIZE, widths=(8,), block_depth=1, attention_levels=()
    )
    model = kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
    path = str(tmp_path_factory.mktemp("model") / "tiny.keras")
    model.save(path)
    # What `keras-ddpm serve` does, in this process: load the saved file, serve it.
    model = keras.saving.load_model(path)
    demo = build_demo(model, max_images=6, max_steps=10, batch_size=2)
    url = launch_demo(demo, port=_free_port(), block=False)
    SERVED["model"] = model
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS)
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(server)
    page.wait_for_selector("#generate")
    yield page
    page.close()


def shown_image(page, elem_id):
    """Decode the picture an image component displays, as the browser received it."""
    image = page.locator(f"#{elem_id} img").first
    image.wait_for(state="visible")
    source = image.get_attribute("src")
    if source.startswith("data:"):
        data = base64.b64decode(source.split(",", 1)[1])
    else:
        response = page.request.get(source)
        assert response.ok, f"{source}: HTTP {response.status}"
        data = response.body()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def grid_pixels(rows, cols, size=SIZE, padding=2, scale=128 // SIZE):
    return (
        scale * (rows * size + (rows + 1) * padding),
        scale * (cols * size + (cols + 1) * padding),
    )


def test_page_generates_a_grid_of_the_requested_size(page):
    set_slider(page, "num-images", 5)
    set_slider(page, "steps", 2)
    page.locator("#generate").click()
    page.locator("#status").get_by_text("5 of 5 images").wait_for()
    picture = shown_image(page, "grid")
    # 5 images: a 3-column, 2-row grid with 2 px padding, every pixel 16×.
    assert picture.shape[:2] == grid_pixels(2, 3)
    animation = page.locator("#animation img")
    animation.wait_for(state="visible")
    assert page.locator(".toast-body.error").count() == 0
    # An unconditional model has no class picker.
    assert (
        page.locator("#class").count() == 0 and page.locator("#guidance").count() == 0
    )


def test_stop_cancels_a_generation_between_batches(page, monkeypatch):
    # The page samples through `sampling.sample_chunks`, one batch per item.
    sample_chunks, calls = sampling.sample_chunks, []
    release = threading.Event()

    def held_chunks(*args, **kwargs):
        for chunk in sample_chunks(*args, **kwargs):
            calls.append(time.monotonic())
            if len(calls) >= 2:  # the second batch waits until Stop has been pressed
                release.wait(timeout=60)
            yield chunk

    monkeypatch.setattr(sampling, "sample_chunks", held_chunks)
    set_slider(page, "num-images", 6)  # three batches of two
    set_slider(page, "steps", 2)
    page.locator("#generate").click()
    page.locator("#status").get_by_text("2 of 6 images").wait_for(timeout=120_000)
    page.locator("#stop").click()
    time.sleep(3.0)  # the cancel reaches the server while the second batch is held
    release.set()
    time.sleep(3.0)  # time enough for the third batch to start, had it been asked for
    assert len(calls) == 2
    # Gradio may put its own "Error" label over the outputs of a cancelled event
    # (a front-end race on cancel); the status text itself must still be ours.
    assert "2 of 6 images" in page.locator("#status").inner_text()


def upload_red_and_black(page, tmp_path, tab, elem_id, height, width):
    """Open `tab` and upload a picture, red on its left half, black on its right."""
    picture = np.zeros((height, width, 3), np.uint8)
    picture[:, : width // 2] = (255, 0, 0)
    path = tmp_path / "upload.png"
    Image.fromarray(picture).save(path)
    page.get_by_role("tab", name=tab).click()
    page.locator(f"#{elem_id}").wait_for(state="visible")
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    return path


def test_page_reconstructs_an_uploaded_picture(page, tmp_path):
    upload_red_and_black(page, tmp_path, "Reconstruct", "upload", 40, 60)
    page.locator("#upload img").first.wait_for(state="visible")
    set_slider(page, "t", 5)
    set_slider(page, "r-steps", 3)
    page.locator("#run-reconstruct").click()
    strip = shown_image(page, "reconstruction")
    # One row of three tiles: input, noised, reconstructed.
    assert strip.shape[:2] == grid_pixels(1, 3)
    # The first tile is the upload, center-cropped to 40×40 and resized to 8×8:
    # its left part red, its right part black.
    tile = strip[32:160, 32:160]
    assert tile[:, :32].mean(axis=(0, 1)) == pytest.approx([255, 0, 0], abs=8)
    assert tile[:, -32:].max() < 8


def tile(strip, k, scale=128 // SIZE, padding=2):
    """Tile `k` of a one-row strip, at display size."""
    top, left = scale * padding, scale * (padding + k * (SIZE + padding))
    return strip[top : top + scale * SIZE, left : left + scale * SIZE]


def editor_zoom(page):
    """The image editor's zoom label (e.g. "30%"), once the editor has started."""
    label = page.locator("#inpaint-editor").get_by_text(re.compile(r"^\d+%$")).first
    label.wait_for()
    return label


def test_page_inpaints_the_painted_region(page, tmp_path):
    # The editor fits a loaded picture to its canvas, which changes its zoom
    # label. An upload made while the editor was still starting up can be
    # dropped, as it would be for a person clicking that fast: then the test
    # uploads a copy of the picture again.
    page.get_by_role("tab", name="Inpaint").click()
    zoom = editor_zoom(page)
    blank = zoom.inner_text()  # the empty canvas, fitted
    path = upload_red_and_black(page, tmp_path, "Inpaint", "inpaint-editor", 200, 200)
    for attempt in range(4):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and zoom.inner_text() == blank:
            time.sleep(0.25)
        if zoom.inner_text() != blank:
            break
        copy = tmp_path / f"upload-{attempt}.png"
        shutil.copy(path, copy)
        page.locator("#inpaint-editor input[type=file]").set_input_files(str(copy))
    assert zoom.inner_text() != blank, "the picture never reached the editor"
    page.locator("#inpaint-editor button[aria-label=Brush]").click()
    # Paint over the right half's lower part: the canvas shows the picture centred.
    canvas = page.locator("#inpaint-editor canvas").first.bounding_box()
    x, y = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    side = 0.6 * min(canvas["width"], canvas["height"])
    for row in range(4):
        page.mouse.move(x + 0.1 * side, y + side * (0.1 + 0.1 * row))
        page.mouse.down()
        page.mouse.move(x + 0.4 * side, y + side * (0.1 + 0.1 * row), steps=5)
        page.mouse.up()
    set_slider(page, "i-steps", 4)
    set_slider(page, "i-jump-length", 2)
    set_slider(page, "i-jump-n-sample", 2)
    set_slider(page, "i-num", 2)
    page.locator("#run-inpaint").click()
    strip = shown_image(page, "inpainting")
    # One row: the input, the region to fill, two fillings.
    assert strip.shape[:2] == grid_pixels(1, 4)
    original, region = tile(strip, 0), tile(strip, 1)
    assert original[:, :48].mean(axis=(0, 1)) == pytest.approx([255, 0, 0], abs=8)
    # The painted pixels show grey (0 in [-1, 1]), all of them in the right half.
    grey = (np.abs(region.astype(int) - 128) <= 2).all(axis=-1)
    assert grey.sum() >= 16 * 16
    assert not grey[:, :64].any()
    assert not grey[:32].any()  # the top row was not painted
    for k in (2, 3):  # every filling keeps the unpainted pixels as they were
        np.testing.assert_array_equal(tile(strip, k)[~grey], original[~grey])
    assert page.locator(".toast-body.error").count() == 0


def test_page_answers_a_non_image_upload_with_a_message(page, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    page.get_by_role("tab", name="Reconstruct").click()
    # The file chooser offers only images; a file forced past it is refused.
    page.locator("#upload input[type=file]").set_input_files(str(text))
    page.get_by_text("Only image/* allowed").wait_for()
    page.locator("#run-reconstruct").click()
    page.get_by_text("Upload an image first.").wait_for()


def test_page_clamps_out_of_range_steps(page):
    set_slider(page, "steps", 0)
    page.locator("#num-images input[type=number]").click()
    assert page.locator("#steps input[type=number]").input_value() == "1"
    set_slider(page, "num-images", 10_000)
    page.locator("#steps input[type=number]").click()
    assert page.locator("#num-images input[type=number]").input_value() == "6"


def test_concurrent_requests_all_complete(server):
    from gradio_client import Client

    results, errors = {}, []

    def request(seed):
        try:
            client = Client(server, verbose=False)
            grid, animation, status = client.predict(
                3, "DDIM", 2, seed, 0.0, api_name="/generate"
            )
            results[seed] = (np.asarray(Image.open(grid)), status)
        except Exception as error:  # reported below, with the seed
            errors.append(f"seed {seed}: {error!r}")

    threads = [threading.Thread(target=request, args=(seed,)) for seed in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert sorted(results) == list(range(5))
    for seed, (grid, status) in results.items():
        assert grid.shape[:2] == grid_pixels(2, 2), seed
        assert status.startswith("3 of 3 images"), status
    # Different seeds, different noise: the requests did not share one result.
    assert not np.array_equal(results[0][0], results[1][0])


def test_api_rejects_bad_values_and_paths_with_messages(server, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    # Gradio's own checks of the sliders' bounds answer first; ours stand behind them.
    for args, message in [
        ((0, "DDIM", 2, 0, 0.0), "less than minimum value 1"),
        ((100, "DDIM", 2, 0, 0.0), "greater than maximum value 6"),
        ((2.5, "DDIM", 2, 0, 0.0), "Number of images must be a whole number"),
        ((2, "DDIM", 10_000, 0, 0.0), "greater than maximum value 10"),
        ((2, "lms", 2, 0, 0.0), "lms"),
        ((2, "DDIM", 2, -1, 0.0), "less than minimum value 0"),
        ((2, "DDIM", 2, 0, 5.0), "greater than maximum value 1"),
    ]:
        with pytest.raises(AppError, match=message):
            client.predict(*args, api_name="/generate")
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    with pytest.raises(AppError, match="Expected an image file"):
        client.predict(
            handle_file(str(text)), 5, "DDIM", 3, 0, 0.0, api_name="/reconstruct"
        )
    with pytest.raises(AppError, match="Upload an image"):
        client.predict(None, 5, "DDIM", 3, 0, 0.0, api_name="/reconstruct")


def test_inpainting_api_checks_its_values(server, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    picture, stroke = tmp_path / "picture.png", tmp_path / "stroke.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(picture)
    layer = np.zeros((16, 16, 4), np.uint8)
    layer[:8, :8] = (255, 0, 255, 255)
    Image.fromarray(layer).save(stroke)

    def edited(*layers):
        return {
            "background": handle_file(str(picture)),
            "layers": [handle_file(str(path)) for path in layers],
            "composite": None,
        }

    client = Client(server, verbose=False)
    strip = client.predict(
        edited(stroke), "DDPM", 4, 2, 2, 1, 0, 0.0, api_name="/inpaint"
    )
    assert np.asarray(Image.open(strip)).shape[:2] == grid_pixels(1, 3)
    for args, message in [
        ((edited(stroke), "HEUN", 4, 2, 2, 1, 0, 0.0), "not in the list of choices"),
        ((edited(stroke), "DDPM", 4, 5, 2, 1, 0, 0.0), r"Jump length .* \[1, 4\]"),
        (
            (edited(stroke), "DDPM", 4, 2, 11, 1, 0, 0.0),
            "greater than maximum value 10",
        ),
        ((edited(stroke), "DDPM", 4, 2, 2, 5, 0, 0.0), "greater than maximum value 4"),
        ((edited(), "DDPM", 4, 2, 2, 1, 0, 0.0), "Paint over the region to fill in"),
        ((None, "DDPM", 4, 2, 2, 1, 0, 0.0), "Upload an image first"),
    ]:
        with pytest.raises(AppError, match=message):
            client.predict(*args, api_name="/inpaint")


def call_raw(server, api_name, data):
    """One call of the HTTP API without gradio_client: (event name, its data)."""
    request = urllib.request.Request(
        f"{server}gradio_api/call/{api_name}",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(
        f"{server}gradio_api/call/{api_name}/{event_id}", timeout=120
    ) as response:
        lines = response.read().decode().splitlines()
    events = [line.split(": ", 1)[1] for line in lines if line.startswith("event: ")]
    payloads = [line.split(": ", 1)[1] for line in lines if line.startswith("data: ")]
    return events[-1], json.loads(payloads[-1])


PATH_REFUSED = "Expected an uploaded image; file paths are not accepted."


def test_api_never_reads_a_server_path(server, tmp_path):
    # A real picture on the server, outside Gradio's upload folder.
    picture = tmp_path / "private.png"
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(picture)
    ok_event, ok_data = call_raw(
        server, "generate", [1, "DDIM", 1, 0, 0.0]
    )  # the call itself works
    assert ok_event == "complete", ok_data
    for payload in (
        {"path": str(picture)},
        {"path": str(picture), "meta": {"_type": "gradio.FileData"}},
        {"path": "/etc/hostname"},
    ):
        event, data = call_raw(server, "reconstruct", [payload, 5, "DDIM", 3, 0, 0.0])
        # Refused by Gradio (no message) or by the demo ("paths are not accepted").
        assert event == "error", data
        assert data["error"] in (None, PATH_REFUSED), data
        edited = {"background": payload, "layers": [], "composite": None}
        event, data = call_raw(server, "inpaint", [edited, "DDPM", 4, 2, 2, 1, 0, 0.0])
        assert event == "error", data
        assert "Paint over" not in str(data), data  # refused before it was read


@pytest.fixture(scope="module")
def conditional_server():
    pytest.importorskip("gradio")
    from keras_ddpm.demo import build_demo, launch_demo

    net = kd.models.build_unet(
        image_size=SIZE, widths=(8,), block_depth=1, attention_levels=(), num_classes=2
    )
    model = kd.DiffusionModel(
        net,
        schedule={"name": "linear", "timesteps": 20},
        num_classes=2,
        class_names=["tulip", "rose"],
    )
    demo = build_demo(model, max_images=6, max_steps=10, batch_size=2)
    url = launch_demo(demo, port=_free_port(), block=False)
    yield url, model
    demo.close()


def test_a_conditional_model_samples_the_picked_class(conditional_server, browser):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from keras_ddpm.demo import generate_progressively

    url, model = conditional_server
    page = browser.new_page()
    try:
        page.goto(url)
        page.locator("#class").wait_for()
        assert page.locator("#guidance").count() == 1
        assert "tulip, rose" in page.locator("#model-info").inner_text()
    finally:
        page.close()
    client = Client(url, verbose=False)
    grid, _, status = client.predict(
        3, "DDIM", 2, 0, 0.0, "rose", 3.0, api_name="/generate"
    )
    *_, (_, expected, _) = generate_progressively(
        model,
        3,
        sampler={"name": "ddim", "eta": 0.0},
        steps=2,
        seed=0,
        batch_size=2,
        labels=1,
        guidance_scale=3.0,
    )
    np.testing.assert_allclose(
        np.asarray(Image.open(grid).convert("RGB")), expected, atol=1
    )
    for args, message in [
        (("daisy", 3.0), "not in the list of choices"),
        (("rose", 11.0), "greater than maximum value 10"),
    ]:
        with pytest.raises(AppError, match=message):
            client.predict(3, "DDIM", 2, 0, 0.0, *args, api_name="/generate")


def test_the_demo_guides_unconditional_models_only():
    pytest.importorskip("gradio")
    from keras_ddpm.demo import build_demo

    net = kd.models.build_unet(
        image_size=SIZE, widths=(8,), block_depth=1, attention_levels=(), num_classes=2
    )
    conditional = kd.DiffusionModel(
        net, schedule={"name": "linear", "timesteps": 20}, num_classes=2
    )
    with pytest.raises(ValueError, match="unconditional models only"):
        build_demo(conditional, guide=conditional)
    model = SERVED.get("model") or kd.DiffusionModel(
        kd.models.build_unet(
            image_size=SIZE, widths=(8,), block_depth=1, attention_levels=()
        ),
        schedule={"name": "linear", "timesteps": 20},
    )
    with pytest.raises(ValueError, match="`guide` makes images of shape"):
        build_demo(model, guide=tiny_guide(16))
    with pytest.raises(ValueError, match="`guidance_interval` limits guidance"):
        build_demo(model, guidance_interval=(2, 15))
    with pytest.raises(ValueError, match="reaches past the schedule's 20 timesteps"):
        build_demo(model, guide=tiny_guide(SIZE), guidance_interval=(2, 25))
    build_demo(
        model, guide=tiny_guide(SIZE), guide_scale=2.5, guidance_interval=(2, 15)
    ).close()


def tiny_guide(size):
    net = kd.models.build_unet(
        image_size=size, widths=(4,), block_depth=1, groups=2, attention_levels=()
    )
    return kd.DiffusionModel(net, schedule={"name": "linear", "timesteps": 20})
