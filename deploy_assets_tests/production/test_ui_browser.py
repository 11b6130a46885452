"""The Dagster UI as a person uses it, in headless Chromium (Debian's `chromium`, driven by
Playwright; no browser is downloaded).

After a real dev release, `dagster dev` serves the instance: the asset graph shows the release
stages, the release partition of an image asset shows the digest the registry holds, and the
tag sensor is running. Screenshots of each page are kept in the test's tmp dir.
"""

import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from deploy_assets.local import stack as local_stack
from deploy_assets_tests.production import deployment

expect.set_options(
    timeout=60_000
)  # the UI loads its data over GraphQL after the page; 2 busy cores

TAG = "v0.1.0-alpha.1"
PARTITION = f"dev|{TAG}"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 60_000


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _skip_community_dialog(page: Page) -> None:
    """A first visit opens "Join the Dagster community" over the page; its Skip button closes it."""
    skip = page.get_by_role("button", name="Skip")
    skip.wait_for(state="visible", timeout=UI_TIMEOUT_MS)
    skip.click()
    expect(page.get_by_text("Join the Dagster community")).to_have_count(0)


@pytest.fixture
def dagster_ui(harness, tmp_path):
    """`dagster dev` (webserver + daemon) on the harness's instance, after one dev release."""
    outcome = harness.release(TAG)
    assert outcome.success, outcome.error
    state = tmp_path / "ui"
    workspace = deployment.write_workspace(state / "workspace.yaml")
    port = local_stack.free_port()
    env = deployment.deployment_env(harness.settings, Path(harness.instance.root_directory))
    pidfile = deployment.start_process(
        [
            str(deployment.BIN / "dagster"),
            "dev",
            "-w",
            str(workspace),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env,
        state,
        "dagster-dev",
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deployment.wait_for(
            lambda: _answers(f"{url}/server_info"), 180, "dagster dev to answer", pidfile
        )
        yield url
    finally:
        deployment.stop(pidfile)


def test_ui_shows_the_release_its_image_digest_and_the_running_sensor(
    harness, dagster_ui, tmp_path
):
    digest = harness.metadata("image/ms_core", PARTITION)["digest"]
    assert harness.registry.manifest_digest("ms_core", TAG) == digest
    shots = tmp_path / "screenshots"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)

            # The asset graph: the release stages are its groups.
            page.goto(f"{dagster_ui}/asset-groups")
            _skip_community_dialog(page)
            expect(page.get_by_text("Global asset lineage")).to_be_visible()
            for group in ("release", "binaries", "images", "artifacts", "deploy"):
                expect(
                    page.get_by_role("button", name=f"asset_group {group} {group}")
                ).to_be_visible()
            page.screenshot(path=shots / "asset-graph.png")

            # The images group's graph has one node per service image.
            page.goto(f"{dagster_ui}/locations/deploy_assets/asset-groups/images")
            for name in ("ms_chat", "ms_core", "ms_payments", "cli_core"):
                expect(page.get_by_text(name, exact=True).first).to_be_visible()
            page.screenshot(path=shots / "images-group.png")

            # The release partition of image/ms_core, opened as a person would: Partitions tab,
            # env, version. Its metadata holds the digest the registry serves.
            page.goto(f"{dagster_ui}/assets/image/ms_core")
            page.get_by_role("tab", name="Partitions").click()
            page.get_by_text("dev", exact=True).first.click()
            page.get_by_text(TAG, exact=True).first.click()
            expect(page.get_by_text(PARTITION, exact=True).first).to_be_visible()
            metadata = page.locator("tr", has=page.get_by_text("digest", exact=True))
            expect(metadata.first).to_contain_text(digest)
            expect(
                page.locator("tr", has=page.get_by_text("ref", exact=True)).first
            ).to_contain_text(f"{harness.settings.registry}/ms_core:{TAG}")
            page.screenshot(path=shots / "image-partition.png", full_page=True)

            # The tag sensor, on by default, is running under the daemon: switched on, and ticking.
            page.goto(f"{dagster_ui}/automation")
            page.get_by_text("release_tags", exact=True).click()
            expect(page.get_by_text("Polls the source remote's tags", exact=False)).to_be_visible()
            running = page.locator("tr", has=page.get_by_text("Running", exact=True))
            expect(running.locator("input[type=checkbox]")).to_be_checked()
            expect(page.get_by_text("runs requested").first).to_be_visible()
            page.screenshot(path=shots / "sensor.png", full_page=True)
        finally:
            browser.close()
    assert sorted(p.name for p in shots.iterdir()) == [
        "asset-graph.png",
        "image-partition.png",
        "images-group.png",
        "sensor.png",
    ]
