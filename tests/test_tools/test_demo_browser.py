"""The browser demo (tools/demo/app.py) in a real, headless Chromium driven by Selenium: the
page loads, an uploaded image and a typed expression give the mask TextSegInferencer gives (equal
pixels, decoded from the page), a corrupt upload and an empty expression give readable errors on
the page, and the server answers afterwards; a no-target head's payload shows its message
instead of the drawing. Writes a screenshot to work_dirs/demo_browser/page.png and the timings
to work_dirs/demo_browser/timings.json.

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver, or
MMEVF_CHROMIUM / MMEVF_CHROMEDRIVER): tools/install/install_browser.sh (run by `make env`)
installs them where it can (root with apt-get). Elsewhere the test is skipped, saying why.
Selenium is given both paths, so Selenium Manager never tries to download a browser."""
import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch

from tests.conftest import force_no_target, free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = 'evf-tiny_synthref'
CHROMIUM = os.environ.get('MMEVF_CHROMIUM', '/usr/bin/chromium')
CHROMEDRIVER = os.environ.get('MMEVF_CHROMEDRIVER', '/usr/bin/chromedriver')
OUT_DIR = ROOT / 'work_dirs' / 'demo_browser'
INSTALL_HINT = ('tools/install/install_browser.sh installs them (as root, with apt-get: '
                '`apt-get install chromium chromium-driver`); `make env` runs it')

pytestmark = pytest.mark.slow


def browser_skip_reason():
    """Why the browser test cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'selenium is not installed (requirements/tests.txt; `make env` installs it)'
    missing = [path for path in (CHROMIUM, CHROMEDRIVER)
               if not (os.path.isfile(path) and os.access(path, os.X_OK))]
    if missing:
        why = ('not root' if os.geteuid() != 0 else
               'no apt-get' if shutil.which('apt-get') is None else
               'the install step did not run or apt-get failed')
        return (f'no browser for the demo test: {", ".join(missing)} missing ({why}); '
                f'{INSTALL_HINT}')
    return None


def get_json(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return json.load(reply)


@pytest.fixture(scope='module')
def server(request, synthref_root, tmp_path_factory):
    """The demo app in its own process, as a user starts it; its address."""
    reason = browser_skip_reason()
    if reason:
        pytest.skip(reason)
    tiny_checkpoint = request.getfixturevalue('tiny_checkpoint')
    port = free_port()
    log = tmp_path_factory.mktemp('demo_server') / 'server.log'
    # the same number of threads as this process: the reference masks are computed here
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(torch.get_num_threads()))
    cmd = [sys.executable, str(ROOT / 'tools' / 'demo' / 'app.py'), '--config', CONFIG,
           '--weights', str(tiny_checkpoint), '--tokenizer', str(synthref_root / 'tokenizer'),
           '--examples', str(synthref_root / 'images'), '--num-examples', '3',
           '--device', 'cpu', '--port', str(port)]
    with open(log, 'w') as log_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file,
                                stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    started = time.monotonic()
    try:
        # until it answers, it exits, or 300 s pass (a loaded machine under coverage took
        # over 120 s to start it; a healthy start waits no longer for the bound)
        while True:
            if proc.poll() is not None:
                pytest.fail(f'the demo server exited with {proc.returncode}:\n'
                            f'{log.read_text()[-3000:]}')
            try:
                if get_json(f'{url}/api/health', timeout=2)['status'] == 'ok':
                    break
            except OSError:
                pass
            if time.monotonic() - started > 300:
                pytest.fail(f'the demo server did not answer in 300 s:\n'
                            f'{log.read_text()[-3000:]}')
            time.sleep(0.2)
        yield dict(url=url, startup=time.monotonic() - started, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope='module')
def driver(server, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Flags that work offline and as root: no sandbox, no GPU, no background network.
    for flag in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
                 '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
                 '--disable-extensions', '--window-size=1280,1200',
                 f'--user-data-dir={tmp_path_factory.mktemp("chromium_profile")}'):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


def wait_for_state(browser, *states, timeout: float = 60) -> str:
    """Waits until the page's ``body[data-state]`` is one of ``states``; returns it."""
    from selenium.webdriver.support.ui import WebDriverWait
    script = 'return document.body.dataset.state || ""'
    WebDriverWait(browser, timeout, poll_frequency=0.02).until(
        lambda b: b.execute_script(script) in states,
        message=f'the page did not reach state {states}')
    return browser.execute_script(script)


def decode_data_url_png(url: str) -> np.ndarray:
    assert url.startswith('data:image/png;base64,'), url[:40]
    return mmcv.imfrombytes(base64.b64decode(url.split(',', 1)[1]), flag='unchanged')


def test_demo_in_chromium(server, driver, tiny_checkpoint, synthref_root, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from mmevf.apis import TextSegInferencer
    image = sorted((synthref_root / 'images').glob('*.jpg'))[5]
    text = 'the red circle'

    # load the page
    started = time.perf_counter()
    driver.get(server['url'] + '/')
    wait_for_state(driver, 'ready', timeout=30)
    page_load = time.perf_counter() - started
    assert 'evf-tiny_synthref' in driver.find_element(By.ID, 'model-info').text
    assert len(driver.find_elements(By.CSS_SELECTOR, '#examples img')) == 3

    # upload an image, type an expression, segment
    driver.find_element(By.ID, 'upload').send_keys(str(image))
    assert wait_for_state(driver, 'image', 'error') == 'image', \
        driver.find_element(By.ID, 'error').text
    driver.find_element(By.ID, 'texts').send_keys(text)
    started = time.perf_counter()
    driver.find_element(By.ID, 'segment').click()
    state = wait_for_state(driver, 'done', 'error')
    first_mask = time.perf_counter() - started
    assert state == 'done', driver.find_element(By.ID, 'error').text
    figures = driver.find_elements(By.CSS_SELECTOR, '#results figure.result')
    assert len(figures) == 1
    mask = decode_data_url_png(
        figures[0].find_element(By.CSS_SELECTOR, 'img.mask').get_attribute('src'))
    overlay = figures[0].find_element(By.CSS_SELECTOR, 'img.overlay')
    assert driver.execute_script('return arguments[0].complete && arguments[0].naturalWidth',
                                 overlay) > 0  # the drawing is shown
    caption = figures[0].find_element(By.TAG_NAME, 'figcaption').text

    reference = TextSegInferencer(CONFIG, weights=str(tiny_checkpoint),
                                  tokenizer=str(synthref_root / 'tokenizer'), device='cpu',
                                  show_progress=False)
    pred = reference(str(image), [text])['predictions'][0]
    np.testing.assert_array_equal(mask, pred['masks'][0].astype(np.uint8) * 255)
    assert text in caption and f'score {pred["scores"][0]:.3f}' in caption

    # the same image again, another expression: the embedding comes from the cache
    driver.find_element(By.ID, 'texts').send_keys('\nthe blue square')
    driver.find_element(By.ID, 'segment').click()
    assert wait_for_state(driver, 'done', 'error') == 'done'
    assert len(driver.find_elements(By.CSS_SELECTOR, '#results figure.result')) == 2
    assert 'reused from the cache' in driver.find_element(By.ID, 'status').text
    # a point (click) and a box (drag) on the image, when the inferencer takes them
    info = driver.execute_script('return state.info')
    controls = driver.find_element(By.ID, 'prompt-controls')
    if info['points'] and info['boxes']:
        assert controls.is_displayed()
        canvas = driver.find_element(By.ID, 'canvas')
        ActionChains(driver).move_to_element_with_offset(canvas, 30, 20).click().perform()
        ActionChains(driver).move_to_element_with_offset(canvas, -120, -100).click_and_hold() \
            .move_by_offset(100, 80).release().perform()
        points, box = driver.execute_script('return [state.points, state.box]')
        assert len(points) == 1 and points[0][2] == 1 and box is not None
        driver.find_element(By.ID, 'segment').click()
        assert wait_for_state(driver, 'done', 'error') == 'done', \
            driver.find_element(By.ID, 'error').text
        figures = driver.find_elements(By.CSS_SELECTOR, '#results figure.result')
        assert [f.find_element(By.CSS_SELECTOR, 'span.text').text for f in figures] == [
            'the red circle + 1 point(s) + a box', 'the blue square + 1 point(s) + a box']
        expected = reference(str(image), [text, 'the blue square'],
                             points=[[tuple(points[0])]] * 2, boxes=[tuple(box)] * 2)
        for figure, mask in zip(figures, expected['predictions'][0]['masks']):
            src = figure.find_element(By.CSS_SELECTOR, 'img.mask').get_attribute('src')
            np.testing.assert_array_equal(decode_data_url_png(src), mask.astype(np.uint8) * 255)
    else:  # an inferencer without points= / boxes=: the controls are hidden
        assert not controls.is_displayed()

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    screenshot = OUT_DIR / 'page.png'
    height = driver.execute_script('return document.documentElement.scrollHeight')
    driver.set_window_size(1280, height + 200)  # the whole page, masks included
    assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0

    # a corrupt upload: a readable error on the page
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'\xff\xd8\xff\xe0 this is not a JPEG' * 20)
    driver.find_element(By.ID, 'upload').send_keys(str(corrupt))
    assert wait_for_state(driver, 'error', 'image') == 'error'
    error = driver.find_element(By.ID, 'error')
    assert error.is_displayed()
    assert error.text.startswith('corrupt.jpg: cannot decode the uploaded file: it is not an '
                                 'image'), error.text
    assert not driver.find_elements(By.CSS_SELECTOR, '#results figure.result')
    driver.save_screenshot(str(OUT_DIR / 'corrupt_upload.png'))

    # the server still answers; an example image and an empty expression: a readable error
    assert get_json(server['url'] + '/api/health')['status'] == 'ok'
    driver.find_element(By.CSS_SELECTOR, '#examples img').click()
    assert not driver.find_element(By.ID, 'error').is_displayed()
    driver.find_element(By.ID, 'texts').clear()
    driver.find_element(By.ID, 'segment').click()
    assert wait_for_state(driver, 'error', 'done') == 'error'
    assert 'no expression: type what to segment' in driver.find_element(By.ID, 'error').text

    # ... and segments it once an expression is typed, with the [semantic] toggle
    driver.find_element(By.ID, 'texts').send_keys('circle')
    driver.find_element(By.ID, 'semantic').click()
    driver.find_element(By.ID, 'segment').click()
    assert wait_for_state(driver, 'done', 'error') == 'done', \
        driver.find_element(By.ID, 'error').text
    assert '[semantic] circle' in driver.find_element(
        By.CSS_SELECTOR, '#results figure.result figcaption').text

    timings = dict(server_start_s=round(server['startup'], 2), page_load_s=round(page_load, 3),
                   first_mask_s=round(first_mask, 3), screenshot=str(screenshot))
    (OUT_DIR / 'timings.json').write_text(json.dumps(timings, indent=2) + '\n')
    print(f'[demo browser test] {timings}')


def test_no_target_message_in_chromium(server, driver, no_target_model, synthref_root,
                                       monkeypatch):
    """The page renders a no-target head's payload (made here by the demo's service on the
    model with the head: the server runs the headless one): "no target (score 0.93)" instead
    of the drawing for the expression without target, the drawing for the other."""
    from selenium.webdriver.common.by import By

    from mmevf.apis import TextSegInferencer
    from tools.demo.service import DemoService
    config, weights = no_target_model
    inferencer = TextSegInferencer(str(config), weights=str(weights),
                                   tokenizer=str(synthref_root / 'tokenizer'), device='cpu',
                                   show_progress=False)
    service = DemoService(inferencer, cache_size=0)
    force_no_target(monkeypatch, [True, False])
    image = sorted((synthref_root / 'images').glob('*.jpg'))[5]
    payload = service.segment(image='data:image/jpeg;base64,' +
                              base64.b64encode(image.read_bytes()).decode(),
                              texts=['the red circle', 'the blue square'])
    service.close()

    driver.get(server['url'] + '/')
    wait_for_state(driver, 'ready', timeout=30)
    driver.execute_script('renderResults(arguments[0])', json.loads(json.dumps(payload)))
    empty, found = driver.find_elements(By.CSS_SELECTOR, '#results figure.result')
    message = empty.find_element(By.CSS_SELECTOR, 'p.no-target')
    assert message.is_displayed() and message.text == 'no target (score 0.93)'
    assert not empty.find_elements(By.CSS_SELECTOR, 'img.overlay')
    assert 'the red circle' in empty.find_element(By.TAG_NAME, 'figcaption').text
    assert not found.find_elements(By.CSS_SELECTOR, '.no-target')
    overlay = found.find_element(By.CSS_SELECTOR, 'img.overlay')
    assert driver.execute_script('return arguments[0].complete && arguments[0].naturalWidth',
                                 overlay) > 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(OUT_DIR / 'no_target.png'))


def test_missing_browser_is_a_skip_with_its_reason(monkeypatch):
    module = sys.modules[__name__]
    monkeypatch.setattr(module, 'CHROMIUM', '/nonexistent/chromium')
    reason = browser_skip_reason()
    if reason.startswith('selenium is not installed'):
        return
    assert reason.startswith('no browser for the demo test: /nonexistent/chromium missing (')
    assert 'install_browser.sh' in reason and 'apt-get install chromium chromium-driver' in reason


@pytest.mark.parametrize('how', ['opted out', 'not root'])
def test_install_browser_says_why_it_installs_nothing(tmp_path, how):
    """tools/install/install_browser.sh never fails the install and never runs apt-get here."""
    env = dict(os.environ, MMEVF_CHROMIUM=str(tmp_path / 'no-chromium'))
    script = ROOT / 'tools' / 'install' / 'install_browser.sh'
    cmd, stdin = ['bash', str(script)], None
    if how == 'opted out':
        env['MMEVF_SKIP_BROWSER'] = '1'
        expected = 'MMEVF_SKIP_BROWSER=1, not installing Chromium'
    else:
        env.pop('MMEVF_SKIP_BROWSER', None)
        if os.geteuid() == 0:
            if shutil.which('setpriv') is None:
                pytest.skip('root without setpriv: cannot run the script as another user')
            # the script is read by this process and fed on stdin: the other user may not
            # reach the clone (e.g. under a private mktemp -d folder)
            cmd = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'bash', '-s']
            stdin = script.read_text()
        expected = 'not root, cannot install Chromium'
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=60,
                          cwd='/')
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout and "browser test will be skipped" in proc.stdout
