"""The playground served for real and driven in Debian's headless Chromium with Selenium, on a tiny random model.

Skips, saying why, where chromium/chromedriver, selenium or gradio are absent (README: Listen and play).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mido
import pytest
from midi_fixtures import make_midi

pytest.importorskip("gradio", reason="the app needs gradio: pip install -e '.[app]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="browser tests need selenium: pip install -e '.[app,test]'")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# MUSENET_SCREENSHOTS=DIR keeps the page's screenshot after generating (docs/playground.png came from a run)
SCREENSHOT_DIR = Path(os.environ["MUSENET_SCREENSHOTS"]) if os.environ.get("MUSENET_SCREENSHOTS") else None
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT = 120  # seconds a generation may take on a loaded 2-core machine
SECONDS = 2  # music per variation: enough to slide the tiny model's 64-token window
DRUM_TAIL = 0.15  # a drum hit at the very end lasts drum_note_seconds (0.1 s) past the asked length
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny checkpoint with density limits that never bind. A random model's logits are nearly flat, so
    the density guard's smallest ensemble penalty moves every note-on out of top-k: its continuation of a dense
    2 s primer would be silence. And it starts ~60 notes a second, so the per-family cap (24 notes/s over 5 s
    without statistics) stops every note-on for the last half second of some continuations. The test is of
    the app, not of the guard (tests/test_guards.py)."""
    from musenet_hf.core.guards import CONFIG_KEY, MusicStatistics

    path = tmp_path_factory.mktemp("app-model") / "tiny"
    shutil.copytree(tiny_model_dir, path)
    config = json.loads((path / "config.json").read_text())
    from transformers import AutoTokenizer

    families = AutoTokenizer.from_pretrained(str(path)).instruments
    unbound = MusicStatistics(ensemble_notes_per_second={"2": [1000.0, 2000.0]}, notes_per_second=dict.fromkeys(families, 1000.0))
    config[CONFIG_KEY] = unbound.to_dict()
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def served(app_model_dir, gm_soundfont, tmp_path_factory):
    from musenet_hf.listen.app import build_app

    demo = build_app(str(app_model_dir), max_seconds=10, soundfont=gm_soundfont,
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
    set_number(driver, "seconds", value)


def set_number(driver, elem_id, value):
    """Type into a gr.Number, or a gr.Slider's number box."""
    field = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=number]")
    field.clear()
    field.send_keys(str(value))
    field.send_keys("\t")


def choose_style(driver, name, elem_id="style"):
    field = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
    field.click()
    field.clear()
    field.send_keys(name)
    option = WebDriverWait(driver, WAIT).until(
        lambda d: next((li for li in d.find_elements(By.CSS_SELECTOR, "ul li") if li.text.strip().endswith(name)), False))
    option.click()
    # The typed filter text already reads `name`, so the value alone proves nothing: blur the field, which makes
    # the dropdown either keep the clicked choice or fall back to the old one, and check what it kept.
    field.send_keys(Keys.TAB)
    WebDriverWait(driver, WAIT).until(lambda d: field.get_attribute("value") == name)


def downloads(driver, served):
    links = [driver.find_elements(By.CSS_SELECTOR, f"#midi-{i} a[href]") for i in range(4)]
    return [urllib.request.urlopen(found[0].get_attribute("href"), timeout=30).read() if found else None for found in links]


def wait_for_variations(driver, previous=None):
    """The four variations' download links once every one is new: each request writes to its own folder, so
    every link changes, and the page may redraw the four slots one at a time."""
    def ready(d):
        hrefs = [tuple(a.get_attribute("href") for a in d.find_elements(By.CSS_SELECTOR, f"#midi-{i} a[href]")) for i in range(4)]
        fresh = previous is None or all(new != old for new, old in zip(hrefs, previous))
        return hrefs if all(hrefs) and fresh else False

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
    # (a drum hit at the chosen piece's very end counts in its length, not in its music: allow its tail below)
    assert all(chosen - DRUM_TAIL + SECONDS - 0.05 < m.length < chosen + SECONDS + DRUM_TAIL for m in longer), (chosen, [m.length for m in longer])
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
    message = browser.find_element(By.ID, "message").text
    assert "corrupt.mid: " in message and len(message.split("corrupt.mid: ", 1)[1]) > 10  # MidiError: the file, then why
    assert browser.find_element(By.ID, "generate").is_enabled()  # the app keeps working


def fresh_page(driver, served):
    """A new page load: a new Gradio session (empty history, no upload left by an earlier test)."""
    driver.get(served)
    WebDriverWait(driver, WAIT).until(EC.element_to_be_clickable((By.ID, "generate")))
    return driver


def notes_of(midi: mido.MidiFile) -> list[tuple]:
    """(absolute tick, channel, pitch) of every note-on: what two pieces are compared by."""
    notes = []
    for track in midi.tracks:
        tick = 0
        for m in track:
            tick += m.time
            if m.type == "note_on" and m.velocity > 0:
                notes.append((tick, m.channel, m.note))
    return sorted(notes)


def generate_pieces(driver, served, tmp_path, name, previous=None):
    driver.find_element(By.ID, "generate").click()
    hrefs = wait_for_variations(driver, previous)
    return hrefs, [midi_of(data, tmp_path, f"{name}{i}.mid") for i, data in enumerate(downloads(driver, served))]


@pytest.mark.slow
def test_style_blend_reaches_the_model_and_gives_valid_midi(browser, served, tmp_path):
    page = fresh_page(browser, served)
    choose_instruments(page, {"piano"})
    set_seconds(page, SECONDS)
    set_number(page, "seed", 7)
    plain_hrefs, plain = generate_pieces(page, served, tmp_path, "plain")
    choose_style(page, "jazz", elem_id="style2")
    set_number(page, "blend", 0.4)  # pop stays the header's style; the model gets 0.6 pop + 0.4 jazz
    blend_hrefs, blended = generate_pieces(page, served, tmp_path, "blend", plain_hrefs)
    for midi in blended:  # mido parsed each download: valid MIDI, the asked length, only the chosen instrument
        assert {m.name for t in midi.tracks for m in t if m.type == "track_name"} <= {"piano"}
        assert SECONDS - 0.05 < midi.length < SECONDS + DRUM_TAIL
    assert any(notes_of(m) for m in blended)
    choose_style(page, "none", elem_id="style2")  # the control: the same seed without the blend repeats itself
    _, again = generate_pieces(page, served, tmp_path, "again", blend_hrefs)
    assert [notes_of(m) for m in again] == [notes_of(m) for m in plain]
    assert [notes_of(m) for m in blended] != [notes_of(m) for m in plain]


@pytest.mark.slow
def test_primer_without_the_chosen_instruments_shows_a_message_and_the_app_goes_on(browser, served, tmp_path):
    page = fresh_page(browser, served)
    violin = tmp_path / "violin.mid"
    make_midi([(0.25 * i, 0.25 * i + 0.2, 0, 60 + i, 80, 40) for i in range(8)]).save(violin)  # GM 40: violin only
    choose_instruments(page, {"piano"})
    set_seconds(page, SECONDS)
    page.find_element(By.CSS_SELECTOR, "#primer input[type=file]").send_keys(str(violin))
    WebDriverWait(page, WAIT).until(lambda d: "violin.mid" in d.page_source)  # the upload finished
    page.find_element(By.ID, "generate").click()
    WebDriverWait(page, WAIT).until(lambda d: "Error" in d.find_element(By.ID, "message").text)
    message = page.find_element(By.ID, "message").text
    assert "primer has no notes for ['piano']" in message and "violin" in message
    assert not page.find_elements(By.CSS_SELECTOR, "#midi-0 a[href]")  # nothing was generated

    choose_instruments(page, {"piano", "violin"})  # the same page and upload, now with the primer's instrument
    _, pieces = generate_pieces(page, served, tmp_path, "primed")
    assert "Error" not in page.find_element(By.ID, "message").text
    for midi in pieces:
        assert {m.name for t in midi.tracks for m in t if m.type == "track_name"} <= {"piano", "violin"}
        violin_track = next(t for t in midi.tracks if any(m.type == "track_name" and m.name == "violin" for m in t))
        pitches = [pitch for _, _, pitch in notes_of(mido.MidiFile(tracks=[violin_track]))]
        assert pitches[:8] == list(range(60, 68))  # the piece starts with the primer


def app_py(args, tmp_path, port=None):
    """``python app.py ARGS`` as a user starts it, with Gradio's own environment variables for the address."""
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port or free_port()),
           "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with open(tmp_path / "app.log", "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, str(ROOT / "app.py"), *args], cwd=tmp_path, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def wait_for_http(url, process, log):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"app.py exited with {process.returncode}: {log.read_text()[-2000:]}"
        try:
            return urllib.request.urlopen(url, timeout=5).read()
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"app.py did not answer on {url} within {WAIT} s: {log.read_text()[-2000:]}")


@pytest.mark.slow
def test_app_py_serves_its_model_on_gradio_server_port_and_bounds_the_length(tiny_model_dir, tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    port = free_port()
    server = app_py(["--model", str(tiny_model_dir), "--max-seconds", "3", "--threads", "1"], tmp_path, port)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, server, tmp_path / "app.log")
        config = json.loads(urllib.request.urlopen(url + "config", timeout=30).read())
        assert str(tiny_model_dir) in json.dumps(config)  # the page names the --model it serves
        client = Client(url, verbose=False, download_files=str(tmp_path))
        ask = ("pop", "none", 0.0, ["piano"], True, None, None, None)
        with pytest.raises(AppError, match="greater than maximum value 3"):
            client.predict(*ask, 5.0, 1.0, 0.95, 1, api_name="/generate")  # over --max-seconds
        result = client.predict(*ask, 1.0, 1.0, 0.95, 1, api_name="/generate")  # the app goes on
        assert not result[0].startswith("**Error")
        midi = mido.MidiFile(result[4])  # message, trail, then (roll, audio, midi) per variation
        assert {m.name for t in midi.tracks for m in t if m.type == "track_name"} <= {"piano"}
        assert 0.95 < midi.length < 1.0 + DRUM_TAIL
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.slow
def test_app_py_with_a_missing_model_says_so_in_one_line(tmp_path):
    missing = tmp_path / "no-such-checkpoint"
    server = app_py(["--model", str(missing)], tmp_path)
    assert server.wait(WAIT) == 2
    output = (tmp_path / "app.log").read_text().strip().splitlines()
    assert output[-1].startswith(f"app.py: cannot load the model {missing}")
    assert "Traceback" not in "\n".join(output)


@pytest.mark.slow
def test_generate_twice_with_the_default_seed_gives_new_pieces(browser, served, tmp_path):
    page = fresh_page(browser, served)
    choose_instruments(page, {"piano"})
    set_seconds(page, SECONDS)
    first_hrefs, first = generate_pieces(page, served, tmp_path, "first")
    _, second = generate_pieces(page, served, tmp_path, "second", first_hrefs)  # times out if the files repeat
    assert [notes_of(m) for m in second] != [notes_of(m) for m in first]
