"""Fixtures of the browser tests: Debian's headless Chromium driven by Selenium against pytest-django's live server.

The EHR runs at live_server.url (http://localhost:<port>) and the sample SMART app is registered on the other
loopback origin (http://127.0.0.1:<port>), so every call the app makes to the EHR is cross-origin, as it would
be for an app on its own server. A missing browser fails the tests; nothing is downloaded.
"""

import shutil
import tempfile
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from ehr.demo.apps import demo_apps_register, loopback_twin
from ehr.demo.population import patient_resources, practitioners_and_organization
from ehr.services import user_ensure
from fhirapi.store import resources_load

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
]  # fmt: skip
PROJECT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT / "artifacts" / "screenshots"
DOCS_SCREENSHOTS = PROJECT / "docs" / "screenshots"
PASSWORD = "pw-browser-1"
WAIT_SECONDS = 20


@pytest.fixture(scope="session")
def oidc_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def ehr(live_server, transactional_db, settings, oidc_key_pem):
    """The EHR at the live server: issuer and FHIR base on its URL, demo patients, users and the sample app."""
    settings.FHIRAPI = {**settings.FHIRAPI, "BASE_URL": live_server.url + "/fhir"}
    settings.SMART = {**settings.SMART, "PUBLIC_ROOT_URL": live_server.url}
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_ISS_ENDPOINT": live_server.url + "/o",
        "OAUTH2_VALIDATOR_CLASS": "smart.validators.SmartOAuth2Validator",
        "OIDC_RSA_PRIVATE_KEY": settings.OAUTH2_PROVIDER.get("OIDC_RSA_PRIVATE_KEY") or oidc_key_pem,
    }
    resources_load(practitioners_and_organization())
    for index in range(5):
        resources_load(patient_resources(index, today=date.today()))
    user_ensure(username="clinician", password=PASSWORD, fhir_user="Practitioner/pract-1", first_name="Grace",
                last_name="Hopper")  # fmt: skip
    user_ensure(username="patient", password=PASSWORD, fhir_user="Patient/pat-0")
    user_ensure(username="admin", password=PASSWORD, is_superuser=True, first_name="Ada", last_name="Admin")
    demo_apps_register(live_server.url, loopback_twin(live_server.url))
    return live_server.url


@pytest.fixture
def browser():
    """A fresh headless Chromium with its own profile; fails (never skips) when Chromium is not installed."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            f"Browser tests need {CHROMIUM} and {CHROMEDRIVER}: apt-get install -y chromium chromium-driver"
        )
    profile = tempfile.mkdtemp(prefix="ehr-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------- helpers


def wait_for(driver: WebDriver, css: str, *, text: str | None = None, seconds: int = WAIT_SECONDS):
    """The first element matching `css` once visible (and containing `text`, when given)."""
    condition = (
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
        if text
        else ec.visibility_of_element_located((By.CSS_SELECTOR, css))
    )
    try:
        WebDriverWait(driver, seconds).until(condition)
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text[:2000]
        where = driver.execute_script("return location.href")
        logs = "\n".join(e["message"][:300] for e in driver.get_log("browser"))
        raise AssertionError(
            f"{css!r} (text {text!r}) did not appear at {where}; page says:\n{body}\n{logs}"
        ) from None
    return driver.find_element(By.CSS_SELECTOR, css)


def login(driver: WebDriver, base_url: str, username: str) -> None:
    driver.get(base_url + "/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(driver, ".account-name")


def screenshot(driver: WebDriver, name: str, *, docs: bool = False, height: int | None = None) -> Path:
    """Save a PNG artifact (and, for the README's pictures, a copy under docs/screenshots/).

    With `height`, the window is made that tall for the picture (a whole chart page), then restored.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = driver.get_window_size()
    if height:
        driver.set_window_size(size["width"], height)
    saved = driver.save_screenshot(str(path))
    if height:
        driver.set_window_size(size["width"], size["height"])
    assert saved, f"could not save {path}"
    if docs:
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / f"{name}.png")
    return path


def switch_to_new_window(driver: WebDriver, known: set[str]) -> str:
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: set(d.window_handles) - known)
    handle = (set(driver.window_handles) - known).pop()
    driver.switch_to.window(handle)
    return handle


def console_errors(driver: WebDriver, *, allowed: tuple[str, ...] = ()) -> list[str]:
    """SEVERE console messages, except those containing one of `allowed`."""
    messages = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return [m for m in messages if not any(a in m for a in allowed)]


def consent(driver: WebDriver, *, allow: bool = True, untick: tuple[str, ...] = ()) -> None:
    """Answer the consent screen shown in the current frame or window."""
    wait_for(driver, "button[name=allow]")
    for scope in untick:
        box = driver.find_element(By.CSS_SELECTOR, f"input[name=scope][value='{scope}']")
        if box.is_selected():
            box.click()
    driver.find_element(By.CSS_SELECTOR, "button[name=allow]" if allow else "button[name=deny]").click()
