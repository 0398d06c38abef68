"""report.html in a real browser (headless Chromium through Selenium): the table and the chart
render, sorting and filtering work, and nothing is fetched from the network."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kgqa_validator.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "audit"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("audit")
    code = main(["audit", str(FIXTURES / "pairs_tiny.jsonl"), "--out", str(out), "--quiet",
                 "--question-field", "text", "--sparql-field", "query", "--id-field", "qid",
                 "--no-plugins"])
    assert code == 1
    return out / "report.html"


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no Chromium/chromedriver on this machine (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--proxy-server=127.0.0.1:9"):  # nothing may load
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _scores(driver) -> list[float]:
    from selenium.webdriver.common.by import By

    values = []
    for row in driver.find_elements(By.CSS_SELECTOR, "#pairs tbody tr"):
        raw = row.get_attribute("data-score")
        values.append(float(raw) if raw else float("-inf"))
    return values


def test_report_renders_table_chart_and_sorts(report, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(report.as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#pairs tbody tr")
    assert len(rows) >= 10 and all(r.is_displayed() for r in rows)
    bars = browser.find_elements(By.CSS_SELECTOR, "#histogram rect.bar")
    assert len(bars) == 24 and any(float(b.get_attribute("height")) > 0 for b in bars)
    assert browser.find_element(By.ID, "histogram").size["width"] > 300
    reasons = browser.find_elements(By.CSS_SELECTOR, "#reasons tbody tr")
    assert any("question_missing" in r.text for r in reasons)
    # Diagnostics are marked inside the query text.
    marks = browser.find_elements(By.CSS_SELECTOR, "#pairs mark.error")
    assert any(m.text == "foo:P26" for m in marks)

    header = browser.find_element(By.CSS_SELECTOR, '#pairs th[data-key="score"]')
    header.click()
    ascending = _scores(browser)
    assert ascending == sorted(ascending) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    descending = _scores(browser)
    assert descending == sorted(descending, reverse=True) and descending != ascending
    browser.find_element(By.CSS_SELECTOR, '#pairs th[data-key="id"]').click()
    ids = [r.get_attribute("data-id") for r in browser.find_elements(By.CSS_SELECTOR, "#pairs tbody tr")]
    assert ids == sorted(ids, key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))

    select = browser.find_element(By.ID, "reason-filter")
    select.find_element(By.CSS_SELECTOR, 'option[value="syntax_error"]').click()
    visible = [r for r in browser.find_elements(By.CSS_SELECTOR, "#pairs tbody tr") if r.is_displayed()]
    assert visible and all("syntax_error" in r.get_attribute("data-reasons") for r in visible)
    assert "shown" in browser.find_element(By.ID, "shown").text
    browser.save_screenshot(str(tmp_path / "report.png"))
    assert browser.get_log("browser") == [] or all(
        "Failed to load" not in entry["message"] for entry in browser.get_log("browser"))
