"""SigLIP conversion: OpenCLIP's ViT-B-16-SigLIP (timm trunk) through openclip2silc, and
big_vision npz checkpoints through bigvision2silc, checked against OpenCLIP's own big_vision
loader (``open_clip.convert.load_big_vision_weights``) on the same randomly filled arrays."""
from functools import partial

import numpy as np
import open_clip
import pytest
import timm
import torch
from torch import nn

from silc_seg.converters import convert_big_vision_arrays, verify_state_dict
from silc_seg.models.backbones import SILCVisionTransformer
from silc_seg.models.losses import SigLipLoss
from silc_seg.models.text_encoders import SILCTextTransformer
from .helpers import TOLERANCE, convert_with_tool, load_tool, max_diff

# Small two-tower SigLIP: 32 px images, 8 px patches, 32-d, 2 blocks, 2 heads.
WIDTH, HEADS, DEPTH, MLP, PATCH, IMAGE = 32, 2, 2, 128, 8, 32
VOCAB, LENGTH, TEXT_DIM = 100, 16, 24


@pytest.mark.slow
@torch.no_grad()
def test_openclip_vit_b_16_siglip(tmp_path):
    reference, towers, state_dict, config = convert_with_tool(tmp_path, 'ViT-B-16-SigLIP',
                                                              'vit-b-16-siglip.pth')
    assert config == 'configs/_base_/models/siglip_vit-b-16.py'
    torch.manual_seed(1)
    images = torch.randn(1, 3, 224, 224)
    tokens = torch.randint(0, 32000, (3, 64))
    image_diff = max_diff(towers['image_encoder'].encode_image(images),
                          reference.encode_image(images))
    text_diff = max_diff(towers['text_encoder'](tokens), reference.encode_text(tokens))
    print(f'ViT-B-16-SigLIP max abs diff: image {image_diff:.2e}, text {text_diff:.2e}')
    assert image_diff <= TOLERANCE and text_diff <= TOLERANCE
    assert state_dict['contrastive_loss.logit_bias'] == reference.logit_bias


def encoder_arrays(rng, prefix, scan):
    hd = WIDTH // HEADS
    shapes = {
        'LayerNorm_0/scale': (WIDTH, ),
        'LayerNorm_0/bias': (WIDTH, ),
        'LayerNorm_1/scale': (WIDTH, ),
        'LayerNorm_1/bias': (WIDTH, ),
        'MlpBlock_0/Dense_0/kernel': (WIDTH, MLP),
        'MlpBlock_0/Dense_0/bias': (MLP, ),
        'MlpBlock_0/Dense_1/kernel': (MLP, WIDTH),
        'MlpBlock_0/Dense_1/bias': (WIDTH, ),
        'MultiHeadDotProductAttention_0/out/kernel': (HEADS, hd, WIDTH),
        'MultiHeadDotProductAttention_0/out/bias': (WIDTH, ),
    }
    for name in ('query', 'key', 'value'):
        shapes[f'MultiHeadDotProductAttention_0/{name}/kernel'] = (WIDTH, HEADS, hd)
        shapes[f'MultiHeadDotProductAttention_0/{name}/bias'] = (HEADS, hd)
    arrays = {}
    for name, shape in shapes.items():
        if scan:
            arrays[f'{prefix}encoderblock/{name}'] = rng.standard_normal((DEPTH, ) + shape)
        else:
            for i in range(DEPTH):
                arrays[f'{prefix}encoderblock_{i}/{name}'] = rng.standard_normal(shape)
    arrays[f'{prefix}encoder_norm/scale'] = rng.standard_normal(WIDTH)
    arrays[f'{prefix}encoder_norm/bias'] = rng.standard_normal(WIDTH)
    return arrays


def big_vision_arrays(seed=0, scan=False, root=''):
    """Random arrays named and shaped as a big_vision SigLIP checkpoint (MAP head, no class
    token, no image head, text head with bias)."""
    rng = np.random.default_rng(seed)
    hd = WIDTH // HEADS
    arrays = {
        'img/embedding/kernel':
        rng.standard_normal((PATCH, PATCH, 3, WIDTH)) * 0.1,
        'img/embedding/bias':
        rng.standard_normal(WIDTH),
        'img/pos_embedding':
        rng.standard_normal((1, (IMAGE // PATCH)**2, WIDTH)),
        'img/MAPHead_0/probe':
        rng.standard_normal((1, 1, WIDTH)),
        'img/MAPHead_0/LayerNorm_0/scale':
        rng.standard_normal(WIDTH),
        'img/MAPHead_0/LayerNorm_0/bias':
        rng.standard_normal(WIDTH),
        'img/MAPHead_0/MlpBlock_0/Dense_0/kernel':
        rng.standard_normal((WIDTH, MLP)),
        'img/MAPHead_0/MlpBlock_0/Dense_0/bias':
        rng.standard_normal(MLP),
        'img/MAPHead_0/MlpBlock_0/Dense_1/kernel':
        rng.standard_normal((MLP, WIDTH)),
        'img/MAPHead_0/MlpBlock_0/Dense_1/bias':
        rng.standard_normal(WIDTH),
        'img/MAPHead_0/MultiHeadDotProductAttention_0/out/kernel':
        rng.standard_normal((HEADS, hd, WIDTH)),
        'img/MAPHead_0/MultiHeadDotProductAttention_0/out/bias':
        rng.standard_normal(WIDTH),
        'txt/Embed_0/embedding':
        rng.standard_normal((VOCAB, WIDTH)),
        'txt/pos_embedding':
        rng.standard_normal((1, LENGTH, WIDTH)),
        'txt/head/kernel':
        rng.standard_normal((WIDTH, TEXT_DIM)),
        'txt/head/bias':
        rng.standard_normal(TEXT_DIM),
        't':
        np.array([2.3]),
        'b':
        np.array([-10.0]),
    }
    for name in ('query', 'key', 'value'):
        attention = 'img/MAPHead_0/MultiHeadDotProductAttention_0/'
        arrays[f'{attention}{name}/kernel'] = rng.standard_normal((WIDTH, HEADS, hd))
        arrays[f'{attention}{name}/bias'] = rng.standard_normal((HEADS, hd))
    arrays.update(encoder_arrays(rng, 'img/Transformer/', scan))
    arrays.update(encoder_arrays(rng, 'txt/Encoder_0/', scan))
    # Keep activations in a sensible range: weights ~ N(0, 1/fan_in).
    for name, array in arrays.items():
        if name.endswith('kernel') and 'embedding' not in name:
            arrays[name] = array / np.sqrt(
                array.shape[0] if array.ndim != 3 or 'out' in name else WIDTH)
    return {root + k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}


class OpenClipSigLIPReference(nn.Module):
    """What ``load_big_vision_weights`` fills: a timm ViT trunk, an OpenCLIP text tower and
    the logit scale and bias."""

    def __init__(self):
        super().__init__()
        self.visual = nn.Module()
        self.visual.trunk = timm.models.VisionTransformer(
            img_size=IMAGE,
            patch_size=PATCH,
            embed_dim=WIDTH,
            depth=DEPTH,
            num_heads=HEADS,
            mlp_ratio=MLP / WIDTH,
            class_token=False,
            global_pool='map',
            num_classes=0,
            norm_layer=partial(nn.LayerNorm, eps=1e-6))
        self.text = open_clip.transformer.TextTransformer(
            context_length=LENGTH,
            vocab_size=VOCAB,
            width=WIDTH,
            heads=HEADS,
            layers=DEPTH,
            mlp_ratio=MLP / WIDTH,
            output_dim=TEXT_DIM,
            no_causal_mask=True,
            pool_type='last',
            proj_bias=True,
            norm_layer=partial(open_clip.transformer.LayerNorm, eps=1e-6))
        self.logit_scale = nn.Parameter(torch.zeros(()))
        self.logit_bias = nn.Parameter(torch.zeros(()))


def small_towers(**image_kwargs):
    image_cfg = dict(
        arch=dict(width=WIDTH, depth=DEPTH, num_heads=HEADS, patch_size=PATCH),
        img_size=IMAGE,
        output_dim=None,
        pool_type='map',
        class_token=False,
        patch_bias=True,
        norm_eps=1e-6)
    image_cfg.update(image_kwargs)
    return dict(
        image_encoder=SILCVisionTransformer(**image_cfg).eval(),
        text_encoder=SILCTextTransformer(
            arch=dict(width=WIDTH, depth=DEPTH, num_heads=HEADS),
            context_length=LENGTH,
            vocab_size=VOCAB,
            output_dim=TEXT_DIM,
            causal=False,
            pool_type='last',
            proj_bias=True,
            norm_eps=1e-6).eval(),
        contrastive_loss=SigLipLoss())


@pytest.mark.parametrize('scan,root', [(False, ''), (True, 'params/')])
@torch.no_grad()
def test_big_vision_npz_matches_open_clip_loader(tmp_path, scan, root):
    arrays = big_vision_arrays(scan=scan, root=root)
    path = tmp_path / 'siglip.npz'
    np.savez(path, **arrays)
    reference = OpenClipSigLIPReference().eval()
    open_clip.convert.load_big_vision_weights(reference, str(path))

    with np.load(path) as npz:
        converted = convert_big_vision_arrays(npz)
    towers = small_towers()
    verify_state_dict(converted, towers)
    torch.manual_seed(0)
    images = torch.randn(2, 3, IMAGE, IMAGE)
    tokens = torch.randint(0, VOCAB, (3, LENGTH))
    image_diff = max_diff(towers['image_encoder'].encode_image(images),
                          reference.visual.trunk(images))
    text_diff = max_diff(towers['text_encoder'](tokens), reference.text(tokens))
    print(f'big_vision (scan={scan}) max abs diff: image {image_diff:.2e}, '
          f'text {text_diff:.2e}')
    assert image_diff <= TOLERANCE and text_diff <= TOLERANCE
    assert towers['contrastive_loss'].logit_scale == reference.logit_scale
    assert towers['contrastive_loss'].logit_bias == reference.logit_bias


@torch.no_grad()
def test_big_vision_image_head_becomes_the_projection():
    arrays = big_vision_arrays()
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((WIDTH, TEXT_DIM)).astype(np.float32)
    bias = rng.standard_normal(TEXT_DIM).astype(np.float32)
    with_head = small_towers(output_dim=TEXT_DIM, proj_bias=True)
    verify_state_dict(
        convert_big_vision_arrays(
            dict(arrays, **{
                'img/head/kernel': kernel,
                'img/head/bias': bias
            })), with_head)
    without_head = small_towers()
    verify_state_dict(convert_big_vision_arrays(arrays), without_head)
    images = torch.randn(2, 3, IMAGE, IMAGE)
    pooled = without_head['image_encoder'].encode_image(images)
    expected = pooled @ torch.from_numpy(kernel) + torch.from_numpy(bias)
    torch.testing.assert_close(with_head['image_encoder'].encode_image(images), expected)


@pytest.mark.slow
def test_big_vision_errors(tmp_path):
    arrays = big_vision_arrays()
    arrays['img/extra/kernel'] = np.zeros(3, np.float32)
    with pytest.raises(KeyError, match='img/extra/kernel'):
        convert_big_vision_arrays(arrays)
    del arrays['img/extra/kernel'], arrays['txt/Embed_0/embedding']
    with pytest.raises(KeyError, match="lacks 'txt/Embed_0/embedding'"):
        convert_big_vision_arrays(arrays)
    # The command-line tool checks the weights against the B/16 arch config.
    np.savez(tmp_path / 'small.npz', **big_vision_arrays())
    tool = load_tool('bigvision2silc')
    with pytest.raises(KeyError, match='shape mismatch'):
        tool.main([
            str(tmp_path / 'small.npz'),
            str(tmp_path / 'out.safetensors'), '--model', 'ViT-B-16-SigLIP'
        ])
    with pytest.raises(FileNotFoundError):
        tool.main([
            str(tmp_path / 'missing.npz'),
            str(tmp_path / 'out.pth'), '--model', 'ViT-B-16-SigLIP'
        ])
