"""ProxyCLIP's dense forward (ProxyCLIPDense) against mc-lan/ProxyCLIP written out.

The reference follows ``ProxyCLIPSegmentation.forward_feature`` (``proxyclip_segmentor.py``
@05c3c18: ``norm(unnorm(img))`` for the VFM, its final-norm patch tokens as ``ex_feats``) and
``VisionTransformer.forward`` / ``custom_attn`` (``open_clip/transformer.py`` @f2919bb) for one
window, in the reference's layout (tokens first, heads folded into the batch), from the raw
weights of a random tiny CLIP-style tower and a random tiny DINO / DINOv2 whose official forward
is written out in tests/test_converters/test_dino2silc.py. Only the CLIP embedding and the
ordinary blocks before the last come from the tower. The reference reshapes with the image
height for both sides (square windows only); the written-out version keeps rows and columns.
"""
import pytest
import torch
import torch.nn.functional as F
from mmseg.structures import SegDataSample

from silc_seg.models.layers.proxy_clip import ProxyCLIPDense, proxy_attention
from silc_seg.registry import MODELS
from ..test_converters.test_dino2silc import KINDS, official_features, tiny_dino
from .test_dense_variants import ref_layer_norm
from .test_scclip import HEADS, OUT, WIDTH, tiny_tower, toy_segmentor_cfg

CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def reference_proxyclip(tower, vfm_sd, kind, img, beta=1.2, gamma=3.0):
    """``forward_feature`` up to the normalized projected features, for one (1, 3, H, W)
    CLIP-normalized window; returns (C, H', W') on the VFM grid and the masked fraction."""
    imgs_norm = (img * CLIP_STD + CLIP_MEAN - IMAGENET_MEAN) / IMAGENET_STD
    ex_feats = official_features(vfm_sd, imgs_norm, kind)
    patch = tower.patch_size
    tokens, (h, w) = tower.embed(img[..., :img.shape[-2] // patch * patch, :img.shape[-1] //
                                     patch * patch])
    x = tokens.transpose(0, 1)  # (L, 1, D)
    for block in tower.blocks[:-1]:
        x = block(x.transpose(0, 1)).transpose(0, 1)
    attn_layer = tower.blocks[-1].attn
    bsz, embed_dim = 1, WIDTH
    head_dim = embed_dim // HEADS
    y = ref_layer_norm(x, tower.blocks[-1].ln_1)
    q, k, v = (y @ attn_layer.qkv.weight.T + attn_layer.qkv.bias).chunk(3, dim=-1)
    v = v.contiguous().view(-1, bsz * HEADS, head_dim).transpose(0, 1)
    _, _, height, width = ex_feats.shape
    q_k = F.normalize(ex_feats.flatten(2, 3), dim=1)
    similarity = torch.einsum('bcm,bcn->bmn', q_k, q_k)
    similarity = (similarity - torch.mean(similarity) * beta) * gamma
    masked = (similarity < 0.0).float().mean().item()
    similarity[similarity < 0.0] = float('-inf')
    mask = similarity.unsqueeze(1).repeat(1, HEADS, 1, 1)
    mask = mask.reshape(bsz * HEADS, mask.shape[2], mask.shape[3])
    attn_weights = F.softmax(mask, dim=-1)
    v = v[:, 1:, :].reshape(bsz * HEADS, h, w, head_dim).permute(0, 3, 1, 2)
    v = F.interpolate(v, size=(height, width), mode='bilinear', align_corners=False)
    v = v.permute(0, 2, 3, 1).reshape(bsz * HEADS, height * width, head_dim)
    attn_output = torch.bmm(attn_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    attn_output = attn_output @ attn_layer.proj.weight.T + attn_layer.proj.bias
    out = ref_layer_norm(attn_output.permute(1, 0, 2), tower.ln_post) @ tower.proj.weight.T
    return out[0].T.reshape(OUT, height, width), masked


def dense_module(kind, seed=0):
    arch, patch, _, offset, antialias = KINDS[kind]
    dense = ProxyCLIPDense(
        vfm=dict(
            type='DINOViT',
            arch=arch,
            pos_embed_offset=offset,
            pos_embed_antialias=antialias,
            timm_kwargs=dict(embed_dim=32, depth=2, num_heads=2, img_size=6 * patch))).eval()
    vfm, sd = tiny_dino(kind, seed)
    dense.vfm.load_state_dict(vfm.state_dict())
    return dense, sd


@pytest.mark.slow
@pytest.mark.parametrize(
    'kind,size,grid',
    [
        ('dino', (112, 112), (14, 14)),  # VFM B/8 on CLIP B/16: a 7x7 CLIP grid upsampled to 14x14
        ('dinov2_reg', (112, 112), (8, 8)),  # B/14: 7x7 -> 8x8
        ('dinov2', (112, 112), (8, 8)),
        ('dino', (96, 128), (12, 16)),  # non-square window: 6x8 CLIP patches
    ])
def test_dense_forward_matches_the_reference(kind, size, grid):
    tower = tiny_tower()
    dense, sd = dense_module(kind)
    torch.manual_seed(5)
    image = torch.randn(1, 3, *size)
    with torch.no_grad():
        ours = dense(tower, image)
        expected, masked = reference_proxyclip(tower, sd, kind, image)
    assert 0.05 < masked < 0.95  # the threshold is exercised, no query loses every key
    assert ours.shape == (1, OUT) + grid
    torch.testing.assert_close(ours[0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_the_mean_is_taken_per_window_and_beta_gamma_matter():
    tower = tiny_tower()
    dense, sd = dense_module('dino')
    torch.manual_seed(6)
    images = torch.randn(2, 3, 64, 64)
    images[1] *= 3  # another mean similarity
    with torch.no_grad():
        both = dense(tower, images)
        second, _ = reference_proxyclip(tower, sd, 'dino', images[1:])
        dense.beta, dense.gamma = 0.5, 1.0
        other = dense(tower, images)
    torch.testing.assert_close(both[1], second, rtol=1e-4, atol=1e-5)
    assert (both - other).abs().max() > 1e-3


def test_queries_that_lose_every_key_attend_to_themselves():
    features = torch.ones(1, 4, 2, 3)  # all similarities 1: 1 - 1.2 * 1 < 0 everywhere
    attention, empty = proxy_attention(features, beta=1.2, gamma=3.0)
    assert empty == 6 and torch.equal(attention[0], torch.eye(6))
    torch.manual_seed(0)
    attention, empty = proxy_attention(torch.randn(2, 8, 3, 3), beta=1.2, gamma=3.0)
    assert empty == 0 and torch.allclose(attention.sum(-1), torch.ones(2, 9))


def test_bad_settings_and_windows_are_clear_errors():
    with pytest.raises(ValueError, match='gamma must be positive'):
        ProxyCLIPDense(vfm=dict(type='DINOViT'), gamma=0.0)
    dense, _ = dense_module('dinov2')
    with pytest.raises(ValueError, match='no whole 14px patch'):
        dense(tiny_tower(), torch.randn(1, 3, 12, 64))


@pytest.mark.slow
def test_slide_inference_matches_the_reference_windows():
    """ZeroShotSegmentor + ProxyCLIPDense: ``forward_slide`` with ``compute_padsize(H, W, 56)``
    (the 100x112 windows padded evenly to 112x112), logits bilinear to the padded window,
    padding cropped, windows averaged."""
    arch, patch, _, offset, antialias = KINDS['dino']
    cfg = toy_segmentor_cfg(['cat', 'sky', 'road'],
                            dict(
                                type='ProxyCLIPDense',
                                vfm=dict(
                                    type='DINOViT',
                                    arch=arch,
                                    pos_embed_offset=offset,
                                    pos_embed_antialias=antialias,
                                    timm_kwargs=dict(
                                        embed_dim=32, depth=2, num_heads=2, img_size=6 * patch))),
                            dict(
                                mode='slide',
                                crop_size=(112, 112),
                                stride=(56, 56),
                                partial_patches='pad',
                                pad_multiple=56))
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    vfm, sd = tiny_dino('dino')
    model.dense_forward.vfm.load_state_dict(vfm.state_dict())
    image = torch.randn(1, 3, 100, 150)
    meta = dict(img_shape=(100, 150), ori_shape=(100, 150))
    with torch.no_grad():
        ours = model.inference(image, [meta])[0]
        queries, _ = model.text_embeddings()
        total = torch.zeros(3, 100, 150)
        for x1 in (0, 38):  # mmseg's windows of a 100x150 image: 100x112 at x = 0 and 38
            crop = F.pad(image[..., x1:x1 + 112], (0, 0, 6, 6))
            features, _ = reference_proxyclip(model.image_encoder, sd, 'dino', crop)
            logits = torch.einsum('chw,qc->qhw', F.normalize(features, dim=0), queries)
            logits = F.interpolate(logits[None], size=(112, 112), mode='bilinear')[0]
            total[:, :, x1:x1 + 112] += logits[:, 6:106]
        counts = torch.ones(1, 100, 150)
        counts[:, :, 38:112] = 2
        expected = total / counts
        result = model.predict(image, [SegDataSample(metainfo=meta)])
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)
    assert result[0].pred_sem_seg.data.shape == (1, 100, 150)
    with pytest.raises(ValueError, match='pad_multiple must be a positive int'):
        MODELS.build({**cfg, 'test_cfg': dict(mode='whole', pad_multiple=0)})
