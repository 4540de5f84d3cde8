"""The playground served for real and driven in Debian's headless Chromium with Selenium, on a tiny random model.

Skips, saying why, where chromium/chromedriver, selenium or gradio are absent (README: Listen and play).
"""

from __future__ import annotations

import os
import shutil
import socket
import urllib.request
from pathlib import Path

import mido
import pytest

pytest.importorskip("gradio", reason="the app needs gradio: pip install -e '.[app]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="browser tests need selenium: pip install -e '.[app,test]'")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# MUSENET_SCREENSHOTS=DIR keeps the page's screenshot after generating (docs/playground.png came from a run)
SCREENSHOT_DIR = Path(os.environ["MUSENET_SCREENSHOTS"]) if os.environ.get("MUSENET_SCREENSHOTS") else None
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT = 120  # seconds a generation may take on a loaded 2-core machine
SECONDS = 2  # music per variation: enough to slide the tiny model's 64-token window
DRUM_TAIL = 0.15  # a drum hit at the very end lasts drum_note_seconds (0.1 s) past the asked length


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_model_dir, gm_soundfont, tmp_path_factory):
    from musenet_hf.listen.app import build_app

    demo = build_app(str(tiny_model_dir), max_seconds=10, soundfont=gm_soundfont,
                     workdir=tmp_path_factory.mktemp("app"), num_threads=1)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}"
    demo.close()


@pytest.fixture(scope="module")
def browser(served):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.get(served)
    WebDriverWait(driver, WAIT).until(EC.element_to_be_clickable((By.ID, "generate")))
    yield driver
    driver.quit()


def choose_instruments(driver, names):
    for box in driver.find_elements(By.CSS_SELECTOR, "#instruments label"):
        checkbox = box.find_element(By.TAG_NAME, "input")
        if (box.text.strip() in names) != checkbox.is_selected():
            box.click()


def set_seconds(driver, value):
    field = driver.find_element(By.CSS_SELECTOR, "#seconds input[type=number]")
    field.clear()
    field.send_keys(str(value))
    field.send_keys("\t")


def choose_style(driver, name):
    field = driver.find_element(By.CSS_SELECTOR, "#style input")
    field.click()
    field.clear()
    field.send_keys(name)
    option = WebDriverWait(driver, WAIT).until(
        lambda d: next((li for li in d.find_elements(By.CSS_SELECTOR, "ul li") if li.text.strip().endswith(name)), False))
    option.click()
    WebDriverWait(driver, WAIT).until(lambda d: field.get_attribute("value") == name)


def downloads(driver, served):
    links = [driver.find_elements(By.CSS_SELECTOR, f"#midi-{i} a[href]") for i in range(4)]
    return [urllib.request.urlopen(found[0].get_attribute("href"), timeout=30).read() if found else None for found in links]


def wait_for_variations(driver, previous=None):
    def ready(d):
        hrefs = [tuple(a.get_attribute("href") for a in d.find_elements(By.CSS_SELECTOR, f"#midi-{i} a[href]")) for i in range(4)]
        return hrefs if all(hrefs) and hrefs != previous else False

    return WebDriverWait(driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(ready)


def midi_of(data: bytes, tmp_path: Path, name: str) -> mido.MidiFile:
    path = tmp_path / name
    path.write_bytes(data)
    return mido.MidiFile(path)


@pytest.mark.slow
def test_generate_listen_download_continue_and_step_back(browser, served, tmp_path):
    choose_style(browser, "jazz")
    choose_instruments(browser, {"piano", "drums"})
    set_seconds(browser, SECONDS)
    browser.find_element(By.ID, "generate").click()
    first = wait_for_variations(browser)
    players = [browser.find_elements(By.CSS_SELECTOR, f"#audio-{i} audio, #audio-{i} [data-testid='waveform-listen']") for i in range(4)]
    assert all(players), "every variation has an audio player"
    rolls = [browser.find_elements(By.CSS_SELECTOR, f"#roll-{i} img") for i in range(4)]
    assert all(rolls), "every variation shows its piano roll"
    pieces = [midi_of(data, tmp_path, f"v{i}.mid") for i, data in enumerate(downloads(browser, served))]
    for midi in pieces:
        names = {m.name for t in midi.tracks for m in t if m.type == "track_name"}
        assert names and names <= {"piano", "drums"}  # only the chosen instruments
        assert SECONDS - 0.05 < midi.length < SECONDS + DRUM_TAIL
    browser.save_screenshot(str(SCREENSHOT_DIR / "playground-test.png") if SCREENSHOT_DIR else str(tmp_path / "p.png"))

    browser.find_element(By.ID, "continue-1").click()
    wait_for_variations(browser, first)
    longer = [midi_of(data, tmp_path, f"c{i}.mid") for i, data in enumerate(downloads(browser, served))]
    chosen = pieces[1].length
    # the chosen piece plus the same length again
    assert all(chosen + SECONDS - 0.05 < m.length < chosen + SECONDS + DRUM_TAIL for m in longer)
    assert "continued variation 2" in browser.find_element(By.ID, "history").text

    browser.find_element(By.ID, "back").click()
    WebDriverWait(browser, WAIT).until(lambda d: "continued" not in d.find_element(By.ID, "history").text)


@pytest.mark.slow
def test_corrupt_upload_shows_the_error_in_the_page(browser, tmp_path):
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06 this is not MIDI")
    browser.find_element(By.CSS_SELECTOR, "#primer input[type=file]").send_keys(str(corrupt))
    WebDriverWait(browser, WAIT).until(lambda d: "corrupt.mid" in d.page_source)  # the upload finished
    browser.find_element(By.ID, "generate").click()
    WebDriverWait(browser, WAIT).until(lambda d: "Error" in d.find_element(By.ID, "message").text)
    assert "not a readable MIDI" in browser.find_element(By.ID, "message").text
    assert browser.find_element(By.ID, "generate").is_enabled()  # the app keeps working
