"""End to end in headless Chromium: a clinician's chart launches the sample SMART app (embedded and in a window),
a patient launches it standalone with less consent, a denied consent, and the developer launcher's timeline."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import (
    WAIT_SECONDS,
    consent,
    console_errors,
    login,
    screenshot,
    switch_to_new_window,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Chromium warns (not errs) that an iframe with allow-scripts + allow-same-origin can lift its sandbox when the
# framed page is the EHR's own /authorize; a real app's pages are cross-origin and do not trigger it.


def open_chart(driver, base_url: str, family: str) -> None:
    driver.get(base_url + "/patients/")
    search = driver.find_element(By.NAME, "q")
    search.send_keys(family)
    search.submit()
    wait_for(driver, ".patient-link").click()
    wait_for(driver, ".banner-name")


def test_clinician_launches_the_app_inside_the_chart(ehr, browser):
    # given a clinician signed in, on a patient's chart
    login(browser, ehr, "clinician")
    browser.get(ehr + "/patients/pat-4/")
    name = wait_for(browser, ".banner-name").text
    assert wait_for(browser, ".allergy-alert").text.endswith("Allergies: Allergy to bee venom")
    wait_for(browser, "#vital-chart-bp")
    screenshot(browser, "chart", docs=True, height=1700)
    # when they click the sample app's button
    browser.find_element(By.CSS_SELECTOR, "button[data-client-id=sample-smart-app]").click()
    frame = wait_for(browser, "iframe#app-frame")
    assert "launch=" in frame.get_attribute("src") and "iss=" in frame.get_attribute("src")
    browser.switch_to.frame(frame)
    # then the consent screen shows inside the chart, without a second login
    wait_for(browser, "button[name=allow]")
    browser.switch_to.default_content()
    screenshot(browser, "consent-embedded", docs=True)
    browser.switch_to.frame(frame)
    consent(browser)
    # and the app knows the patient and plots their vitals
    wait_for(browser, "#patient-name", text=name)
    wait_for(browser, "figure.plot[data-vital=bp] svg polyline")
    assert '"need_patient_banner": false' in browser.find_element(By.ID, "context").get_attribute(
        "textContent"
    )
    # when the app records a heart rate (patient/Observation.c)
    browser.find_element(By.ID, "heart-rate").send_keys("123")
    browser.find_element(By.CSS_SELECTOR, "#record-form button").click()
    wait_for(browser, "#record-status", text="Saved (Observation/")
    wait_for(browser, "tr[data-vital=hr]", text="123 /min")
    browser.execute_script("window.scrollTo(0, 0)")
    browser.switch_to.default_content()
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "app-embedded", docs=True)
    assert console_errors(browser) == []
    # then the chart shows the app's new value at once
    browser.get(ehr + "/patients/pat-4/")
    assert wait_for(browser, "li.vital-tile[data-vital=hr] .vital-value").text == "123 /min"


def test_clinician_launches_the_app_in_a_new_window(ehr, browser):
    login(browser, ehr, "clinician")
    open_chart(browser, ehr, "Miller")
    name = browser.find_element(By.CSS_SELECTOR, ".banner-name").text
    chart_window = browser.current_window_handle
    browser.find_element(By.CSS_SELECTOR, "button[data-client-id=sample-smart-app-window]").click()
    switch_to_new_window(browser, {chart_window})
    consent(browser)
    wait_for(browser, "#patient-name", text=name)
    wait_for(browser, "figure.plot svg polyline")
    # a window launch asks the app to show its own patient banner
    assert '"need_patient_banner": true' in browser.find_element(By.ID, "context").get_attribute(
        "textContent"
    )
    assert browser.find_element(By.ID, "patient-facts").text
    assert browser.current_url.startswith(ehr.replace("localhost", "127.0.0.1"))  # the app is cross-origin
    screenshot(browser, "app-window", docs=True)
    assert console_errors(browser) == []


def test_patient_standalone_launch_with_a_scope_refused(ehr, browser):
    # given the patient signed in to the portal
    login(browser, ehr, "patient")
    browser.get(ehr + "/portal/")
    wait_for(browser, "a.standalone-link[data-client-id=sample-smart-app-patient]")
    screenshot(browser, "portal", docs=True)
    portal = browser.current_window_handle
    # when they start the app on its own (iss only) and untick reading observations
    browser.find_element(
        By.CSS_SELECTOR, "a.standalone-link[data-client-id=sample-smart-app-patient]"
    ).click()
    switch_to_new_window(browser, {portal})
    assert "launch=" not in browser.current_url
    wait_for(browser, "button[name=allow]")
    screenshot(browser, "consent-patient", docs=True)
    consent(browser, untick=("patient/Observation.rs",))
    # then the app has their own record but is refused their observations
    wait_for(browser, "#patient-name")
    error = wait_for(browser, "#vitals-error", text="access refused")
    assert "Vital signs" in error.text
    assert browser.find_elements(By.CSS_SELECTOR, "figure.plot") == []
    screenshot(browser, "app-scope-refused")
    assert console_errors(browser, allowed=("the server responded with a status of 403",)) == []


def test_denied_consent_shows_the_apps_error(ehr, browser):
    login(browser, ehr, "clinician")
    browser.get(ehr + "/patients/pat-1/")
    chart_window = browser.current_window_handle
    wait_for(browser, "button[data-client-id=sample-smart-app-window]").click()
    switch_to_new_window(browser, {chart_window})
    consent(browser, allow=False)
    status = wait_for(browser, "#status.error", text="access_denied")
    assert status.text.startswith("The app could not start")
    assert browser.find_element(By.ID, "vitals").is_displayed() is False
    screenshot(browser, "app-denied")


def test_developer_launcher_shows_the_timeline_of_a_launch(ehr, browser):
    login(browser, ehr, "admin")
    browser.get(ehr + "/dev/launcher/")
    wait_for(browser, "#id_client")
    browser.find_element(By.CSS_SELECTOR, "#id_client option[value=sample-smart-app-window]").click()
    browser.find_element(By.CSS_SELECTOR, "#id_user option[value=admin]").click()
    patient = browser.find_element(By.ID, "id_patient_id")
    patient.clear()
    patient.send_keys("pat-2")
    browser.find_element(By.CSS_SELECTOR, "#id_mode option[value=window]").click()
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit].btn-primary").click()
    url = wait_for(browser, "#launch-url").text
    assert "iss=" in url and "launch=" in url
    launcher = browser.current_window_handle
    browser.find_element(By.ID, "launch-link").click()
    switch_to_new_window(browser, {launcher})
    consent(browser)
    wait_for(browser, "#patient-name")
    wait_for(browser, "figure.plot")
    browser.close()
    browser.switch_to.window(launcher)
    # the timeline refreshes itself: the token shows up with its scopes and context, never the token itself
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".timeline-event[data-kind=token-issued]")
    )
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".timeline-event[data-kind=fhir-call]")
    )
    timeline = browser.find_element(By.ID, "timeline").text
    kinds = [e.get_attribute("data-kind") for e in browser.find_elements(By.CSS_SELECTOR, ".timeline-event")]
    assert kinds[0] == "launch-created"
    assert {"authorize-request", "consent", "token-issued", "fhir-call"} <= set(kinds)
    assert "patient/Observation.rs" in timeline
    assert "GET /fhir/Patient/pat-2 → 200" in timeline
    assert "access_token" not in timeline
    screenshot(browser, "developer-timeline", docs=True)
