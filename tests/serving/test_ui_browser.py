"""The ``clinrag ui`` page in a real headless browser: Debian's chromium driven by selenium through Debian's
chromedriver (no browser download at run time). Set ``CLINRAG_UPDATE_SCREENSHOTS=1`` to refresh docs/img/ui.png."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ..conftest import free_port

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="no headless browser: Debian's chromium and "
                       "chromium-driver are not installed (apt-get install -y chromium chromium-driver)"),
]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is first imported, as `clinrag ui` does
pytest.importorskip("gradio", reason="Gradio is not installed (pip install -e '.[ui]')")
pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")

REPO = Path(__file__).resolve().parents[2]
DEMO_CASES = REPO / "examples" / "demo" / "cases.jsonl"


@pytest.fixture(scope="module")
def ui_url(shared_data, medquad_index):
    """The page served in this process (so it reuses the components the other serving tests loaded)."""
    from clinrag.serving.ui import launch

    port = free_port()
    page = launch(port=port, index=str(medquad_index), case_files=[shared_data / "cases" / "medquad_multi_dev.jsonl"],
                  k=3, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        page.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1600",
                "--no-first-run", "--disable-background-networking", "--disable-component-update"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_clinician_answers_a_shared_case_and_compares_two_strategies(ui_url, browser, medquad_case, tmp_path,
                                                                       capfd):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = ui_url

    def css(selector: str) -> list:
        return browser.find_elements(By.CSS_SELECTOR, selector)

    n = len(medquad_case["questions"])
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda _: css("#run"))
    # The case file's first case is picked and shown, ready to edit.
    assert css("#scenario textarea")[0].get_attribute("value") == medquad_case["clinical_scenario"]
    assert css("#questions textarea")[0].get_attribute("value").splitlines()[0] == f"1. {medquad_case['questions'][0]}"

    css("#compare input[type=checkbox]")[0].click()
    css("#run")[0].click()
    WebDriverWait(browser, 300).until(lambda _: len(css("#result-b .answer")) == n)

    answers = css("#result-a .answer")
    assert [a.find_element(By.TAG_NAME, "h4").text for a in answers] == [
        f"{i}. {q}" for i, q in enumerate(medquad_case["questions"], 1)]
    assert all(a.find_elements(By.CSS_SELECTOR, "details.source") for a in answers)
    assert css("#result-a .clinrag-result")[0].get_attribute("data-strategy") == "decomposition"
    assert css("#result-b .clinrag-result")[0].get_attribute("data-strategy") == "none"
    progress = css("#progress-a")[0].text
    assert progress.count("Passages retrieved") == n and "Response composed" in progress

    # A source opens to its passage text; the evidence is in the index, so some answer cites a gold passage.
    first = answers[0].find_element(By.CSS_SELECTOR, "details.source")
    first.find_element(By.TAG_NAME, "summary").click()
    passage = first.find_element(By.CSS_SELECTOR, ".passage")
    WebDriverWait(browser, 10).until(lambda _: passage.is_displayed())
    assert len(passage.text) > 40 and "not available" not in passage.text
    cited = {d.get_attribute("data-id") for d in css("#result-a details.source")}
    assert cited & {pid for gold in medquad_case["evidence"] for pid in gold}

    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1400, min(max(height, 1600), 4000))
    shot = tmp_path / "ui.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("CLINRAG_UPDATE_SCREENSHOTS") == "1":
        (REPO / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "img" / "ui.png")

    # Upload another case file: its first case replaces the one in the boxes.
    upload = css("#case-upload input[type=file]")[0]
    upload.send_keys(str(DEMO_CASES))
    first_demo = DEMO_CASES.read_text(encoding="utf-8").splitlines()[0]
    WebDriverWait(browser, 30).until(
        lambda _: css("#scenario textarea")[0].get_attribute("value") in first_demo
        and css("#scenario textarea")[0].get_attribute("value") != medquad_case["clinical_scenario"])

    out, err = capfd.readouterr()  # everything the page's server printed or logged while it answered
    assert medquad_case["clinical_scenario"] not in out + err and medquad_case["questions"][1] not in out + err
