"""Interactive zero-shot segmentation page: upload an image, type class names, choose the method,
see the overlay and the share of the image each class covers.

    pip install "silc-seg[app]"      # Gradio
    python tools/app.py --model openai:ViT-B-16 [--method naclip] [--port 7860] [--device cuda]

MODEL is a weights name (docs/weights.md) or a converted checkpoint; ``--config`` gives a full
zero-shot config instead of the method presets (the method menu is then that config's). Each
method's model is built on first use and kept (the converted weights are cached on disk).
"""
import argparse
from typing import Callable, Dict, List, Optional

import numpy as np

from silc_seg.apis import METHOD_CONFIGS, OpenVocabSegmenter


def areas_table(result) -> List[list]:
    """``[class, area %]`` rows of the classes present, largest first."""
    areas = sorted(result.areas().items(), key=lambda item: -item[1])
    return [[name, round(100 * area, 2)] for name, area in areas if area > 0]


class SegmenterCache:
    """One :class:`OpenVocabSegmenter` per method, built on first use."""

    def __init__(self, build: Callable[[str], OpenVocabSegmenter]):
        self.build = build
        self.segmenters: Dict[str, OpenVocabSegmenter] = {}

    def __call__(self, method: str) -> OpenVocabSegmenter:
        if method not in self.segmenters:
            self.segmenters[method] = self.build(method)
        return self.segmenters[method]


def build_app(segmenters: SegmenterCache,
              methods: List[str],
              default_method: str,
              title: str = 'silc-seg: open-vocabulary segmentation'):
    """The Gradio page (``gradio.Blocks``); ``segmenters(method)`` gives the model."""
    import gradio as gr

    def run(image: Optional[np.ndarray], classes: str, method: str, opacity: float):
        if image is None:
            raise gr.Error('Upload an image first.')
        if not classes or not classes.strip():
            raise gr.Error('Type the class names, separated by commas (e.g. cat, grass, sky).')
        try:
            result = segmenters(method)(image, classes)
        except ValueError as error:  # class list errors name the item
            raise gr.Error(str(error))
        return result.overlay(opacity=opacity), areas_table(result)

    with gr.Blocks(title=title) as app:
        gr.Markdown(f'## {title}')
        with gr.Row():
            with gr.Column():
                image = gr.Image(type='numpy', label='Image', elem_id='image', height=360)
                classes = gr.Textbox(
                    label='Classes (comma-separated)',
                    elem_id='classes',
                    placeholder='cat, grass, sky')
                method = gr.Dropdown(
                    methods, value=default_method, label='Method', elem_id='method')
                opacity = gr.Slider(0.1, 1.0, value=0.5, step=0.05, label='Mask opacity')
                button = gr.Button('Segment', variant='primary', elem_id='segment')
            with gr.Column():
                overlay = gr.Image(
                    type='numpy',
                    label='Overlay',
                    elem_id='overlay',
                    interactive=False,
                    format='png',
                    height=360)
                areas = gr.Dataframe(
                    headers=['class', 'area %'],
                    label='Area per class',
                    elem_id='areas',
                    interactive=False)
        button.click(run, [image, classes, method, opacity], [overlay, areas])
    return app


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--model',
        required=True,
        help='weights name (openai:ViT-B-16, open_clip:MODEL/TAG, '
        'hf-hub:ORG/REPO) or converted checkpoint')
    parser.add_argument('--config', help='full zero-shot config instead of the presets')
    parser.add_argument(
        '--method',
        default='naclip',
        choices=sorted(METHOD_CONFIGS),
        help='method selected when the page opens')
    parser.add_argument('--device', help='default: cuda if available, else cpu')
    parser.add_argument('--host', default='127.0.0.1', help='address to serve on')
    parser.add_argument('--port', type=int, default=7860)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise SystemExit('the demo page needs Gradio: pip install "silc-seg[app]"')
    methods = [args.method] if args.config else sorted(METHOD_CONFIGS)
    segmenters = SegmenterCache(lambda method: OpenVocabSegmenter(
        args.model, method=method, config=args.config, device=args.device))
    segmenters(args.method)  # download / convert / build before serving
    build_app(segmenters, methods, args.method).launch(
        server_name=args.host, server_port=args.port)


if __name__ == '__main__':
    main()
