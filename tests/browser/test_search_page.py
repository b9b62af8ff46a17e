"""The search page in a real headless Chromium: type a query, get the right video first,
click a moment, and the HTML5 player really seeks there; results update as you type, the
arrow keys and Enter work, facets filter, matched words are marked, chapters seek the
player and the subtitles show; axe-core checks the page's accessibility.

Two narrated clips go through the real pipeline (ffmpeg, Whisper, MiniLM) with short
chunks, so the lecture's third part is a moment that starts seconds into the video.
Chromium and chromedriver come from Debian, axe-core from npm (`make install`); in CI
their absence fails. Screenshots go to the test's tmp directory.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

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
        # Chapters are made for videos over five minutes; this 15 s clip gets its parts as
        # chapters by hand, so the page's chapter list has something to show.
        ends = [p.start for p in parts[1:]] + [Video.objects.get(original_name="night_sky.mp4")
                                                 .duration]
        Video.objects.filter(original_name="night_sky.mp4").update(chapters=[
            {"start": 0.0 if n == 0 else part.start, "end": end, "title": title}
            for n, (part, end, title) in enumerate(zip(
                parts, ends, ["Welcome", "The Big Dipper", "Finding Polaris"], strict=True))])
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


# -- typing, keys, facets, highlights, chapters, subtitles, accessibility ----------------

AXE = Path(__file__).resolve().parents[2] / "node_modules/axe-core/axe.min.js"


def titles(driver) -> list[str]:
    """Return the result titles, read in one go (the list is re-rendered as results come)."""
    return driver.execute_script("return Array.from(document.querySelectorAll("
                                 "'#results .result h2'), h => h.textContent);")


def search_requests(driver) -> int:
    return driver.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('/api/search?')).length;")


def type_slowly(box, text: str) -> None:
    for char in text:
        box.send_keys(char)


def show_facets(driver, query: str) -> None:
    """Give the page tag facets in the agreed shape where /api/search has no `facets=` yet."""
    from retrieval.api import SEARCH_PARAMETER_NAMES

    if "facets" in SEARCH_PARAMETER_NAMES:
        return
    driver.execute_async_script("""
        const [query, done] = arguments;
        fetch('/api/search?' + new URLSearchParams({q: query, k: 10})).then(r => r.json())
          .then(data => {
            const counts = {};
            for (const r of data.results) for (const t of r.tags) counts[t] = (counts[t] || 0) + 1;
            const tags = Object.entries(counts).map(([value, count]) => ({value, count}));
            data.facets = {tags: tags};
            window.reelsearchPage.showResults(data, query);
            done(true);
          });""", query)


def test_results_update_as_you_type(shared_site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(shared_site["url"] + "/")
    box = browser.find_element(By.ID, "q")
    type_slowly(box, "north star")  # no Enter
    wait_for(browser, lambda d: titles(d)[:1] == ["Night Sky for Beginners"],
             message="typing did not show results")
    requests = search_requests(browser)
    assert 1 <= requests < len("north star"), "typing is not debounced"
    box.send_keys(Keys.CONTROL, "a")
    type_slowly(box, "molten rock")
    wait_for(browser, lambda d: titles(d)[:1] == ["Where Lava Comes From"],
             message="the results did not follow the new query")
    assert "q=molten+rock" in browser.current_url


def test_arrow_keys_move_through_results_and_enter_plays(shared_site, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(shared_site["url"] + "/?q=stars+and+volcanoes")
    wait_for(browser, lambda d: len(titles(d)) == 2, message="two results expected")
    box = browser.find_element(By.ID, "q")
    box.send_keys(Keys.ARROW_DOWN)
    focused = "return document.activeElement.closest('.result')?.dataset.videoId || null;"
    ids = [e.get_attribute("data-video-id")
           for e in browser.find_elements(By.CSS_SELECTOR, "#results .result")]
    assert browser.execute_script(focused) == ids[0]
    browser.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert browser.execute_script(focused) == ids[1]
    browser.switch_to.active_element.send_keys(Keys.ARROW_UP)
    assert browser.execute_script(focused) == ids[0]
    browser.switch_to.active_element.send_keys(Keys.ARROW_DOWN, Keys.ENTER)
    second = titles(browser)[1]
    wait_for(browser, lambda d: d.find_element(By.ID, "now-playing").text.startswith(second),
             message="Enter did not play the focused result")
    browser.switch_to.active_element.send_keys(Keys.ARROW_UP, Keys.ARROW_UP)
    assert browser.execute_script("return document.activeElement.id;") == "q"


def test_a_facet_click_filters_the_results(shared_site, browser):
    """Facets as /api/search returns them ({"facets": {"tags": [{"value", "count"}]}}).

    Where the API does not offer `facets=` yet, the page is given that shape from the real
    response plus tag counts; the click then goes through the real API's `tags` filter.
    """
    from selenium.webdriver.common.by import By

    browser.get(shared_site["url"] + "/?q=rock+and+stars")
    wait_for(browser, lambda d: len(titles(d)) == 2, message="two results expected")
    show_facets(browser, "rock and stars")
    facet = wait_for(browser, lambda d: d.find_elements(
        By.CSS_SELECTOR, "#facets .facet[data-value='geology']"), message="no tag facet")[0]
    assert not browser.find_element(By.ID, "facets").get_attribute("hidden")
    assert facet.get_attribute("aria-pressed") == "false" and "1" in facet.text
    facet.click()
    wait_for(browser, lambda d: titles(d) == ["Where Lava Comes From"],
             message="the facet did not filter the results")
    assert "tags=geology" in browser.current_url
    pressed = browser.find_element(By.CSS_SELECTOR, "#facets .facet[data-value='geology']")
    assert pressed.get_attribute("aria-pressed") == "true"
    pressed.click()  # and off again
    wait_for(browser, lambda d: len(titles(d)) == 2, message="the filter did not come off")


def test_highlights_are_marked_and_snippets_stay_text(shared_site, browser):
    from selenium.webdriver.common.by import By

    browser.get(shared_site["url"] + "/?q=molten+rock")
    wait_for(browser, lambda d: titles(d)[:1] == ["Where Lava Comes From"], message="no results")
    moments = browser.execute_script(
        "return fetch('/api/search?q=molten+rock&k=10').then(r => r.json())"
        ".then(d => d.results[0].moments);")
    if any("highlights" in m for m in moments):  # the API marks the matched words itself
        marks = [e.text.lower() for e in browser.find_elements(By.CSS_SELECTOR, ".snippet mark")]
        assert "molten" in marks or "rock" in marks, marks
    # The rendering of offsets (code points, overlapping pairs merged) with markup in the text
    snippet = "Lava <img src=x onerror=alert(1)> is molten rock 🌋 from volcanoes."
    rock, fire = snippet.index("molten"), snippet.index("volcanoes")  # code points, as sent
    highlights = [[rock, rock + 6], {"start": rock + 4, "end": rock + 11}, [0, 4],
                  [fire, fire + 9], [fire + 9, 999]]
    browser.execute_script("""
        window.reelsearchPage.showResults({total: 1, results: [{
          id: 'x', title: 'T', url: null, tags: [], duration: 3, thumbnail: null,
          moments: [{start: 1, end: 2, kind: 'speech', tier: 'high', snippet: arguments[0],
                     highlights: arguments[1]}]}]}, 'q');""", snippet, highlights)
    rendered = browser.find_element(By.CSS_SELECTOR, "#results .snippet")
    marks = [m.text for m in rendered.find_elements(By.TAG_NAME, "mark")]
    assert marks == ["Lava", "molten rock", "volcanoes."], marks
    assert rendered.text == snippet
    assert not rendered.find_elements(By.TAG_NAME, "img")


def test_chapters_seek_the_player_and_subtitles_show(shared_site, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(shared_site["url"] + "/?q=how+do+I+locate+the+north+star")
    first = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .result"),
                     message="no results appeared")[0]
    first.find_element(By.CSS_SELECTOR, ".moments button.moment").click()
    chapters = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR,
                                                           "#chapters .chapter"),
                        message="no chapters under the player")
    parts = shared_site["parts"]
    dipper, polaris = parts["dipper"], parts["polaris"]
    assert [" ".join(c.text.split()) for c in chapters] == [
        "0:00 Welcome", f"0:{int(dipper.start):02d} The Big Dipper",
        f"0:{int(polaris.start):02d} Finding Polaris"]
    chapters[1].click()

    def at_dipper(driver):
        now = driver.execute_script("const p = document.getElementById('player');"
                                    "return p.seeking ? null : p.currentTime;")
        return now is not None and abs(now - dipper.start) < 0.5

    wait_for(browser, at_dipper, message="the chapter did not seek the player")
    browser.execute_script("document.getElementById('player').pause();")
    wait_for(browser, lambda d: chapters[1].get_attribute("aria-current") == "true",
             message="the current chapter is not marked")

    def showing_cue(driver):
        return driver.execute_script("""
            const p = document.getElementById('player');
            const t = p.textTracks[0];
            if (!t || t.mode !== 'showing' || !t.cues || !t.cues.length) return null;
            return Array.from(t.activeCues || []).map(c => c.text).join(' ');""")

    text = wait_for(browser, showing_cue, message="no subtitle is showing")
    assert any(word in text.lower() for word in ("dipper", "seven", "stars", "ladle")), text
    track = browser.find_element(By.CSS_SELECTOR, "#player track")
    assert track.get_attribute("src").endswith("/subtitles.vtt")
    shot = tmp_path / "chapters-and-subtitles.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_the_page_passes_axe_accessibility_checks(shared_site, browser, tmp_path):
    """WCAG 2.1 A and AA rules of axe-core (labels, roles, names, contrast, landmarks)."""
    from selenium.webdriver.common.by import By

    require(AXE.is_file(), "axe-core (npm install, run by make install)")
    browser.get(shared_site["url"] + "/?q=how+do+I+locate+the+north+star")
    first = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .result"),
                     message="no results appeared")[0]
    first.find_element(By.CSS_SELECTOR, ".moments button.moment").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#chapters .chapter"),
             message="no chapters under the player")
    show_facets(browser, "how do I locate the north star")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#facets .facet"),
             message="no facets to check")
    browser.execute_script(AXE.read_text())
    browser.set_script_timeout(60)
    report = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: 'tag',
                                     values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
          .then(r => done({violations: r.violations.map(v => ({id: v.id, help: v.help,
                              nodes: v.nodes.map(n => n.target.join(' '))})),
                           passes: r.passes.map(p => p.id)}))
          .catch(e => done({error: String(e)}));""")
    assert "error" not in report, report
    browser.save_screenshot(str(tmp_path / "axe-checked.png"))
    assert report["violations"] == [], json.dumps(report["violations"], indent=1)
    assert {"label", "color-contrast", "aria-roles", "button-name"} <= set(report["passes"])
