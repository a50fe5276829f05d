"""Headless Chromium (Debian's, with its chromedriver) playing the emulation page until the last segment is
in; run inside the link's network namespace by emulate.py. Writes what the page collected as JSON and a
screenshot of the page.

    python -m emulation.driver --url URL --output result.json --screenshot page.png --timeout-s 600
"""
import argparse
import json
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    args = parser.parse_args(argv)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=800,600", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        browser.get(args.url)
        deadline, result = time.monotonic() + args.timeout_s, None
        while time.monotonic() < deadline:
            result = browser.execute_script("return window.trailblazer || null;")
            if result and (result["done"] or result["error"]):
                break
            time.sleep(0.5)
        else:
            result = {**(result or {}), "error": f"the player did not finish within {args.timeout_s:.0f} s"}
        if args.screenshot:
            browser.save_screenshot(str(args.screenshot))
    finally:
        browser.quit()
    args.output.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
