"""A tiny CAT-Seg on the project's own towers (``SILCVisionTransformer``,
``SILCTextTransformer``), small enough to train and test in seconds on CPU."""
import torch

from tests.registry import TEST_MODELS

TOKEN_LENGTH = 16
END_OF_TEXT = 255


@TEST_MODELS.register_module()
class CATSegTinyTokenizer:
    """Characters -> ids 1..254 and a final end-of-text id 255 (the largest id, so the text
    tower's default ``'argmax'`` pooling reads the end-of-text token, as in CLIP), zero
    padded to ``TOKEN_LENGTH``."""

    def __call__(self, texts):
        ids = torch.zeros(len(texts), TOKEN_LENGTH, dtype=torch.long)
        for row, text in enumerate(texts):
            codes = [1 + ord(c) % 254 for c in text.lower()[:TOKEN_LENGTH - 1]] + [END_OF_TEXT]
            ids[row, :len(codes)] = torch.tensor(codes)
        return ids


WIDTH = 32
# Linear weights at std width ** -0.5, the scale of a trained tower's projections. The towers'
# default std 0.02 suits width 768; at width 32 it leaves the value path (which CAT-Seg's dense
# features read) and the text embeddings of different names nearly constant.
TINY_INIT = [
    dict(type='TruncNormal', layer='Linear', std=WIDTH**-0.5, bias=0.),
    dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
]


def tiny_image_encoder(**overrides):
    """ViT of 3 blocks of width 32 on 4 px patches of 32 x 32 images: 8 x 8 embeddings."""
    cfg = dict(
        type='SILCVisionTransformer',
        arch=dict(width=WIDTH, depth=3, num_heads=2, patch_size=4, mlp_ratio=2.0),
        img_size=32,
        output_dim=16,
        init_cfg=TINY_INIT)
    cfg.update(overrides)
    return cfg


def tiny_text_encoder(**overrides):
    cfg = dict(
        type='SILCTextTransformer',
        arch=dict(
            context_length=TOKEN_LENGTH,
            vocab_size=END_OF_TEXT + 1,
            width=WIDTH,
            depth=2,
            num_heads=2,
            mlp_ratio=2.0,
            output_dim=16),
        init_cfg=TINY_INIT)
    cfg.update(overrides)
    return cfg


def tiny_catseg_cfg(num_class_slots=8, templates=('a photo of a {}.', ), **overrides):
    """CATSeg config for 32 x 32 inputs: 8 x 8 embeddings, windows of 4, logits at 32 x 32.
    The tower-dependent sizes (vision width, text dims, templates, guidance layers, image size)
    are left to follow the towers, as in the shipped configs."""
    cfg = dict(
        type='CATSeg',
        image_encoder=tiny_image_encoder(),
        text_encoder=tiny_text_encoder(),
        tokenizer=dict(type='silc_test.CATSegTinyTokenizer'),
        decode_head=dict(
            type='CATSegHead',
            guidance_upsample_dims=(16, 8),
            aggregator=dict(
                embed_dims=32,
                appearance_guidance_dims=16,
                text_guidance_dims=16,
                decoder_dims=(32, 16),
                decoder_guidance_dims=(16, 8),
                decoder_guidance_proj_dims=(8, 4),
                num_layers=2,
                num_heads=2,
                pooling_size=(2, 2),
                window_size=4,
                num_class_slots=num_class_slots)),
        templates=list(templates),
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[122.8, 116.7, 104.1],
            std=[68.5, 66.6, 70.3],
            bgr_to_rgb=True,
            size=(32, 32),
            pad_val=0,
            seg_pad_val=255))
    cfg.update(overrides)
    return cfg
