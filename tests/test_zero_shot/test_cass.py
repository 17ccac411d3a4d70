"""CASS (CASSDense, CASSTextAdjustment, CASSSegmentor) against MICV-yonsei/CASS written out.

The reference follows ``clip/model.py`` @228ecdd (``VisionTransformer.forward``, ``custom_attn``,
``_process_dino_key``, ``_normalize_key_range``, ``compute_spectrum``, ``optimal_q``,
``_apply_spectral_strategy``, ``_scale_singular_values``, ``gaussian_window``,
``get_attention_addition``), ``cass_segmentor.py`` (``inv_normalize``, ``forward_feature``,
``hierarchical_clustering``, ``hierarchical_prompt``, ``forward_slide``) and
``dino/dino_attention.py`` (``forward``) for one window, in the reference's layout (tokens first,
heads folded into the batch, loops over heads and head pairs), from the raw weights of a random
tiny CLIP-style tower and a random tiny DINO whose official forward is written out in
tests/test_converters/test_dino2silc.py. Only the CLIP embedding and the ordinary blocks come
from the tower. sklearn's ``cosine_distances`` is written out in numpy.
"""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import squareform

from silc_seg.converters import convert_dino_state_dict
from silc_seg.models.layers.cass import CASSDense, low_rank_graph, match_range
from silc_seg.models.layers.cass_text_adjustment import CASSTextAdjustment, ward_clusters
from silc_seg.registry import MODELS
from ..test_converters.test_dino2silc import official_features, official_state_dict
from .test_scclip import HEADS, OUT, WIDTH, ref_layer_norm, tiny_tower, toy_segmentor_cfg

CLIP_MEAN = (122.7709383, 116.7460125, 104.09373615)
CLIP_STD = (68.5005327, 66.6321579, 70.32316305)
INV_MEAN, INV_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.255)
VFM_MEAN, VFM_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def clip_images(*shape, seed=0):
    """CLIP-normalized images of random 8-bit pixels (the reference's inputs)."""
    gen = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, shape, generator=gen).float()
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    return (pixels - mean) / std


def cass_tower(seed=0, key_scale=4.0):
    """The tiny tower with larger keys in its last block, so that its k-k attention (and the
    distilled graph mixed into it) is far from uniform."""
    tower = tiny_tower(seed)
    qkv = tower.blocks[-1].attn.qkv
    with torch.no_grad():
        qkv.weight[WIDTH:2 * WIDTH] *= key_scale
        qkv.bias[WIDTH:2 * WIDTH] *= key_scale
    return tower


def dense_module(seed=0, **kwargs):
    dense = CASSDense(
        vfm=dict(
            type='DINOViT',
            arch='vit_base_patch8_224.dino',
            pos_embed_offset=0.1,
            timm_kwargs=dict(embed_dim=WIDTH, depth=2, num_heads=HEADS, img_size=48)),
        **kwargs).eval()
    sd = official_state_dict('dino', seed)
    dense.vfm.load_state_dict(convert_dino_state_dict(sd), strict=True)
    return dense, sd


# ---------------------------------------------------------------- the reference, written out
def ref_vfm_input(img):
    """``inv_normalize`` -> uint8 -> ``ToTensor`` -> ImageNet ``Normalize`` (square window)."""
    x = img[0].clone()
    for c in range(3):
        x[c] = (x[c] - (-INV_MEAN[c] / INV_STD[c])) / (1 / INV_STD[c])
    array = (x.permute(1, 2, 0).numpy() * 255).astype('uint8')
    t = torch.from_numpy(array).permute(2, 0, 1).float().div(255)
    for c in range(3):
        t[c] = (t[c] - VFM_MEAN[c]) / VFM_STD[c]
    return t[None]


def ref_gaussian_addition(dim1, dim2, std):
    """``gaussian_window`` and ``get_attention_addition`` (a convolution of delta images)."""
    constant = 1 / (std * math.sqrt(2))
    ks = []
    for dim in (2 * dim1 - 1, 2 * dim2 - 1):
        start = -(dim - 1) / 2.0
        ks.append(
            torch.linspace(
                start * constant, (start + (dim - 1)) * constant, steps=dim, dtype=torch.float))
    window = torch.exp(-(torch.stack(torch.meshgrid(*ks, indexing='ij'))**2).sum(0))
    m = torch.einsum('ij,kl->ijkl', torch.eye(dim1), torch.eye(dim2)).permute(0, 3, 1, 2)
    out = F.conv2d(
        m.contiguous().view(-1, dim1, dim2).unsqueeze(1), window[None, None],
        padding='same').squeeze(1)
    return out.view(dim1 * dim2, dim1 * dim2)


def ref_optimal_q(adj, energy_threshold=0.95, initial_q=10, step_size=5):
    max_q = min(adj.shape)
    current_q = initial_q
    while current_q <= max_q:
        u, s, vh = torch.svd_lowrank(adj.type(torch.float64), q=current_q)
        energy = torch.cumsum(s, dim=0) / torch.sum(s)
        if (energy >= energy_threshold).any():
            return u, s, vh
        current_q += step_size
    return u, s, vh


def ref_exact_low_rank(adj, q):
    """Top-``q`` eigenpairs of the symmetric PSD graph (its truncated SVD)."""
    values, vectors = torch.linalg.eigh(adj.type(torch.float64))
    top = torch.argsort(values, descending=True)[:q]
    return vectors[:, top], values[top], vectors[:, top]


def ref_spectrum(adj_matrices, k_eigen=20):
    out = []
    for i in range(adj_matrices.shape[0]):
        vals, _ = torch.sort(torch.linalg.eigvalsh(adj_matrices[i]), descending=True)
        out.append(vals[:k_eigen])
    return torch.stack(out)


def ref_spectral(k, dino_key, scale, heads, rescale, solver, q=10, scale_factor=10.0):
    attn_weights = torch.bmm(k, k.transpose(1, 2)) * scale
    dino_weights = torch.bmm(dino_key, dino_key.transpose(1, 2)) * scale
    dino_eig = F.normalize(ref_spectrum(dino_weights.type(torch.float64)), p=2, dim=1)
    clip_eig = F.normalize(ref_spectrum(attn_weights.type(torch.float64)), p=2, dim=1)
    cost = torch.zeros(heads, heads)
    for i in range(heads):
        for j in range(heads):
            u = torch.sort(F.normalize(dino_eig[i][None], p=1, dim=-1))[0]
            v = torch.sort(F.normalize(clip_eig[j][None], p=1, dim=-1))[0]
            cost[i, j] = 1 - torch.sum(torch.abs(u - v))
    row_ind, col_ind = linear_sum_assignment(cost.numpy())
    combined = torch.zeros_like(attn_weights)
    for idx in range(heads):
        i, j = row_ind[idx], col_ind[idx]
        w_d = 1 - cost[i, j]
        dino_adj, clip_adj = dino_weights[j], attn_weights[i]
        u, s, v = ref_optimal_q(dino_adj, initial_q=q) if solver == 'randomized' else \
            ref_exact_low_rank(dino_adj, q)
        if rescale:
            s_min, s_max = s.min(), s.max()
            s = (s - s_min) / (s_max - s_min) * ((1.5 * s_max) - (0.5 * s_min)) + 0.5 * s_min
        approx = u @ torch.diag(s) @ v.T
        approx.fill_diagonal_(0)
        approx = (approx - approx.min()) / (approx.max() - approx.min()) * (
            clip_adj.max() - clip_adj.min()) + clip_adj.min()
        combined[idx] = (w_d * scale_factor * approx + clip_adj) / (w_d * scale_factor + 1)
    return combined


def ref_mlp(x, block):
    hidden = x @ block.mlp.fc1.weight.T + block.mlp.fc1.bias
    hidden = hidden * torch.sigmoid(1.702 * hidden)
    return hidden @ block.mlp.fc2.weight.T + block.mlp.fc2.bias


def ref_cls(tower, x_lnd):
    """The ordinary last block on ``(L, 1, D)`` tokens; ``ln_post`` of the class token, proj."""
    block = tower.blocks[-1]
    y = ref_layer_norm(x_lnd[:, 0], block.ln_1)
    q, k, v = (y @ block.attn.qkv.weight.T + block.attn.qkv.bias).chunk(3, dim=-1)
    split = [t.view(-1, HEADS, WIDTH // HEADS).transpose(0, 1) for t in (q, k, v)]
    attn = (split[0] @ split[1].transpose(1, 2) * (WIDTH // HEADS)**-0.5).softmax(-1)
    o = (attn @ split[2]).transpose(0, 1).reshape(-1, WIDTH)
    x = x_lnd[:, 0] + o @ block.attn.proj.weight.T + block.attn.proj.bias
    x = x + ref_mlp(ref_layer_norm(x, block.ln_2), block)
    return ref_layer_norm(x[:1], tower.ln_post) @ tower.proj.weight.T


def reference_cass(tower,
                   dino_sd,
                   img,
                   rescale=True,
                   solver='randomized',
                   gaussian_std=5.0,
                   low_rank=10,
                   distill_weight=10.0):
    """``encode_image(img, inv_image, 'dino_vitb8', ...)`` for one square (1, 3, S, S) window:
    (N, C) projected patch features and the (1, C) class-token embedding ``x_last``; the VFM's
    qkv kept in fp32 (``vfm_key_dtype='fp32'``)."""
    qkv = torch.stack(official_features(dino_sd, ref_vfm_input(img), 'dino', HEADS, True))
    side = img.shape[-1]
    dino_n = (side // 8, side // 8)
    patch = tower.patch_size
    n_patches = (img.shape[-2] // patch, img.shape[-1] // patch)
    # The patch convolution leaves out rows / columns that do not fill a patch.
    tokens, _ = tower.embed(img[..., :n_patches[0] * patch, :n_patches[1] * patch])
    x = tokens.transpose(0, 1)
    for block in tower.blocks[:-1]:
        x = block(x.transpose(0, 1)).transpose(0, 1)
    x_last = ref_cls(tower, x)
    attn_layer = tower.blocks[-1].attn
    head_dim = WIDTH // HEADS
    scale = head_dim**-0.5
    y = ref_layer_norm(x, tower.blocks[-1].ln_1)
    _, k, v = (y @ attn_layer.qkv.weight.T + attn_layer.qkv.bias).chunk(3, dim=-1)
    k = k.contiguous().view(-1, HEADS, head_dim).transpose(0, 1)[:, 1:, :]
    v = v.contiguous().view(-1, HEADS, head_dim).transpose(0, 1)[:, 1:, :]
    dino_key = qkv[1, :, :, 1:, :].squeeze(0).permute(0, 2, 1)
    dino_key = F.interpolate(
        dino_key.reshape(HEADS, head_dim, *dino_n),
        size=n_patches,
        mode='bilinear',
        align_corners=False).reshape(HEADS, head_dim, -1).permute(0, 2, 1)
    dino_key = (dino_key - dino_key.min()) / (dino_key.max() -
                                              dino_key.min()) * (k.max() - k.min()) + k.min()
    attn = ref_spectral(k, dino_key, scale, HEADS, rescale, solver, low_rank, distill_weight)
    attn = F.softmax(attn + ref_gaussian_addition(*n_patches, gaussian_std)[None], dim=-1)
    out = torch.bmm(attn, v).transpose(0, 1).contiguous().view(-1, 1, WIDTH)
    out = out @ attn_layer.proj.weight.T + attn_layer.proj.bias
    out = ref_layer_norm(out.permute(1, 0, 2), tower.ln_post) @ tower.proj.weight.T
    return out[0], x_last


def ref_clusters(query, threshold):
    x = query.double().numpy()
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    distances = np.clip(1 - x @ x.T, 0, 2)
    np.fill_diagonal(distances, 0)
    tree = linkage(squareform(distances, checks=False), method='ward')
    return fcluster(tree, t=threshold, criterion='distance') - 1


def ref_adjusted_logits(image_features, global_vector, query, threshold, alpha, weight):
    """``forward_feature`` after the tower: (N, C) features, (1, C) global -> (N, Q)."""
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    global_vector = global_vector / global_vector.norm(dim=-1, keepdim=True)
    global_sim = global_vector @ query.T
    clusters = ref_clusters(query, threshold)
    similarities = global_sim.squeeze(0).numpy()
    adjusted = query.clone()
    for cluster_id in range(len(set(clusters))):
        indices = np.where(clusters == cluster_id)[0]
        class_i = int(indices[np.argmax(similarities[indices])])
        text_i = F.normalize(query[class_i][None], dim=1)
        sims = (F.normalize(image_features, dim=1) @ text_i.T).squeeze(1)
        top = torch.topk(sims, min(2, image_features.shape[0])).indices
        mean_vector = F.normalize(image_features[top].mean(dim=0), dim=0)
        adjusted[class_i] = F.normalize((1 - alpha) * text_i[0] + alpha * mean_vector, dim=0)
    logits = image_features @ adjusted.T
    return logits * (1 - weight) + global_sim * weight, clusters


def assignment_margin(tower, dense, image):
    """Second-best minus best total cost over all head assignments of one window: the
    normalized spectra are often dominated by one eigenvalue, which makes the costs additive
    and every assignment equally good; then float noise picks the assignment."""
    x, hw = tower.embed(image)
    for block in tower.blocks[:-1]:
        x = block(x)
    _, k, _ = tower.blocks[-1].attn.split_qkv(tower.blocks[-1].ln_1(x))
    k = k[0, :, 1:]
    vfm = dense.vfm_keys(image, hw, k.dtype)[0]
    vfm = (vfm - vfm.min()) / (vfm.max() - vfm.min()) * (k.max() - k.min()) + k.min()
    graphs = [g @ g.transpose(-2, -1) * g.shape[-1]**-0.5 for g in (vfm, k)]
    cost = 1 - ref_spectral_distances(*graphs)
    totals = sorted(
        sum(float(cost[i, p[i]]) for i in range(HEADS))
        for p in itertools.permutations(range(HEADS)))
    return totals[1] - totals[0]


def ref_spectral_distances(dino_weights, attn_weights):
    dino_eig = F.normalize(ref_spectrum(dino_weights.double()), p=2, dim=1)
    clip_eig = F.normalize(ref_spectrum(attn_weights.double()), p=2, dim=1)
    out = torch.zeros(HEADS, HEADS, dtype=torch.float64)
    for i in range(HEADS):
        for j in range(HEADS):
            u = torch.sort(F.normalize(dino_eig[i][None], p=1, dim=-1))[0]
            v = torch.sort(F.normalize(clip_eig[j][None], p=1, dim=-1))[0]
            out[i, j] = torch.sum(torch.abs(u - v))
    return out


def grouped_queries(seed=0, groups=4, per_group=3):
    """Queries in tight groups (Ward merges them below 0.1), normalized."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(groups, 1, OUT, generator=gen)
    queries = centres + 0.05 * torch.randn(groups, per_group, OUT, generator=gen)
    return F.normalize(queries.reshape(-1, OUT), dim=-1)


# ---------------------------------------------------------------------------------- tests
# The tiny tower's key graphs have rank <= 9 (8 channels per head, plus the offset of the range
# match): with rank 10 the smallest kept singular value is ~0 and the rescale is a plain scale,
# so rank 6 is checked too.
@pytest.mark.parametrize('solver,rescale,low_rank', [('randomized', True, 10),
                                                     ('randomized', True, 6),
                                                     ('randomized', False, 6), ('exact', True, 6)])
def test_dense_forward_matches_the_reference(solver, rescale, low_rank):
    tower = cass_tower()
    dense, sd = dense_module(
        low_rank_solver=solver,
        rescale_singular_values=rescale,
        low_rank=low_rank,
        vfm_key_dtype='fp32')
    image = clip_images(1, 3, 64, 64, seed=4)
    with torch.no_grad():
        assert assignment_margin(tower, dense, image) > 1e-3  # one best head assignment
        torch.manual_seed(11)
        ours, ours_global = dense.forward_with_global(tower, image)
        torch.manual_seed(11)
        expected, expected_global = reference_cass(
            tower, sd, image, rescale, solver, low_rank=low_rank)
    assert ours.shape == (1, OUT, 4, 4)
    torch.testing.assert_close(ours[0].flatten(1).T, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours_global, expected_global, rtol=1e-4, atol=1e-5)


def test_fp16_vfm_keys_follow_the_reference_casts():
    """``dino_attn.half()``: the keys are resized, range-matched and multiplied in fp16 (bit for
    bit here). Not compared end to end: a change of 1e-7 in CLIP's key range moves some fp16
    keys by one step, and the fp16 graphs' small eigenvalues (noise at 1e-3 of the largest)
    move with them, so the head assignment may change."""
    dense, _ = dense_module(vfm_key_dtype='fp16')
    image = clip_images(1, 3, 64, 64, seed=3)
    with torch.no_grad():
        q, k, v, grid = dense.vfm.forward_last_qkv(dense.vfm_inputs(image))
        ours = dense.vfm_keys(image, (4, 4), torch.float32)
        dino_key = torch.stack([q, k, v]).half()[1, :, :, 1:, :].squeeze(0).permute(0, 2, 1)
        dino_key = F.interpolate(
            dino_key.reshape(HEADS, WIDTH // HEADS, *grid),
            size=(4, 4),
            mode='bilinear',
            align_corners=False).reshape(HEADS, WIDTH // HEADS, -1).permute(0, 2, 1)
        assert ours.dtype == torch.float16 and torch.equal(ours[0], dino_key)
        clip_k = torch.randn(HEADS, 16, WIDTH // HEADS)
        expected = (dino_key - dino_key.min()) / (dino_key.max() - dino_key.min()) * (
            clip_k.max() - clip_k.min()) + clip_k.min()
        assert expected.dtype == torch.float16
        assert torch.equal(match_range(ours[0], clip_k), expected)
    assert dense_module()[0].vfm_key_dtype == 'fp16'  # the default, as the reference


def test_the_distillation_and_its_settings_change_the_features():
    tower = cass_tower()
    image = clip_images(2, 3, 64, 64, seed=4)
    base = dict(vfm_key_dtype='fp32', low_rank_solver='exact', low_rank=6)
    settings = dict(
        default={},
        no_rescale=dict(rescale_singular_values=False),
        weight=dict(distill_weight=0.5))
    with torch.no_grad():
        outputs = {
            name: dense_module(**base, **extra)[0](tower, image)
            for name, extra in settings.items()
        }
        alone = dense_module(**base)[0](tower, image[1:])
    torch.testing.assert_close(outputs['default'][1:], alone, rtol=1e-4, atol=1e-5)
    for name in ('no_rescale', 'weight'):
        assert (outputs[name] - outputs['default']).abs().max() > 1e-3


def test_randomized_low_rank_is_exact_on_graphs_of_low_rank():
    gen = torch.Generator().manual_seed(0)
    factors = torch.randn(30, 7, generator=gen, dtype=torch.float64)
    graph = factors @ factors.T  # rank 7 < 10
    u, s, _ = ref_exact_low_rank(graph, 10)
    s_min, s_max = s.min(), s.max()
    s = (s - s_min) / (s_max - s_min) * (1.5 * s_max - 0.5 * s_min) + 0.5 * s_min
    expected = u @ torch.diag(s) @ u.T
    expected.fill_diagonal_(0)
    for solver in ('randomized', 'exact'):
        torch.testing.assert_close(
            low_rank_graph(graph, 10, solver, rescale=True), expected, rtol=1e-7, atol=1e-8)
    # Fewer patches than the rank: every component is kept.
    small = factors[:6] @ factors[:6].T
    assert low_rank_graph(small, 10, 'exact', rescale=False).shape == (6, 6)


def test_vfm_input_is_the_reference_8_bit_image_squared_like_pil():
    from PIL import Image
    dense, _ = dense_module()
    image = clip_images(1, 3, 48, 72, seed=5)
    square = clip_images(1, 3, 48, 48, seed=5)
    torch.testing.assert_close(dense.vfm_inputs(square), ref_vfm_input(square))
    # A non-square window: a square of its short side (the reference's PIL bicubic resize).
    x = image[0].clone()
    for c in range(3):
        x[c] = (x[c] - (-INV_MEAN[c] / INV_STD[c])) / (1 / INV_STD[c])
    array = (x.permute(1, 2, 0).numpy() * 255).astype('uint8')
    pil = np.asarray(Image.fromarray(array).resize((48, 48))).astype(np.float32)
    ours = dense.vfm_inputs(image)[0].permute(1, 2, 0)
    ours = ((ours * torch.tensor(VFM_STD) + torch.tensor(VFM_MEAN)) * 255).round().numpy()
    assert ours.shape == (48, 48, 3)
    difference = np.abs(ours - pil)
    assert difference.max() <= 1 and difference.mean() < 0.1


def test_text_adjustment_matches_the_reference():
    torch.manual_seed(0)
    queries = grouped_queries()
    features = torch.randn(1, OUT, 4, 5)
    global_vector = torch.randn(1, OUT)
    adjust = CASSTextAdjustment(cluster_threshold=0.1, mean_vector_weight=0.3, global_weight=0.2)
    ours = adjust(features, global_vector, queries)
    expected, clusters = ref_adjusted_logits(features[0].flatten(1).T, global_vector, queries, 0.1,
                                             0.3, 0.2)
    assert len(set(clusters)) == 4  # the tight groups merge, the groups stay apart
    assert torch.equal(ward_clusters(queries, 0.1), torch.from_numpy(clusters).long())
    torch.testing.assert_close(ours[0].flatten(1).T, expected, rtol=1e-5, atol=1e-6)
    plain = torch.einsum('bchw,qc->bqhw', F.normalize(features, dim=1), queries)
    assert (ours - plain).abs().max() > 1e-2
    with pytest.raises(ValueError, match='top_k'):
        CASSTextAdjustment(top_k=0)


def test_a_single_query_is_its_own_cluster():
    assert ward_clusters(torch.randn(1, 8), 0.1).tolist() == [0]


def segmentor(mode='slide', global_view='image', crop=64, stride=48):
    cfg = toy_segmentor_cfg(
        ['cat', 'sky', 'road', 'tree'],
        # Without the distilled graph: the head assignment of these windows is degenerate
        # (see assignment_margin), which the block tests above avoid.
        dict(
            type='CASSDense',
            distill_weight=0.0,
            vfm_key_dtype='fp32',
            vfm=dict(
                type='DINOViT',
                arch='vit_base_patch8_224.dino',
                pos_embed_offset=0.1,
                timm_kwargs=dict(embed_dim=WIDTH, depth=2, num_heads=HEADS, img_size=48))),
        dict(mode=mode, crop_size=(crop, crop), stride=(stride, stride), partial_patches='drop'),
        type='CASSSegmentor',
        text_adjustment=dict(
            type='CASSTextAdjustment',
            cluster_threshold=0.1,
            mean_vector_weight=0.3,
            global_weight=0.25),
        global_view=global_view)
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    sd = official_state_dict('dino', 0)
    model.dense_forward.vfm.load_state_dict(convert_dino_state_dict(sd), strict=True)
    with torch.no_grad():  # the tiny tower's random setup (qkv bias, ln_1)
        model.image_encoder.load_state_dict(cass_tower().state_dict())
    return model, sd


def ref_whole_cls(tower, img):
    """``encode_image(whole_img, ..., return_cls=True)``: conv drops partial patches."""
    patch = tower.patch_size
    h, w = img.shape[-2] // patch * patch, img.shape[-1] // patch * patch
    tokens, _ = tower.embed(img[..., :h, :w])
    x = tokens.transpose(0, 1)
    for block in tower.blocks[:-1]:
        x = block(x.transpose(0, 1)).transpose(0, 1)
    return ref_cls(tower, x)


def one_merge_threshold(model):
    """A Ward cut between the first and second merge of the model's queries: the two closest
    queries share a cluster, the others stay alone; set on the model."""
    queries, _ = model.text_embeddings()
    x = F.normalize(queries.double(), dim=-1).numpy()
    tree = linkage(
        squareform(np.clip(1 - x @ x.T, 0, 2) * (1 - np.eye(len(x))), checks=False), method='ward')
    threshold = float(tree[:2, 2].mean())
    model.text_adjustment.cluster_threshold = threshold
    return threshold


def ref_forward_slide(model, sd, img, stride, crop, whole_view, threshold):
    queries, _ = model.text_embeddings()
    alpha, weight = 0.3, 0.25
    _, _, h_img, w_img = img.shape
    h_grids = max(h_img - crop + stride - 1, 0) // stride + 1
    w_grids = max(w_img - crop + stride - 1, 0) // stride + 1
    preds = img.new_zeros((1, queries.shape[0], h_img, w_img))
    count = img.new_zeros((1, 1, h_img, w_img))
    whole_global = ref_whole_cls(model.image_encoder, img)
    clusters = None
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y2, x2 = min(h_idx * stride + crop, h_img), min(w_idx * stride + crop, w_img)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            crop_img = img[:, :, y1:y2, x1:x2]
            features, x_last = reference_cass(
                model.image_encoder, sd, crop_img, distill_weight=0.0)
            logits, clusters = ref_adjusted_logits(features,
                                                   whole_global if whole_view else x_last, queries,
                                                   threshold, alpha, weight)
            n = crop_img.shape[-2] // 16, crop_img.shape[-1] // 16
            logits = logits.T.reshape(1, -1, *n)
            logits = F.interpolate(logits, size=crop_img.shape[-2:], mode='bilinear')
            preds += F.pad(logits, (x1, w_img - x2, y1, h_img - y2))
            count[:, :, y1:y2, x1:x2] += 1
    return (preds / count)[0], clusters


@pytest.mark.parametrize('global_view', ['image', 'window'])
def test_slide_inference_matches_the_reference_windows(global_view):
    """``forward_slide``: 64x64 windows with stride 48 over a 100x150 image (2 x 3 windows),
    the prior from the whole image's class token (or each window's, Cityscapes)."""
    model, sd = segmentor(global_view=global_view)
    threshold = one_merge_threshold(model)
    image = clip_images(1, 3, 100, 150, seed=6)
    meta = dict(img_shape=(100, 150), ori_shape=(100, 150))
    with torch.no_grad():
        torch.manual_seed(3)
        ours = model.inference(image, [meta])[0]
        torch.manual_seed(3)
        expected, clusters = ref_forward_slide(model, sd, image, 48, 64, global_view == 'image',
                                               threshold)
    assert len(set(clusters)) == 3  # two of the four queries share a cluster
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def test_whole_mode_takes_the_prior_from_the_image_itself():
    model, sd = segmentor(mode='whole')
    threshold = one_merge_threshold(model)
    image = clip_images(1, 3, 72, 72, seed=7)  # 72 = 4 patches + 8 px the tower leaves out
    meta = dict(img_shape=(72, 72), ori_shape=(72, 72))
    with torch.no_grad():
        torch.manual_seed(3)
        ours = model.inference(image, [meta])[0]
        torch.manual_seed(3)
        queries, _ = model.text_embeddings()
        features, x_last = reference_cass(model.image_encoder, sd, image, distill_weight=0.0)
        logits, _ = ref_adjusted_logits(features, x_last, queries, threshold, 0.3, 0.25)
        expected = F.interpolate(logits.T.reshape(1, -1, 4, 4), size=(72, 72), mode='bilinear')
    torch.testing.assert_close(ours, expected[0], rtol=1e-4, atol=1e-5)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match='low_rank_solver'):
        CASSDense(vfm=dict(type='DINOViT'), low_rank_solver='lanczos')
    with pytest.raises(ValueError, match='vfm_key_dtype'):
        CASSDense(vfm=dict(type='DINOViT'), vfm_key_dtype='bf16')
    dense, _ = dense_module()
    with pytest.raises(ValueError, match='no whole 16px CLIP patch'):
        dense(cass_tower(), clip_images(1, 3, 12, 64))
    segmentor()  # registers the toy text towers
    with pytest.raises(ValueError, match='dense_forward with forward_with_global'):
        MODELS.build(
            dict(
                type='CASSSegmentor',
                image_encoder=dict(
                    type='SILCVisionTransformer',
                    arch='b16',
                    width=32,
                    depth=1,
                    num_heads=2,
                    output_dim=16),
                text_encoder=dict(type='silc_test.ToyTextEncoder', embed_dim=16),
                tokenizer=dict(type='silc_test.ToyWordTokenizer'),
                class_names=['a', 'b']))
