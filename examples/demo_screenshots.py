"""Render the web demo's screenshots for the docs from a trained model.

    KERAS_BACKEND=torch python examples/demo_screenshots.py runs/flowers/model.keras

Starts the demo on localhost (guided by the run's `guide.keras` when it lies
beside the model, as `keras-ddpm train` writes it), drives it with headless
Chromium (Playwright), and writes docs/images/demo-generate.png,
docs/images/demo-reconstruct.png and docs/images/demo-inpaint.png.
"""

import os
import re
import sys
import tempfile

import keras
from PIL import Image
from playwright.sync_api import sync_playwright

import keras_ddpm as kd
from keras_ddpm.demo import build_demo, launch_demo
from keras_ddpm.demo._browser import CHROMIUM_FLAGS, set_slider


def main(model_path, out="docs/images", port=7899):
    model = keras.saving.load_model(model_path)
    guide = os.path.join(os.path.dirname(model_path), "guide.keras")
    guide = keras.saving.load_model(guide) if os.path.exists(guide) else None
    demo = build_demo(model, model_name=os.path.basename(model_path), guide=guide)
    url = launch_demo(demo, port=port, block=False)
    flower = os.path.join(tempfile.mkdtemp(), "flower.png")
    Image.fromarray(
        (kd.datasets.render_flower(seed=2024, image_size=160) * 255).astype("uint8")
    ).save(flower)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                args=list(CHROMIUM_FLAGS),
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(600_000)
            page.goto(url)
            set_slider(page, "num-images", 16)
            set_slider(page, "steps", 50)
            page.locator("#generate").click()
            page.locator("#status").get_by_text("16 of 16 images").wait_for()
            page.locator("#animation img").first.wait_for(state="visible")
            page.wait_for_timeout(1200)  # the GIF half-way from noise to image
            page.screenshot(path=os.path.join(out, "demo-generate.png"), full_page=True)

            page.get_by_role("tab", name="Reconstruct").click()
            page.locator("#upload input[type=file]").set_input_files(flower)
            page.locator("#upload img").first.wait_for(state="visible")
            set_slider(page, "t", 400)
            page.locator("#run-reconstruct").click()
            page.locator("#reconstruction img").first.wait_for(state="visible")
            page.screenshot(
                path=os.path.join(out, "demo-reconstruct.png"), full_page=True
            )

            page.get_by_role("tab", name="Inpaint").click()
            editor = "#inpaint-editor"
            # The editor's zoom label changes once it has fitted the picture.
            zoom = page.locator(editor).get_by_text(re.compile(r"^\d+%$")).first
            blank = zoom.inner_text()
            page.locator(f"{editor} input[type=file]").set_input_files(flower)
            page.wait_for_function(
                "([label, blank]) => label.innerText !== blank",
                arg=[zoom.element_handle(), blank],
            )
            page.locator(f"{editor} button[aria-label=Brush]").click()
            canvas = page.locator(f"{editor} canvas").first.bounding_box()
            x = canvas["x"] + canvas["width"] / 2
            y = canvas["y"] + canvas["height"] / 2
            side = 0.1 * min(canvas["width"], canvas["height"])
            for row in range(7):  # strokes over a square around the centre
                height = y + side * (row / 3 - 1)
                page.mouse.move(x - side, height)
                page.mouse.down()
                page.mouse.move(x + side, height, steps=10)
                page.mouse.up()
            set_slider(page, "i-num", 4)
            page.locator("#run-inpaint").click()
            page.locator("#inpainting img").first.wait_for(state="visible")
            page.screenshot(path=os.path.join(out, "demo-inpaint.png"), full_page=True)
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
