"""`jax-spatial bench review`: the server (files, verdicts, path traversal) and the page in a
real headless browser.

Server tests run a `ThreadingHTTPServer` on a free port over a hand-written six-item benchmark
and talk to it with `http.client`, which sends paths exactly as written (no `..` folding), so
traversal attempts reach the server as an attacker would send them. The browser test builds a
small procedural benchmark, drives Debian's chromium through chromium-driver with selenium,
marks items from the keyboard, reloads, and checks the marks came back from the server. It
skips when chromium, chromium-driver or selenium are missing (scripts/setup.sh installs them)
and fails then when `CI=true`.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import pathlib
import shutil
import threading

import pytest
from PIL import Image

from jax_spatial import cli
from jax_spatial.benchmark import review, verdicts

TASKS = ("position", "position", "size", "size", "counting", "existence")
FORMATS = ("caption/raw", "ref/boxes", "caption/raw", "ref/boxes", "caption/raw", "ref/raw")


def write_bench(folder: pathlib.Path) -> list[dict]:
    """Six items with one PNG each; what `bench build` writes, by hand."""
    (folder / "images").mkdir(parents=True)
    items = []
    for k, (task, fmt) in enumerate(zip(TASKS, FORMATS, strict=True)):
        name = f"images/frame_{k}.png"
        Image.new("RGB", (8, 6), (40 * k, 10, 200)).save(folder / name)
        items.append({
            "id": f"s/scene{k}/view/0" + ("" if fmt == "caption/raw" else f"@{fmt}"),
            "images": [name], "question": f"Is <ref>the cup</ref> {k} left?",
            "answer": "Yes.", "canonical": "yes", "choices": [], "task": task,
            "relation": "left_of", "format": fmt, "answer_type": "yes_no", "source": "s",
            "scene": f"scene{k}", "meta": {"frame_id": "view"},
        })  # fmt: skip
    (folder / "bench.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    return items


class Served:
    """A review server on a free port, serving in a thread until `close`."""

    def __init__(self, folder: pathlib.Path):
        self.state = review.ReviewState(folder)
        self.server = review.make_server(self.state, "127.0.0.1", 0)
        self.port = self.server.server_address[1]
        self.url = review.page_url(self.server)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def request(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def bench(tmp_path):
    folder = tmp_path / "bench"
    items = write_bench(folder)
    served = Served(folder)
    yield folder, items, served
    served.close()


def test_page_items_and_images_are_served(bench):
    folder, items, served = bench
    status, body = served.request("GET", "/")
    assert status == 200 and b"/static/review.js" in body
    for name in ("review.js", "review.css"):
        assert served.request("GET", f"/static/{name}")[0] == 200
    status, body = served.request("GET", "/api/bench")
    assert status == 200 and json.loads(body)["items"] == items
    status, body = served.request("GET", "/bench/images/frame_3.png")
    assert status == 200 and body == (folder / "images/frame_3.png").read_bytes()


def test_nothing_outside_the_benchmark_is_served(bench, tmp_path):
    folder, _, served = bench
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    (folder / "link.txt").symlink_to(secret)
    (folder / "images" / "link_dir").symlink_to(tmp_path, target_is_directory=True)
    attempts = [
        "/bench/../secret.txt",
        "/bench/images/../../secret.txt",
        "/bench/%2e%2e/secret.txt",
        "/bench/%2e%2e%2fsecret.txt",
        "/bench/images%2f..%2f..%2fsecret.txt",
        "/bench/..%5csecret.txt",
        f"/bench/{secret}",
        f"/bench//{secret}",
        f"/bench/%2f{str(secret).lstrip('/')}",
        "/bench/link.txt",
        "/bench/images/link_dir/secret.txt",
        "/bench/images",
        "/bench/%00",
        "/static/../review.py",
        "/static/%2e%2e/review.py",
        "/static/..%2fverdicts.py",
        "/../secret.txt",
        "/secret.txt",
    ]
    for path in attempts:
        status, body = served.request("GET", path)
        assert status == 404, path
        assert b"TOP SECRET" not in body and b"import" not in body, path


def test_a_verdict_is_on_disk_before_the_reply(bench):
    folder, items, served = bench
    path = folder / "verdicts.json"
    status, body = served.request(
        "POST", "/api/verdict", {"id": items[1]["id"], "verdict": "reject"}
    )
    assert status == 200 and json.loads(body)["progress"]["reviewed"] == 1
    saved = json.loads(path.read_text())
    assert saved["version"] == 1 and list(saved["verdicts"]) == [items[1]["id"]]
    entry = saved["verdicts"][items[1]["id"]]
    assert entry["verdict"] == "reject"
    assert datetime.datetime.fromisoformat(entry["time"]).tzinfo is not None
    assert entry["digest"] == verdicts.item_digest(folder, items[1])
    status, body = served.request("GET", "/api/verdicts")
    assert json.loads(body)["verdicts"] == {items[1]["id"]: "reject"}
    assert verdicts.load_verdicts(folder) == {items[1]["id"]: "reject"}
    # null clears the mark.
    assert served.request("POST", "/api/verdict", {"id": items[1]["id"], "verdict": None})[0] == 200
    assert json.loads(path.read_text())["verdicts"] == {}


@pytest.mark.parametrize(
    "body, status",
    [
        ({"id": "no/such/item", "verdict": "accept"}, 404),
        ({"id": "s/scene0/view/0", "verdict": "maybe"}, 400),
        (b"{not json", 400),
        (b"[1, 2]", 400),
    ],
)
def test_bad_verdict_requests_change_nothing(bench, body, status):
    folder, items, served = bench
    served.request("POST", "/api/verdict", {"id": items[0]["id"], "verdict": "accept"})
    before = (folder / "verdicts.json").read_bytes()
    got, reply = served.request("POST", "/api/verdict", body)
    assert got == status and "error" in json.loads(reply)
    assert (folder / "verdicts.json").read_bytes() == before


def test_two_pages_writing_at_once_lose_nothing(bench):
    """Two servers on one benchmark, six writers: every last verdict is in the file."""
    folder, items, served = bench
    other = Served(folder)
    cycle = verdicts.VERDICTS
    last = {}

    def writer(k: int) -> None:
        target = served if k % 2 else other
        for n in range(15):
            verdict = cycle[(n + k) % 3]
            status, _ = target.request("POST", "/api/verdict", {"id": items[k]["id"],
                                                                "verdict": verdict})  # fmt: skip
            assert status == 200
        last[items[k]["id"]] = cycle[(14 + k) % 3]

    try:
        threads = [threading.Thread(target=writer, args=(k,)) for k in range(len(items))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        other.close()
    assert verdicts.load_verdicts(folder) == last
    assert len(last) == len(items)


def test_a_failed_write_keeps_the_previous_file(bench, monkeypatch):
    folder, items, served = bench
    verdicts.set_verdict(folder, items[0]["id"], "accept")
    before = (folder / "verdicts.json").read_bytes()

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(verdicts.os, "fsync", disk_full)
    status, body = served.request(
        "POST", "/api/verdict", {"id": items[1]["id"], "verdict": "accept"}
    )
    assert status == 500 and "No space" in json.loads(body)["error"]
    assert (folder / "verdicts.json").read_bytes() == before


def test_a_verdict_on_a_changed_item_no_longer_counts(bench):
    folder, items, served = bench
    for item in items[:2]:
        served.request("POST", "/api/verdict", {"id": item["id"], "verdict": "accept"})
    changed = [dict(items[0], question="Is the cup right?"), *items[1:]]
    (folder / "bench.jsonl").write_text("".join(json.dumps(i) + "\n" for i in changed))
    assert verdicts.load_verdicts(folder) == {items[1]["id"]: "accept"}
    assert review.ReviewState(folder).verdicts() == {items[1]["id"]: "accept"}


# ------------------------------------------------------------------------------ the browser


def _browser():
    """A headless chromium driven by selenium; skips (fails on CI) when one is missing."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        message = (
            f"the browser test needs {', '.join(missing)}: scripts/setup.sh installs Debian's "
            "chromium and chromium-driver"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,900"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


@pytest.fixture(scope="module")
def real_bench(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review") / "bench"
    code = cli.main(["bench", "build", "--source", "procedural", "--set", "num_scenes=12",
                     "--set", "width=128", "--set", "height=96", "--max-scenes", "1",
                     "--per-cell", "2", "--out", str(folder), "--quiet"])  # fmt: skip
    assert code == 0
    return folder


@pytest.mark.slow
def test_marks_from_the_keyboard_survive_a_reload(real_bench):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    items = verdicts.read_items(real_bench)
    assert len({i["task"] for i in items}) >= 2 and len(items) >= 10
    served = Served(real_bench)
    driver = _browser()
    wait = WebDriverWait(driver, 20)

    def ready():
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
                   == "true")  # fmt: skip

    def press(key):
        driver.find_element(By.TAG_NAME, "body").send_keys(key)

    def marks_shown():
        return {
            row.get_attribute("data-id"): row.get_attribute("data-verdict")
            for row in driver.find_elements(By.CSS_SELECTOR, "#list li[data-verdict]")
        }

    try:
        driver.get(served.url)
        ready()
        assert (
            driver.find_element(By.TAG_NAME, "body").get_attribute("data-current") == items[0]["id"]
        )
        image = driver.find_element(By.CSS_SELECTOR, "#images img")
        assert driver.execute_script("return arguments[0].complete", image)
        assert driver.execute_script("return arguments[0].naturalWidth", image) == 128
        for key in ("a", "r", "u"):  # each mark moves on to the next item
            press(key)
        wait.until(lambda d: len(verdicts.read_entries(real_bench)) == 3)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-pending")
                   == "0")  # fmt: skip
        want = {items[0]["id"]: "accept", items[1]["id"]: "reject", items[2]["id"]: "unsure"}
        assert verdicts.load_verdicts(real_bench) == want

        driver.refresh()
        ready()
        assert marks_shown() == want
        progress = driver.find_element(By.ID, "progress").text
        assert progress.startswith(f"3 / {len(items)} reviewed · 1 accept · 1 reject · 1 unsure")
        press("k")  # back to the third item: its badge says what was saved
        assert driver.find_element(By.ID, "verdict").text == "unsure"

        # Filters: only the chosen task's rows stay, and the item shown is one of them.
        task = items[-1]["task"]
        Select(driver.find_element(By.ID, "task-filter")).select_by_value(task)
        rows = [r for r in driver.find_elements(By.CSS_SELECTOR, "#list li") if r.is_displayed()]
        assert len(rows) == sum(i["task"] == task for i in items)
        assert {r.get_attribute("data-task") for r in rows} == {task}
        current = driver.find_element(By.TAG_NAME, "body").get_attribute("data-current")
        assert next(i for i in items if i["id"] == current)["task"] == task
        fmt = items[-1]["format"]
        Select(driver.find_element(By.ID, "format-filter")).select_by_value(fmt)
        rows = [r for r in driver.find_elements(By.CSS_SELECTOR, "#list li") if r.is_displayed()]
        assert len(rows) == sum(i["task"] == task and i["format"] == fmt for i in items) > 0
        press("j")  # keys still move once a filter was chosen (the select gave focus back)
        Select(driver.find_element(By.ID, "task-filter")).select_by_value("")
        Select(driver.find_element(By.ID, "format-filter")).select_by_value("")
        Select(driver.find_element(By.ID, "verdict-filter")).select_by_value("unsure")
        rows = [r for r in driver.find_elements(By.CSS_SELECTOR, "#list li") if r.is_displayed()]
        assert [r.get_attribute("data-id") for r in rows] == [items[2]["id"]]
        assert driver.find_element(By.ID, "question").text == items[2]["question"]
    finally:
        driver.quit()
        served.close()
