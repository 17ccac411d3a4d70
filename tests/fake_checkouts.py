"""A stand-in for a checkout of an official zero-shot repository (the SCLIP layout): the files
``compare_with_reference.py`` and ``benchmark_zeroshot.py --reference-dir`` read, with a
segmentor module written by the test."""
from pathlib import Path

# The first two of OpenAI's templates, as the references' prompts/imagenet_template.py holds them.
TEMPLATES = ("openai_imagenet_template = [lambda c: f'a bad photo of a {c}.',\n"
             "                            lambda c: f'a photo of many {c}.']\n")


def write_fake_sclip(root: Path, segmentor: str, configs: dict) -> Path:
    """Write ``clip_segmentor.py`` (``segmentor``), an empty ``custom_datasets.py``,
    ``prompts/imagenet_template.py``, ``configs/<name>`` for each item of ``configs`` and
    ``configs/cls_voc21.txt`` (21 classes) under ``root``; returns ``root``."""
    (root / 'configs').mkdir(parents=True)
    (root / 'prompts').mkdir()
    (root / 'clip_segmentor.py').write_text(segmentor)
    (root / 'custom_datasets.py').write_text('')
    (root / 'prompts' / '__init__.py').write_text('')
    (root / 'prompts' / 'imagenet_template.py').write_text(TEMPLATES)
    for name, text in configs.items():
        (root / 'configs' / name).write_text(text)
    (root / 'configs' / 'cls_voc21.txt').write_text('\n'.join(f'class{i}' for i in range(21)))
    return root
