"""The browser tests' fixtures: Debian's chromium driven by Selenium, and the console's
environment as tests/console sets it up (its variables, the security service with the first
administrator, the console pointed at it), taken from there rather than set up twice."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.console.conftest import console as console
from tests.console.conftest import security as security
from tests.console.conftest import serve_console as serve_console
from tests.console.conftest import test_env as test_env

BROWSER = next((b for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
DRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    assert BROWSER and DRIVER, "the console's browser tests need: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(BROWSER) or BROWSER
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=1400,1000",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
