"""The main job in a real browser: headless Chromium through selenium logs in at the provider,
reaches the upstream, opens the dashboard, signs out, and meets the 403 page. Screenshots go to
artifacts/ at the repository root."""
import shutil
import time

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

WAIT_SECONDS = 20


@pytest.fixture
def browser(tmp_path):
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("chromium and chromedriver are missing; run scripts/bootstrap.sh as root")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--host-resolver-rules=MAP *.example.test 127.0.0.1", "--ignore-certificate-errors",
        "--window-size=1100,900", f"--user-data-dir={tmp_path / 'profile'}",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--no-default-browser-check", "--metrics-recording-only",
    ):
        options.add_argument(argument)
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        try:
            driver.quit()
        except WebDriverException:
            pass


def wait_until(driver, condition, message):
    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.1).until(condition, message)


def log_in_at_provider(driver, issuer, user, screenshot=None):
    wait_until(driver, lambda d: d.current_url.startswith(issuer), f"the provider's page at {issuer}")
    field = wait_until(driver, expected_conditions.presence_of_element_located((By.NAME, "sub")), "login form")
    if screenshot:
        driver.save_screenshot(str(screenshot))
    field.clear()
    field.send_keys(user)
    field.submit()


def test_login_dashboard_and_sign_out(browser, stack, provider, artifacts):
    app = stack()
    target = app.url("app", "/reports/2024?page=2&sort=name")
    browser.get(target)
    log_in_at_provider(browser, provider, "alice", screenshot=artifacts / "e2e-provider-login.png")
    wait_until(browser, lambda d: d.current_url == target, f"the return to {target}")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Hello from the demo upstream" in body
    assert "verified" in body
    assert "NOT verified" not in body
    assert "alice@example.com" in body

    browser.get(app.url("app", "/.pomerium/"))
    wait_until(browser, lambda d: "alice@example.com" in d.find_element(By.TAG_NAME, "body").text, "the dashboard")
    browser.save_screenshot(str(artifacts / "e2e-dashboard.png"))

    browser.find_element(By.XPATH, "//form[@action='/.pomerium/sign_out']//button").click()
    time.sleep(0.2)
    browser.get(app.url("app", "/after-sign-out"))
    wait_until(browser, lambda d: d.current_url.startswith(provider), "a new login after sign-out")
    assert browser.find_elements(By.NAME, "sub")


def test_two_tabs_sign_in_in_either_order(browser, stack, provider):
    """Two tabs of one browser start sign-in to the same route before either finishes. Each adds
    its own entry to the route's sign-in cookie, so both complete, the later-started tab first,
    and each lands on its own page."""
    app = stack()
    first_target, second_target = app.url("app", "/tab/one"), app.url("app", "/tab/two")
    browser.get(first_target)
    wait_until(browser, lambda d: d.current_url.startswith(provider), "the first tab at the provider")
    first_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(second_target)
    log_in_at_provider(browser, provider, "alice")
    wait_until(browser, lambda d: d.current_url == second_target, f"the return to {second_target}")
    assert "alice@example.com" in browser.find_element(By.TAG_NAME, "body").text

    browser.switch_to.window(first_tab)
    log_in_at_provider(browser, provider, "alice")
    wait_until(browser, lambda d: d.current_url == first_target, f"the return to {first_target}")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Hello from the demo upstream" in body
    assert "alice@example.com" in body


def test_user_outside_the_policy_sees_the_403_page(browser, stack, provider, artifacts):
    app = stack()
    browser.get(app.url("app", "/"))
    log_in_at_provider(browser, provider, "mallory")
    wait_until(browser, lambda d: d.current_url.startswith(app.url("app", "/")), "the return to the app")
    wait_until(browser, lambda d: "403" in d.find_element(By.TAG_NAME, "body").text, "the 403 page")
    browser.save_screenshot(str(artifacts / "e2e-forbidden.png"))
    assert "Hello from the demo upstream" not in browser.page_source


def test_public_route_in_the_browser_needs_no_login(browser, stack):
    app = stack()
    browser.get(app.url("public", "/"))
    wait_until(browser, lambda d: "Hello from the demo upstream" in d.page_source, "the public page")
    assert browser.current_url == app.url("public", "/")
