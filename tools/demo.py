"""Zero-shot segmentation of one image with free-form class names.

    python tools/demo.py IMAGE --classes "cat,grass,sky" --config CFG --checkpoint CKPT \
        [--out out.png] [--classes-file names.txt] [--device cpu] [--opacity 0.5] \
        [--cfg-options model.dense_variant=sclip ...]

CFG is a zero-shot config (e.g. ``configs/silc/zs_ade150.py``); its test pipeline
(short-side resize) and inference settings (sliding windows, templates, dense variant) are used,
its dataset is not. The overlay, drawn by mmseg's ``SegLocalVisualizer``, gets a legend of the
classes present in the prediction with the share of the image each covers. The class names and
the image are checked before the model is built.
"""
import argparse
import os.path as osp

import cv2
import mmcv
import numpy as np
from mmengine.config import Config, DictAction
from mmseg.apis import inference_model
from mmseg.visualization import SegLocalVisualizer

import silc_seg  # noqa: F401  (registers every module into mmseg's registries)
from silc_seg.apis import init_model
from silc_seg.models.utils import build_vocabulary, parse_class_list
from silc_seg.utils import ConfigOverrideError, merge_cfg_options
from silc_seg.utils.log_utils import quiet_library_warnings

LEGEND_ROW = 22
LEGEND_FONT = dict(fontFace=cv2.FONT_HERSHEY_SIMPLEX, fontScale=0.5, thickness=1)


def parse_args():
    parser = argparse.ArgumentParser(description='Zero-shot segmentation demo')
    parser.add_argument('image', help='image file')
    parser.add_argument('--config', required=True, help='zero-shot config file')
    parser.add_argument('--checkpoint', required=True,
                        help='checkpoint with image_encoder.* and text_encoder.* weights')
    parser.add_argument('--classes', help='comma-separated class names, e.g. "cat,grass,sky"')
    parser.add_argument('--classes-file',
                        help='class-name file: one class per line, comma-separated synonyms')
    parser.add_argument('--out', default='out.png', help='output overlay image')
    parser.add_argument('--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument('--opacity', type=float, default=0.5, help='mask opacity in (0, 1]')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, in xxx=yyy format (keys are '
                        'checked against the config; +xxx=yyy adds a key it does not have)')
    args = parser.parse_args()
    if (args.classes is None) == (args.classes_file is None):
        parser.error('give exactly one of --classes and --classes-file')
    return args


def class_palette(num_classes):
    """Distinct, reproducible colours (golden-ratio hues)."""
    hues = (np.arange(num_classes) * 0.618033988749895 % 1.0 * 180).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 200), np.full_like(hues, 230)], -1)
    rgb = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]
    return [tuple(int(c) for c in colour) for colour in rgb]


def legend_text(name, area):
    """A legend entry: the class name and its share of the image."""
    return f'{name}  {area:.1%}'


def add_legend(image, names, palette, labels_present, areas):
    """Append a column listing the classes present with their colours and areas, as wide as
    the longest entry."""
    texts = [legend_text(names[label], area) for label, area in zip(labels_present, areas)]
    text_width = max([cv2.getTextSize(text, **LEGEND_FONT)[0][0] for text in texts] or [0])
    swatch_left, text_left = 8, 8 + 16 + 8
    height = max(image.shape[0], LEGEND_ROW * (len(labels_present) + 1))
    canvas = np.full((height, image.shape[1] + text_left + text_width + 8, 3), 255, np.uint8)
    canvas[:image.shape[0], :image.shape[1]] = image
    for row, (label, text) in enumerate(zip(labels_present, texts)):
        top = LEGEND_ROW // 2 + row * LEGEND_ROW
        left = image.shape[1] + swatch_left
        cv2.rectangle(canvas, (left, top), (left + 16, top + 16), palette[label], -1)
        cv2.putText(canvas, text, (image.shape[1] + text_left, top + 13), color=(0, 0, 0),
                    lineType=cv2.LINE_AA, **LEGEND_FONT)
    return canvas


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


def main():
    args = parse_args()
    quiet_library_warnings()
    config = Config.fromfile(args.config)
    try:
        merge_cfg_options(config, args.cfg_options)
    except ConfigOverrideError as err:
        raise SystemExit(f'--cfg-options {err}')
    try:
        vocabulary = (build_vocabulary(args.classes_file) if args.classes_file else
                      parse_class_list(args.classes))
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(str(err))
    # Checked before the model is built (seconds, not the model's build time).
    image = read_image(args.image)
    # mmseg's inference_model reads the test pipeline from model.cfg, which init_model sets.
    model = init_model(config, args.checkpoint, args.device)
    model.set_vocabulary(vocabulary)

    result = inference_model(model, image)
    names = [synonyms[0] for synonyms in vocabulary]
    palette = class_palette(len(names))
    visualizer = SegLocalVisualizer(alpha=args.opacity)
    visualizer.dataset_meta = dict(classes=names, palette=palette)
    visualizer.add_datasample(
        'demo', mmcv.bgr2rgb(image), data_sample=result, draw_gt=False, show=False,
        with_labels=False)
    labels = np.unique(result.pred_sem_seg.data.cpu().numpy()).tolist()
    areas = [float((result.pred_sem_seg.data == label).float().mean()) for label in labels]
    overlay = add_legend(visualizer.get_image(), names, palette, labels, areas)
    mmcv.imwrite(mmcv.rgb2bgr(overlay), args.out)  # makes the folder
    print(f'saved {args.out}; predicted area per class: ' +
          ', '.join(f'{names[label]} {area:.1%}' for label, area in zip(labels, areas)))


if __name__ == '__main__':
    main()
