"""Driving the demo page with headless Chromium (Playwright): for its tests and screenshots."""

# Without the networking flags, Chromium waits on services a closed network never answers.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def set_slider(page, elem_id, value):
    """Type `value` into the number box of the slider `#elem_id` and commit it."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
