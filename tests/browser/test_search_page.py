"""The search page in a real headless Chromium: type a query, get the right video first,
click a moment, and the HTML5 player really seeks there.

Two narrated clips go through the real pipeline (ffmpeg, Whisper, MiniLM) with short
chunks, so the lecture's third part is a moment that starts seconds into the video.
Chromium and chromedriver come from Debian (`make install`); in CI their absence fails.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.test import override_settings

from catalog.models import Keyframe, Video, VideoStatus
from retrieval.backends import reset_backends
from tests import media
from tests.conftest import require, storage_settings

# django_db makes pytest-django create the test database; the server thread reads the
# rows the module fixture committed.
pytestmark = [pytest.mark.models, pytest.mark.django_db]

SKY_PARTS = [
    ("intro", "Welcome to a short guide to the night sky for complete beginners."),
    ("dipper", "First find the Big Dipper, seven bright stars shaped like a ladle."),
    ("polaris", "Follow its two pointer stars upward to reach Polaris, the North Star."),
]
LAVA = "Lava is molten rock that rises from deep underground and erupts from a volcano."
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--mute-audio", "--window-size=1280,900")


def find_chromium() -> tuple[str | None, str | None]:
    """Return the Chromium and chromedriver executables, when installed."""
    return (shutil.which("chromium") or shutil.which("chromium-browser"),
            shutil.which("chromedriver"))


class LiveServer:
    """Django's LiveServerThread, with media served by the project's Range-capable view.

    The stock test server answers MEDIA_URL with django.views.static.serve, which ignores
    Range requests, so a <video> could not seek; here the media handler is skipped and
    /media/ reaches the project's URLconf (catalog.media.serve_media).
    """

    def __init__(self) -> None:
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.test.testcases import LiveServerThread

        self.thread = LiveServerThread(
            "127.0.0.1", static_handler=lambda media_handler: StaticFilesHandler(
                media_handler.application))
        self.thread.daemon = True
        self.thread.start()
        self.thread.is_ready.wait()
        if self.thread.error:
            raise self.thread.error
        self.url = f"http://127.0.0.1:{self.thread.port}"

    def stop(self) -> None:
        self.thread.terminate()


@pytest.fixture(scope="module")
def shared_site(media_tools, tmp_path_factory, django_db_setup, django_db_blocker) -> Iterator:
    """Ingest the two clips and serve the site for the module."""
    root = tmp_path_factory.mktemp("site")
    sky, parts = media.make_narrated_video(root / "in" / "night_sky.mp4", SKY_PARTS)
    lava = media.make_video(root / "in" / "lava.mp4", narration=LAVA)
    metadata = root / "catalog.json"
    metadata.write_text(json.dumps([
        {"file": "night_sky.mp4", "title": "Night Sky for Beginners", "tags": ["astronomy"]},
        {"file": "lava.mp4", "title": "Where Lava Comes From", "tags": ["geology"]}]))
    overrides = storage_settings(root)
    overrides["REELSEARCH"] = {**overrides["REELSEARCH"], "CHUNK_TARGET_SECONDS": 3.0,
                               "CHUNK_OVERLAP_SECONDS": 0.5}
    with override_settings(**overrides), django_db_blocker.unblock():
        reset_backends()
        call_command("ingest", sky, lava, metadata=metadata, no_progress=True)
        server = LiveServer()
        yield {"url": server.url, "parts": {p.key: p for p in parts}}
        server.stop()
        Video.objects.all().delete()
        reset_backends()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    """A headless Chromium driven through chromedriver (no network, fresh profile)."""
    chromium, driver_path = find_chromium()
    require(bool(chromium and driver_path), "Chromium and chromedriver (Debian packages "
                                            "chromium, chromium-driver)")
    try:
        from selenium import webdriver
    except ImportError:
        require(False, "the selenium package (pip install -e '.[dev]')")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, condition, timeout: float = 30.0, message: str = ""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message)


def test_search_then_play_a_moment(shared_site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    assert Video.objects.filter(status=VideoStatus.READY).count() == 2
    browser.get(shared_site["url"] + "/")
    box = browser.find_element(By.ID, "q")
    box.send_keys("how do I locate the north star", Keys.ENTER)
    first = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .result"),
                     message="no results appeared")[0]
    assert first.find_element(By.CSS_SELECTOR, "h2").text == "Night Sky for Beginners"
    sky = Video.objects.get(original_name="night_sky.mp4")
    if Keyframe.objects.filter(video=sky).exists():  # the keyframe nearest the best moment
        assert "/media/keyframes/" in first.find_element(By.CSS_SELECTOR, ".thumb img") \
            .get_attribute("src")
    else:  # a neutral placeholder
        assert first.find_element(By.CSS_SELECTOR, ".thumb").text == "N"
    assert "q=how+do+I+locate" in browser.current_url  # the query is in the address bar

    moment = first.find_element(By.CSS_SELECTOR, ".moments button.moment")
    start = float(moment.get_attribute("data-start"))
    polaris = shared_site["parts"]["polaris"]
    assert polaris.start - 1.0 <= start <= polaris.end, (start, polaris)
    assert "polaris" in moment.text.lower() or "north star" in moment.text.lower()
    moment.click()

    def seeked(driver):
        state = driver.execute_script(
            "const p = document.getElementById('player');"
            "return [p.readyState, p.seeking, p.currentTime, p.error && p.error.code];")
        assert state[3] is None, f"the player failed with MediaError code {state[3]}"
        return state if state[0] >= 1 and not state[1] and state[2] >= start - 0.3 else False

    ready_state, _, current, _ = wait_for(browser, seeked, message="the player did not seek")
    assert start - 0.3 <= current <= start + 3.0, (current, start)
    # Chromium only reports a seekable range when the server honours Range requests (with
    # django.views.static.serve it is [0, 0], and a longer file could not be sought at all).
    seekable_end, duration = browser.execute_script(
        "const p = document.getElementById('player');"
        "return [p.seekable.length ? p.seekable.end(p.seekable.length - 1) : 0, p.duration];")
    assert seekable_end >= duration - 0.1 > start, (seekable_end, duration)
    whole = int(start)
    assert f"from {whole // 60}:{whole % 60:02d}" in browser.find_element(By.ID, "now-playing").text

    # clicking the thumbnail of the same video seeks back to its best moment too
    browser.execute_script("document.getElementById('player').currentTime = 0;")
    first.find_element(By.CSS_SELECTOR, ".thumb").click()
    wait_for(browser, seeked, message="the thumbnail did not seek")


def test_a_query_in_the_address_is_searched_on_load(shared_site, browser):
    from selenium.webdriver.common.by import By

    browser.get(shared_site["url"] + "/?q=where+does+molten+rock+come+from")
    assert browser.find_element(By.ID, "q").get_attribute("value") == \
        "where does molten rock come from"
    first = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .result"),
                     message="no results appeared")[0]
    assert first.find_element(By.CSS_SELECTOR, "h2").text == "Where Lava Comes From"
