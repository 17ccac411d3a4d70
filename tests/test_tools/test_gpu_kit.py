"""The GPU kit's import-time stand-ins (tools/gpu_kit/stand_ins.py) and its package list.

The stand-ins shadow real packages, so they are written into a temporary folder and exercised
in a child process only."""
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT / 'tools' / 'gpu_kit'


def _run_with_stand_ins(code, tmp_path):
    shims = tmp_path / 'shims'
    (shims / 'mmcv').mkdir(parents=True)  # stands for mmcv-lite, which has no _ext
    (shims / 'mmcv' / '__init__.py').write_text('')
    subprocess.run([
        sys.executable,
        str(KIT / 'stand_ins.py'),
        str(shims), 'cv2', 'scipy', 'torchvision', 'mmcv._ext'
    ],
                   check=True,
                   capture_output=True,
                   timeout=60)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          cwd=tmp_path,
                          env={
                              'PYTHONPATH': str(shims),
                              'PATH': '/usr/bin:/bin'
                          },
                          capture_output=True,
                          text=True,
                          timeout=120)


def test_stand_ins_satisfy_imports_and_refuse_use(tmp_path):
    result = _run_with_stand_ins(
        '''
        import cv2
        from cv2 import IMREAD_COLOR, INTER_CUBIC
        assert cv2.__version__.endswith('gpu-kit-stand-in')
        assert isinstance(IMREAD_COLOR, int) and IMREAD_COLOR != INTER_CUBIC
        assert cv2.IMREAD_COLOR == IMREAD_COLOR  # stable values
        cv2.setNumThreads(0)  # MMEngine's runner calls it
        try:
            cv2.imread('x.jpg')
        except RuntimeError as err:
            assert 'stand-in' in str(err) and 'cv2.imread' in str(err)
        else:
            raise AssertionError('cv2.imread did not raise')
        from scipy.ndimage import gaussian_filter
        from scipy.optimize import linear_sum_assignment
        try:
            linear_sum_assignment([[1]])
        except RuntimeError as err:
            assert 'scipy.optimize.linear_sum_assignment' in str(err)
        else:
            raise AssertionError('scipy call did not raise')
        import torchvision.transforms.functional as F
        import torchvision.ops.boxes
        from torchvision.transforms import InterpolationMode, RandomResizedCrop
        mode = InterpolationMode.BICUBIC  # class attributes at import time

        class Subclass(RandomResizedCrop):  # MMPretrain subclasses it at import time
            pass

        try:
            Subclass(224)
        except RuntimeError as err:
            assert 'torchvision.RandomResizedCrop' in str(err) or 'RandomResizedCrop' in str(err)
        else:
            raise AssertionError('instantiating a stand-in class did not raise')
        from mmcv._ext import nms_forward  # every kernel lookup succeeds, any call raises
        try:
            nms_forward()
        except RuntimeError as err:
            assert 'mmcv._ext.nms_forward' in str(err)
        else:
            raise AssertionError('a stand-in kernel did not raise')
        print('ok')
    ''', tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'ok'


def test_package_list_is_pinned_and_fits_the_carry_limit():
    pure, optional = [], []
    for line in (KIT / 'packages.txt').read_text().splitlines():
        if not line.strip() or line.startswith('#'):
            continue
        spec, *flags = line.split()
        (optional if flags == ['optional'] else pure).append(spec)
        assert flags in ([], ['optional']), line
    # Pure-Python wheels are pinned; the binary ones too, except torchvision (from --torch).
    assert all('==' in spec for spec in pure + optional if spec != 'torchvision')
    names = {spec.split('==')[0] for spec in pure + optional}
    assert {
        'mmengine', 'mmcv-lite', 'mmsegmentation', 'mmpretrain', 'open-clip-torch', 'setuptools',
        'torchvision', 'numpy'
    } <= names
    # No OpenCV or SciPy wheel: the stand-ins replace them (they alone are over 64 MiB).
    assert not names & {'opencv-python', 'opencv-python-headless', 'scipy', 'mmcv'}
    script = (KIT / 'prepare_wheels.sh').read_text()
    assert 'LIMIT_MIB=60' in script


def test_no_stand_in_is_importable_from_the_repository():
    tracked = subprocess.run(['git', 'ls-files'],
                             cwd=ROOT,
                             capture_output=True,
                             text=True,
                             check=True).stdout.split()
    shadowing = [
        path for path in tracked if {
            'cv2', 'scipy', 'torchvision', 'mmcv', '_ext.py', '_gpu_kit_stub.py', 'cv2.py',
            'scipy.py', 'torchvision.py'
        } & set(Path(path).parts)
    ]
    assert shadowing == []
    script = (KIT / 'run_gpu_benchmarks.sh').read_text()
    assert 'mktemp -d' in script and '.gpu_kit' not in script
