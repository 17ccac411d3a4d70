"""Zero-shot segmentation with free-form class names: one image, or a folder / glob in a batch.

    python tools/demo.py IMAGE --classes "cat,grass,sky" --checkpoint openai:ViT-B-16 \
        [--method naclip] [--out out.png]
    python tools/demo.py "photos/*.jpg" photos2/ --classes-file names.txt \
        --checkpoint CKPT --config CFG --out-dir out/ [--areas-csv out/areas.csv]

CHECKPOINT is a weights name (``openai:ViT-B-16``, ``open_clip:MODEL/TAG``, ``hf-hub:ORG/REPO``,
docs/weights.md) or a checkpoint file. Without ``--config`` the model is ``--method``'s preset
(``configs/zero_shot/_base_/<method>.py``) on the towers the weights fit (the name's, or the
file's ``meta['config']``); with it, the config's test pipeline and inference settings are used,
its dataset is not. The overlay, drawn by mmseg's ``SegLocalVisualizer``, gets a legend of the
classes present with the share of the image each covers. One image: the class names and the
image are checked before the model is built. A batch (several inputs, a folder, a glob or
``--out-dir``) writes ``<name>_overlay.png`` and ``<name>_labels.png`` (palette PNG, pixel value
= class index) per image under ``--out-dir``, shows a progress bar, and skips unreadable files,
counted at the end.
"""
import argparse
import csv
import glob
import os
import os.path as osp

import cv2
import mmcv
import numpy as np
from mmengine.config import Config
from mmengine.structures import PixelData
from mmengine.utils import ProgressBar
from mmseg.apis import inference_model
from mmseg.visualization import SegLocalVisualizer

import silc_seg  # noqa: F401  (registers every module into mmseg's registries)
from silc_seg.apis import Segmentation, class_palette, init_model, zero_shot_config
from silc_seg.apis.legend_text import draw_text, text_width
from silc_seg.apis.open_vocab_segmenter import METHOD_CONFIGS, recorded_towers
from silc_seg.hub import PretrainedUnavailableError, is_pretrained_name, resolve_pretrained
from silc_seg.models.utils import build_vocabulary, parse_class_list
from silc_seg.utils import ConfigOverrideError, add_cfg_options_argument, merge_cfg_options
from silc_seg.utils.log_utils import quiet_library_warnings

LEGEND_ROW = 22
LEGEND_FONT_SIZE = 14
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def parse_args():
    parser = argparse.ArgumentParser(description='Zero-shot segmentation demo')
    parser.add_argument(
        'inputs', nargs='+', help='image files, folders (their images) or quoted globs')
    parser.add_argument(
        '--checkpoint',
        '--model',
        dest='checkpoint',
        required=True,
        help='weights name (openai:ViT-B-16, open_clip:MODEL/TAG, '
        'hf-hub:ORG/REPO) or checkpoint file with image_encoder.* and '
        'text_encoder.* weights')
    parser.add_argument(
        '--config',
        help='zero-shot config file (default: the --method preset '
        'on the towers of the weights)')
    parser.add_argument(
        '--method',
        default='naclip',
        choices=sorted(METHOD_CONFIGS),
        help='zero-shot method when no --config is given')
    parser.add_argument(
        '--short-side',
        type=int,
        default=448,
        help='without --config: resize images to this short side first')
    parser.add_argument('--classes', help='comma-separated class names, e.g. "cat,grass,sky"')
    parser.add_argument(
        '--classes-file', help='class-name file: one class per line, comma-separated synonyms')
    parser.add_argument('--out', default='out.png', help='output overlay image (one image)')
    parser.add_argument('--out-dir', help='output folder of a batch (default: demo_out)')
    parser.add_argument(
        '--areas-csv',
        help='batch: also write the area share of every class '
        'in every image to this CSV file')
    parser.add_argument(
        '--device', help='device, e.g. cpu or cuda:0 (default: cuda if '
        'available)')
    parser.add_argument('--opacity', type=float, default=0.5, help='mask opacity in (0, 1]')
    add_cfg_options_argument(parser)
    args = parser.parse_args()
    if (args.classes is None) == (args.classes_file is None):
        parser.error('give exactly one of --classes and --classes-file')
    return args


def legend_text(name, area):
    """A legend entry: the class name and its share of the image."""
    return f'{name}  {area:.1%}'


def add_legend(image, names, palette, labels_present, areas):
    """Append a column listing the classes present with their colours and areas, as wide as
    the longest entry."""
    texts = [legend_text(names[label], area) for label, area in zip(labels_present, areas)]
    width = max([text_width(text, LEGEND_FONT_SIZE) for text in texts] or [0])
    swatch_left, text_left = 8, 8 + 16 + 8
    height = max(image.shape[0], LEGEND_ROW * (len(labels_present) + 1))
    canvas = np.full((height, image.shape[1] + text_left + width + 8, 3), 255, np.uint8)
    canvas[:image.shape[0], :image.shape[1]] = image
    placed = []
    for row, (label, text) in enumerate(zip(labels_present, texts)):
        top = LEGEND_ROW // 2 + row * LEGEND_ROW
        left = image.shape[1] + swatch_left
        cv2.rectangle(canvas, (left, top), (left + 16, top + 16), palette[label], -1)
        placed.append((text, (image.shape[1] + text_left, top)))
    # Any script (CJK, emoji) with the installed fonts that have it; cv2 draws ASCII only.
    return draw_text(canvas, placed, LEGEND_FONT_SIZE)


def read_image(path):
    """The image at ``path`` (BGR), or a clear exit if it cannot be read."""
    if not osp.isfile(path):
        raise SystemExit(f'{path}: no such image file')
    try:
        image = mmcv.imread(path)
    except Exception:  # decoders raise many types on non-image bytes
        image = None
    if image is None or image.size == 0:
        raise SystemExit(f'{path} is not an image OpenCV can read (PNG, JPEG, BMP, WebP, ...)')
    return image


def expand_inputs(inputs):
    """Image paths of files, folders (their image files, sorted) and globs, in order."""
    paths = []
    for item in inputs:
        if osp.isdir(item):
            paths += sorted(
                osp.join(item, name) for name in os.listdir(item)
                if name.lower().endswith(IMAGE_EXTENSIONS))
        elif glob.has_magic(item):
            paths += sorted(path for path in glob.glob(item, recursive=True) if osp.isfile(path))
        else:
            paths.append(item)
    return paths


def build_config(args):
    """The config of ``--config`` or of ``--method`` on the towers the weights fit, and the
    checkpoint file to load (a name is resolved: downloaded and converted if needed)."""
    checkpoint, config = args.checkpoint, None
    try:
        if args.config:
            config = Config.fromfile(args.config)
        elif is_pretrained_name(checkpoint):
            weights = resolve_pretrained(checkpoint)
            config = zero_shot_config(weights.config, args.method, weights.tokenizer,
                                      args.short_side)
            checkpoint = weights.checkpoint
        else:
            config = zero_shot_config(
                recorded_towers(checkpoint), args.method, short_side=args.short_side)
        merge_cfg_options(config, args.cfg_options)
    except ConfigOverrideError as err:
        raise SystemExit(f'--cfg-options {err}')
    except (PretrainedUnavailableError, ValueError, FileNotFoundError) as err:
        raise SystemExit(str(err))
    return config, checkpoint


def default_device():
    import torch
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def segment(model, image, names, opacity):
    """The segmentation of a BGR image and its overlay with legend (RGB)."""
    result = inference_model(model, image)
    palette = class_palette(len(names))
    visualizer = SegLocalVisualizer(alpha=opacity)
    visualizer.dataset_meta = dict(classes=names, palette=palette)
    # The label map as numpy: mmseg indexes a numpy mask with a torch bool mask, which for a
    # 1x1 image becomes the integer index 1 (IndexError).
    drawn = result.clone()
    drawn.pred_sem_seg = PixelData(data=result.pred_sem_seg.data.cpu().numpy())
    visualizer.add_datasample(
        'demo',
        mmcv.bgr2rgb(image),
        data_sample=drawn,
        draw_gt=False,
        show=False,
        with_labels=False)
    labels = np.unique(result.pred_sem_seg.data.cpu().numpy()).tolist()
    areas = [float((result.pred_sem_seg.data == label).float().mean()) for label in labels]
    overlay = add_legend(visualizer.get_image(), names, palette, labels, areas)
    segmentation = Segmentation(
        image=mmcv.bgr2rgb(image),
        labels=result.pred_sem_seg.data[0].cpu().numpy(),
        probs=result.seg_logits.data.float().cpu().numpy(),
        classes=names)
    return segmentation, overlay, labels, areas


def output_stem(path, root, out_dir):
    """``out_dir/<path relative to root without extension>``."""
    relative = osp.relpath(osp.splitext(osp.abspath(path))[0], root)
    return osp.join(out_dir, relative)


def run_batch(model, paths, names, args):
    out_dir = args.out_dir or 'demo_out'
    root = osp.commonpath([osp.dirname(osp.abspath(path)) for path in paths])
    rows, skipped = [], []
    progress = ProgressBar(len(paths))
    for path in paths:
        try:
            image = mmcv.imread(path) if osp.isfile(path) else None
        except Exception:  # decoders raise many types on non-image bytes
            image = None
        if image is None or image.size == 0:
            skipped.append(path)
            progress.update()
            continue
        segmentation, overlay, _, _ = segment(model, image, names, args.opacity)
        stem = output_stem(path, root, out_dir)
        mmcv.imwrite(mmcv.rgb2bgr(overlay), f'{stem}_overlay.png')  # makes the folder
        segmentation.label_image(f'{stem}_labels.png')
        rows.append([path] + [f'{area:.6f}' for area in segmentation.areas().values()])
        progress.update()
    print()
    if args.areas_csv:
        os.makedirs(osp.dirname(osp.abspath(args.areas_csv)), exist_ok=True)
        with open(args.areas_csv, 'w', newline='') as handle:
            writer = csv.writer(handle)
            writer.writerow(['image'] + names)
            writer.writerows(rows)
    print(f'saved {len(rows)} overlay(s) and label map(s) to {out_dir}' +
          (f'; area shares in {args.areas_csv}' if args.areas_csv else ''))
    if skipped:
        print(f'skipped {len(skipped)} unreadable file(s): ' + ', '.join(skipped[:20]) +
              (f' ... and {len(skipped) - 20} more' if len(skipped) > 20 else ''))
    if not rows:
        raise SystemExit(f'none of the {len(paths)} input file(s) is a readable image')


def main():
    args = parse_args()
    quiet_library_warnings()
    try:
        vocabulary = (
            build_vocabulary(args.classes_file)
            if args.classes_file else parse_class_list(args.classes))
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(str(err))
    paths = expand_inputs(args.inputs)
    single = (
        len(args.inputs) == 1 and paths == args.inputs and not osp.isdir(args.inputs[0])
        and not args.out_dir)
    if not paths:
        raise SystemExit(f'no image files in {", ".join(args.inputs)}')
    config, checkpoint = build_config(args)
    # One image is checked before the model is built (seconds, not the model's build time).
    image = read_image(paths[0]) if single else None
    # mmseg's inference_model reads the test pipeline from model.cfg, which init_model sets.
    model = init_model(config, checkpoint, args.device or default_device())
    model.set_vocabulary(vocabulary)
    names = [synonyms[0] for synonyms in vocabulary]
    if not single:
        run_batch(model, paths, names, args)
        return
    _, overlay, labels, areas = segment(model, image, names, args.opacity)
    mmcv.imwrite(mmcv.rgb2bgr(overlay), args.out)  # makes the folder
    print(f'saved {args.out}; predicted area per class: ' +
          ', '.join(f'{names[label]} {area:.1%}' for label, area in zip(labels, areas)))


if __name__ == '__main__':
    main()
