"""Take the README's dashboard screenshots: docs/screenshots/run.png and review.png.

A throwaway workspace processes the bundled RUN-G5-001 export (its run waits for
review under the default auto-verification rule), `saa-lab serve` serves it, and the
system Chromium (Playwright) logs in and photographs the run page and the review
queue.

    python tools/screenshots.py [--chromium /usr/bin/chromium] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPORT = REPO / "sample_files" / "biotek_gen5" / "RUN-G5-001.txt"
PASSWORD = "screenshot-password"
VIEWPORT = {"width": 1360, "height": 900}


def workspace(folder: Path) -> Path:
    from werkzeug.security import generate_password_hash

    config = folder / "saa-lab.toml"
    config.write_text(
        '[lab]\nname = "Reference Laboratory"\ntimezone = "Europe/Berlin"\n\n'
        "[reports]\nformats = []\n\n"
        '[[users]]\nname = "amoss"\nfull_name = "Ada Moss"\nroles = ["reviewer", "approver"]\n'
        f'password_hash = "{generate_password_hash(PASSWORD)}"\n',
        encoding="utf-8",
    )
    subprocess.run(
        [sys.executable, "-m", "saa_lab", "--config", str(config), "process", str(EXPORT)],
        check=True,
        capture_output=True,
    )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="saa-lab-shots-") as temp:
        config = workspace(Path(temp))
        server = subprocess.Popen(
            [sys.executable, "-m", "saa_lab", "--config", str(config), "serve", "--port", "0",
             "--json"],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            url = json.loads(server.stdout.readline())["url"]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium)
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(url + "login")
                page.fill("input[name=username]", "amoss")
                page.fill("input[name=password]", PASSWORD)
                page.click("form.login button")

                page.goto(url + "runs/1")
                curve = page.locator("#chart-curve").bounding_box()
                assert curve is not None, "no standard curve on the run page"
                # The run's header, its release/reject forms, the report's top and curve.
                height = curve["y"] + curve["height"] + 16
                page.screenshot(
                    path=str(args.out / "run.png"),
                    full_page=True,
                    clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height},
                )
                page.goto(url + "review")
                page.screenshot(path=str(args.out / "review.png"), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    for name in ("run.png", "review.png"):
        print(args.out / name)


if __name__ == "__main__":
    main()
