"""tools/app.py end to end in headless Chromium: upload an image, type classes, pick the method,
wait for the overlay and the area table, save a screenshot. Skipped (reason printed) when the
app extra (Gradio), selenium or Chromium with its driver is missing."""
import importlib.util
import io
import os
import os.path as osp
import shutil
import socket
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from silc_seg.utils import import_file_as_module
from .stand_ins import TINY
from .test_open_vocab_segmenter import REPO, two_colour_photo

# Where to also copy the screenshot, to look at it (optional).
SCREENSHOT_COPY_ENV = 'SILC_SEG_APP_SCREENSHOT'


def requirements_missing():
    for module, install in (('gradio', 'pip install "silc-seg[app]"'), ('selenium',
                                                                        'pip install selenium')):
        if importlib.util.find_spec(module) is None:
            return f'{module} is not installed ({install})'
    for program in ('chromium', 'chromedriver'):
        if shutil.which(program) is None:
            return f'{program} is not installed (apt-get install chromium chromium-driver)'
    return ''


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def load_app_tool():
    return import_file_as_module(osp.join(REPO, 'tools', 'app.py'), 'app')


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_upload_type_classes_and_see_the_overlay(publishers, monkeypatch, tmp_path):
    missing = requirements_missing()
    if missing:
        print(f'browser test skipped: {missing}')
        pytest.skip(missing)
    monkeypatch.setenv('GRADIO_ANALYTICS_ENABLED', 'False')
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from silc_seg.apis import OpenVocabSegmenter
    tool = load_app_tool()
    built = []

    def build(method):
        built.append(method)
        return OpenVocabSegmenter(
            f'open_clip:{TINY}/laion', method=method, device='cpu', short_side=96)

    page = tool.build_app(tool.SegmenterCache(build), ['naclip', 'sclip'], 'sclip')
    port = free_port()
    page.launch(server_name='127.0.0.1', server_port=port, prevent_thread_lock=True, quiet=True)
    two_colour_photo(tmp_path / 'photo.png', size=(48, 72))
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which('chromium')
    for flag in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu',
                 '--window-size=1280,900'):
        options.add_argument(flag)
    # The driver's path is given: Selenium Manager never looks for (or downloads) one.
    driver = webdriver.Chrome(service=Service(shutil.which('chromedriver')), options=options)
    try:
        driver.get(f'http://127.0.0.1:{port}/')
        wait = WebDriverWait(driver, 90)
        upload = wait.until(
            EC.presence_of_element_located((By.CSS_SELECTOR, '#image input[type=file]')))
        upload.send_keys(str(tmp_path / 'photo.png'))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '#image img')))
        textbox = driver.find_element(By.CSS_SELECTOR, '#classes textarea')
        textbox.send_keys('red, blue')
        driver.find_element(By.CSS_SELECTOR, '#segment').click()
        overlay = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, '#overlay img')))
        wait.until(lambda d: 'red' in d.find_element(By.CSS_SELECTOR, '#areas').text)
        time.sleep(0.5)  # let the image paint before the screenshot
        screenshot = tmp_path / 'app.png'
        driver.save_screenshot(str(screenshot))
        if os.environ.get(SCREENSHOT_COPY_ENV):
            shutil.copy(screenshot, os.environ[SCREENSHOT_COPY_ENV])
        table = driver.find_element(By.CSS_SELECTOR, '#areas').text
        with urllib.request.urlopen(overlay.get_attribute('src')) as response:
            shown = np.asarray(Image.open(io.BytesIO(response.read())).convert('RGB'))
    finally:
        driver.quit()
        page.close()
    assert built == ['sclip']  # the chosen method's model, built once
    # The page shows the API's overlay of the uploaded image, pixel for pixel (PNG).
    result = tool.SegmenterCache(build)('sclip')(str(tmp_path / 'photo.png'), 'red, blue')
    assert np.array_equal(shown, result.overlay(opacity=0.5))
    for name, area in result.areas().items():
        assert (f'{name}\n{round(100 * area, 2)}' in table) == (area > 0), table
    shot = np.asarray(Image.open(screenshot))
    assert shot.shape[0] > 400 and shot.std() > 0
