"""SC-CLIP's dense forward (SCCLIPDense) against SuleBai/SC-CLIP ``clip/model.py`` written out.

The reference below follows ``VisionTransformer.forward`` of SC-CLIP (commit 0417ba9) in its own
layout, tokens first ``(L, B, D)`` with heads folded into the batch, from the raw weights of a
random tiny CLIP-style tower; the local outlier factor (``lof_pytorch``) and the neighbour fill
(``mean_interpolation``) are explicit loops. Only the embedding (patches, class token, position
embedding, ``ln_pre``) and the ordinary blocks before the last come from the tower.
"""
import pytest
import torch
import torch.nn.functional as F
from mmseg.structures import SegDataSample

from silc_seg.models.layers.sc_clip import SCCLIPDense, fill_from_neighbours, local_outlier_factor
from silc_seg.registry import MODELS

WIDTH, HEADS, DEPTH, OUT = 32, 4, 12, 16
# A 12-block OpenAI-layout tower at width 32, for the whole-tower dense forwards (SC-CLIP,
# ProxyCLIP, CASS) and their segmentors.
TINY_TOWER = dict(
    type='SILCVisionTransformer',
    arch='b16',
    img_size=112,
    patch_size=16,
    width=WIDTH,
    depth=DEPTH,
    num_heads=HEADS,
    output_dim=OUT,
    act='quick_gelu',
    ln_pre=True,
    pos_embed_resize='scale_factor')


def toy_segmentor_cfg(class_names, dense_forward, test_cfg, type='ZeroShotSegmentor', **extra):
    """A zero-shot segmentor config on :data:`TINY_TOWER` and the toy text tower."""
    from . import toy_towers  # noqa: F401  (registers the toy text towers)
    return dict(
        type=type,
        image_encoder=dict(TINY_TOWER),
        text_encoder=dict(type='silc_test.ToyTextEncoder', embed_dim=OUT),
        tokenizer=dict(type='silc_test.ToyWordTokenizer'),
        class_names=class_names,
        templates='single',
        dense_forward=dense_forward,
        test_cfg=test_cfg,
        **extra)


def tiny_tower(seed=0):
    torch.manual_seed(seed)
    tower = MODELS.build(TINY_TOWER).eval()
    with torch.no_grad():
        for block in tower.blocks:
            block.attn.qkv.bias.normal_(std=0.5)
            block.ln_1.weight.uniform_(0.5, 1.5)
            block.ln_1.bias.normal_(std=0.3)
    return tower


# ---------------------------------------------------------------- the reference, written out
def ref_layer_norm(x, norm):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean)**2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def ref_lof(x, n_neighbors, contamination):
    """lof_pytorch on (N, D) tokens, one token at a time."""
    n = x.shape[0]
    distances = torch.norm(x[:, None] - x[None, :], dim=2, p=2)**2
    neighbours, k_dist = [], []
    for i in range(n):
        order = sorted(range(n), key=lambda j: distances[i, j].item())
        neighbours.append(order[1:n_neighbors + 1])
        k_dist.append(distances[i, order[n_neighbors]].item())
    lrd = []
    for i in range(n):
        reach = [max(distances[i, j].item(), k_dist[i]) for j in neighbours[i]]
        lrd.append(n_neighbors / (sum(reach) / len(reach)))
    scores = torch.tensor(
        [sum(lrd[j] / lrd[i] for j in neighbours[i]) / n_neighbors for i in range(n)])
    threshold = torch.quantile(scores, 1 - contamination)
    return [i for i in range(n) if scores[i] > threshold], scores


def ref_mean_interpolation(feature_map, outliers):
    """mean_interpolation on a (C, H, W) map: each outlier becomes the mean of its in-image,
    non-outlier 3x3 neighbours (unchanged without any)."""
    out = feature_map.clone()
    _, height, width = feature_map.shape
    outlier_set = set(outliers)
    for (r, c) in outliers:
        values = [
            feature_map[:, r + dr, c + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1)
            if (dr, dc) != (0, 0) and 0 <= r + dr < height and 0 <= c + dc < width and (
                r + dr, c + dc) not in outlier_set
        ]
        if values:
            out[:, r, c] = torch.stack(values).mean(0)
    return out


def ref_custom_attn(block, x_lnd, mid_simi):
    """custom_attn: (softmax(mask(3 (S - mean S))) + softmax(k k^T s)) / 2, values, out_proj."""
    length, bsz, dim = x_lnd.shape
    head_dim = dim // HEADS
    y = ref_layer_norm(x_lnd, block.ln_1)
    q, k, v = (y @ block.attn.qkv.weight.T + block.attn.qkv.bias).chunk(3, dim=-1)
    k = k.contiguous().view(-1, bsz * HEADS, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * HEADS, head_dim).transpose(0, 1)
    mid = (mid_simi - torch.mean(mid_simi)) * 3.0
    mid[mid < 0.0] = float('-inf')
    weights = F.softmax(mid.repeat(HEADS, 1, 1), dim=-1)
    weights = (weights + F.softmax(torch.bmm(k, k.transpose(1, 2)) * head_dim**-0.5, -1)) / 2
    out = torch.bmm(weights, v).transpose(0, 1).contiguous().view(-1, bsz, dim)
    return out @ block.attn.proj.weight.T + block.attn.proj.bias


def ref_aggregate(feats_lnd, corrs):
    corrs = corrs / (corrs.sum(dim=-1, keepdim=True) + 1e-6)
    return torch.matmul(corrs, feats_lnd.permute(1, 0, 2)).permute(1, 0, 2)


def reference_scclip(tower,
                     image,
                     pre=8,
                     post=3,
                     multi=(3, 10),
                     res_cls=0.3,
                     beta=0.4,
                     n_neighbors=30,
                     contamination=0.05):
    """SC-CLIP's VisionTransformer.forward(return_all=True) for one (1, 3, H, W) image."""
    tokens, (h, w) = tower.embed(image)
    x = tokens.transpose(0, 1)  # (L, 1, D)
    feats_list = []
    for block in tower.blocks[:-1]:
        x = block(x.transpose(0, 1)).transpose(0, 1)
        feats_list.append(x)
    cls_token = x[:1]
    outliers, _ = ref_lof(x[1:, 0], n_neighbors, contamination)
    outliers = [(i // w, i % w) for i in outliers]
    fmap = ref_mean_interpolation(x[1:, 0].T.reshape(WIDTH, h, w), outliers)
    x = fmap.reshape(WIDTH, h * w).T[:, None]
    feats = feats_list[pre][1:, 0].T.reshape(WIDTH, h, w)
    feats = ref_mean_interpolation(feats, outliers).reshape(WIDTH, h * w).T[:, None]
    feats = feats / feats.norm(dim=2, keepdim=True)
    before = torch.matmul(feats.permute(1, 0, 2), feats.permute(1, 2, 0))
    mid = before.clone()
    before[before < beta] = 0.0
    x = ref_aggregate(x, before)
    last = tower.blocks[-1]
    x = ref_custom_attn(last, x, mid) + res_cls * cls_token
    feats = feats_list[post][1:].clone()
    feats = feats / feats.norm(dim=2, keepdim=True)
    after = torch.matmul(feats.permute(1, 0, 2), feats.permute(1, 2, 0))
    after[after < beta] = 0.0
    x = ref_aggregate(x, after)
    re_feats = torch.zeros_like(feats_list[0])
    for i in range(*multi):
        re_feats += feats_list[i]
    re = ref_custom_attn(last, re_feats[1:], mid) + res_cls * re_feats[:1]
    x = x + ref_aggregate(re, after)
    out = ref_layer_norm(x.permute(1, 0, 2), tower.ln_post) @ tower.proj.weight.T
    return out[0].T.reshape(OUT, h, w)


# ------------------------------------------------------------------------------------ tests
def test_local_outlier_factor_matches_the_reference_loops():
    torch.manual_seed(0)
    x = torch.randn(2, 40, 8)
    x[0, 7] += 6.0  # one planted anomaly
    outliers, scores = local_outlier_factor(x, num_neighbours=5, contamination=0.1)
    for b in range(2):
        expected, expected_scores = ref_lof(x[b], 5, 0.1)
        torch.testing.assert_close(scores[b], expected_scores, rtol=1e-5, atol=1e-6)
        assert outliers[b].nonzero().flatten().tolist() == expected
    assert outliers[0, 7]


def test_neighbour_fill_matches_the_reference_loops():
    torch.manual_seed(0)
    maps = torch.randn(1, 3, 4, 5)
    outliers = torch.zeros(1, 4, 5, dtype=torch.bool)
    spots = [(0, 0), (0, 1), (2, 3), (3, 4)]  # a corner pair, an inner and a corner patch
    for r, c in spots:
        outliers[0, r, c] = True
    expected = ref_mean_interpolation(maps[0], spots)
    torch.testing.assert_close(fill_from_neighbours(maps, outliers)[0], expected)
    assert torch.equal(fill_from_neighbours(maps, torch.zeros_like(outliers)), maps)


@pytest.mark.parametrize('seed', [1, 2])
def test_dense_forward_matches_the_reference(seed):
    tower = tiny_tower()
    torch.manual_seed(seed)
    image = torch.randn(1, 3, 112, 112)  # 7 x 7 patches: more than the 30 LOF neighbours
    with torch.no_grad():
        ours = SCCLIPDense()(tower, image)
        expected = reference_scclip(tower, image)
    assert ours.shape == (1, OUT, 7, 7)
    torch.testing.assert_close(ours[0], expected, rtol=1e-4, atol=1e-5)


def test_batched_images_are_independent_and_non_square_grids_use_row_major_patches():
    tower = tiny_tower()
    torch.manual_seed(3)
    images = torch.randn(2, 3, 96, 128)  # 6 x 8 patches
    dense = SCCLIPDense()
    with torch.no_grad():
        both = dense(tower, images)
        first = dense(tower, images[:1])
        # The reference maps outliers as (i // h, i % h) (right for its square windows only);
        # row-major (i // w, i % w) is what the written-out reference does for any grid.
        expected = reference_scclip(tower, images[1:])
    torch.testing.assert_close(both[:1], first, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(both[1], expected, rtol=1e-4, atol=1e-5)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match='must lie in'):
        SCCLIPDense(pre_adjust_index=11)(tiny_tower(), torch.randn(1, 3, 112, 112))
    with pytest.raises(ValueError, match='more than 30 tokens'):
        SCCLIPDense()(tiny_tower(), torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match='start < end'):
        SCCLIPDense(fusion_range=(5, 5))


def test_segmentor_option_runs_the_dense_forward():
    cfg = toy_segmentor_cfg(['cat', 'sky'], dict(type='SCCLIPDense'), dict(mode='whole'))
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    image = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        features = model.extract_feat(image)
        expected = SCCLIPDense()(model.image_encoder, image)
        result = model.predict(
            image, [SegDataSample(metainfo=dict(img_shape=(112, 112), ori_shape=(112, 112)))])
    torch.testing.assert_close(features, expected)
    assert result[0].pred_sem_seg.data.shape == (1, 112, 112)
    with pytest.raises(ValueError, match="leave dense_variant 'plain'"):
        MODELS.build({**cfg, 'dense_variant': 'sclip'})
