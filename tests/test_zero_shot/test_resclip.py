"""ResCLIP's dense forward (ResCLIPDense) against yvhangyang/ResCLIP ``clip/model.py`` written out.

The reference follows ``VisionTransformer.forward`` of ResCLIP (commit 0e085f7) with
``arch='wo_resi'``, ``attn_strategy='resclip'``, ``use_rcs=use_sfr=True`` for one window, in the
reference's layout (tokens first, heads folded into the batch), from the raw weights of a random
tiny CLIP-style tower; ``check_path``, the row smoothing of ``generate_attention_sfr`` and the
patch vote of ``create_patch_matrix`` are explicit loops. NACLIP's Gaussian window comes from the
independent reference of test_dense_variants.py. PAMR is written out in test_components.py
(``_naive_pamr``, minutes at window size here): the reference runs either without PAMR or with
our PAMR module, which test_components.py::test_pamr_matches_definition holds to it.
"""
import pytest
import torch
import torch.nn.functional as F

from silc_seg.models.layers.res_clip import (ResCLIPDense, semantic_feedback_attention,
                                             straight_path_within_label)
from silc_seg.models.utils import PAMR
from .test_dense_variants import ref_gaussian_omega, ref_layer_norm
from .test_scclip import HEADS, OUT, WIDTH, tiny_tower


def ref_qkv(block, x_lnd):
    length, bsz, dim = x_lnd.shape
    y = ref_layer_norm(x_lnd, block.ln_1)
    q, k, v = (y @ block.attn.qkv.weight.T + block.attn.qkv.bias).chunk(3, dim=-1)
    return [t.contiguous().view(-1, bsz * HEADS, dim // HEADS).transpose(0, 1) for t in (q, k, v)]


def ref_out(block, weights, v, bsz):
    out = torch.bmm(weights, v).transpose(0, 1).contiguous().view(-1, bsz, WIDTH)
    return out @ block.attn.proj.weight.T + block.attn.proj.bias


def ref_check_path(labels, max_steps):
    """check_path for every pair, one pair and one step at a time."""
    h, w = labels.shape
    t = torch.linspace(0, 1, steps=max_steps + 1)
    valid = torch.zeros(h * w, h * w, dtype=torch.bool)
    for i in range(h * w):
        for j in range(h * w):
            start, end = torch.tensor([i // w, i % w]), torch.tensor([j // w, j % w])
            steps = int((end - start).abs().max())
            ok = True
            for s in range(steps + 1):
                r, c = (start * (1 - t[s]) + end * t[s]).round().long().tolist()
                ok &= bool(labels[r, c] == labels[start[0], start[1]])
            valid[i, j] = ok
    return valid


def ref_sfr(labels, std):
    """generate_attention_sfr(delete_same_entity=True), (N + 1, N + 1) with the class token."""
    h, w = labels.shape
    n = h * w
    flat = labels.flatten()
    mask = (flat[:, None] == flat[None, :]).float()
    chebyshev = torch.tensor([[max(abs(i // w - j // w), abs(i % w - j % w)) for j in range(n)]
                              for i in range(n)],
                             dtype=torch.float32)
    max_steps = int(chebyshev.max())
    valid = ref_check_path(labels, max_steps)
    mask = torch.where(valid, mask, mask * torch.exp(-chebyshev / max_steps))
    size = min(n, int(6 * std + 1))
    size = size if size % 2 == 1 else size + 1
    offsets = torch.arange(size) - size // 2
    kernel = torch.exp(-(offsets**2) / (2 * std**2))
    kernel = kernel / kernel.sum()
    blurred = torch.zeros(n, n)
    for m in range(size):  # cross-correlation with zero padding, one kernel tap at a time
        shift = m - size // 2
        lo, hi = max(0, -shift), min(n, n - shift)
        blurred[:, lo:hi] += kernel[m] * mask[:, lo + shift:hi + shift]
    blurred = F.relu(blurred)
    blurred = blurred / (blurred.sum(dim=1, keepdim=True) + 1e-8)
    out = torch.zeros(n + 1, n + 1)
    out[1:, 1:] = blurred
    return out[None]


def reference_resclip(tower,
                      img,
                      query_features,
                      temp_thd,
                      rcs_w,
                      sfr_w,
                      std=5.0,
                      logit_scale=40.0,
                      with_pamr=True):
    tokens, (h, w) = tower.embed(img)
    x = tokens.transpose(0, 1)
    scale = (WIDTH // HEADS)**-0.5
    attn_map = []
    for block in tower.blocks[:-1]:
        q, k, _ = ref_qkv(block, x)
        attn_map.append(F.softmax(torch.bmm(q * scale, k.transpose(1, 2)), dim=-1))
        x = block(x.transpose(0, 1)).transpose(0, 1)
    attention_rcs = torch.stack([attn_map[i] for i in range(5, 9)]).mean(dim=0)
    omega = ref_gaussian_omega((h, w), std)[None]
    last = tower.blocks[-1]

    def custom_attn(attn_sfr):
        _, k, v = ref_qkv(last, x)
        weights = torch.bmm(k, k.transpose(1, 2)) * scale
        if attn_sfr is not None:
            attn_sfr = attn_sfr / torch.max(attn_sfr)
            weights = sfr_w[0] * ((1 - sfr_w[1]) * weights + sfr_w[1] * attn_sfr)
        weights = F.softmax(weights + omega, dim=-1)
        weights = rcs_w[0] * ((1 - rcs_w[1]) * weights + rcs_w[1] * attention_rcs)
        return ref_out(last, weights, v, 1)

    def project(tokens_lnd):
        return ref_layer_norm(tokens_lnd.permute(1, 0, 2), tower.ln_post) @ tower.proj.weight.T

    # create_logit_temp: first pass, PAMR, softmax of the scaled logits
    feats = project(custom_attn(None))[:, 1:]
    feats = feats / feats.norm(dim=-1, keepdim=True)
    logits = (feats @ query_features.T).permute(0, 2, 1).reshape(1, -1, h, w)
    logits = F.interpolate(logits, size=img.shape[-2:], mode='bilinear', align_corners=False)
    if with_pamr:
        logits = PAMR(10, dilations=(8, 16))(img, logits)
    probs = torch.softmax(logits[0] * logit_scale, dim=0)
    # create_patch_matrix: threshold, then each patch's most frequent label
    seg_pred = probs.argmax(0)
    seg_pred[probs.max(0)[0] < temp_thd] = 0
    p = tower.patch_size
    patch_labels = torch.zeros(h, w, dtype=torch.long)
    for r in range(h):
        for c in range(w):
            patch_labels[r, c] = torch.mode(seg_pred[r * p:(r + 1) * p,
                                                     c * p:(c + 1) * p].flatten())[0]
    out = project(custom_attn(ref_sfr(patch_labels, std)))[0, 1:]
    return out.T.reshape(OUT, h, w), patch_labels


def queries(seed=5, num=3):
    torch.manual_seed(seed)
    return F.normalize(torch.randn(num, OUT), dim=-1)


def structured_case(tower, seed):
    """A noisy image with three regions and queries taken from NACLIP features of three of its
    patches, so that the first pass labels more than one region."""
    torch.manual_seed(seed)
    image = torch.randn(1, 3, 112, 112)
    image[..., :56] += 3.0
    image[:, 0, 56:] -= 3.0
    with torch.no_grad():
        dense = F.normalize(tower.encode_dense(image, variant='naclip')['dense'][0], dim=0)
    return image, F.normalize(dense[:, [0, 3, 6], [0, 3, 6]].T, dim=-1)


@pytest.mark.slow
@pytest.mark.parametrize('seed,temp_thd,with_pamr', [(1, 0.0, False), (2, 0.36, True)])
def test_dense_forward_matches_the_reference(seed, temp_thd, with_pamr):
    tower = tiny_tower()
    image, text = structured_case(tower, seed)
    dense = ResCLIPDense(
        temp_thd=temp_thd,
        rcs_weights=(2.0, 0.3),
        sfr_weights=(2.1, 0.7),
        pamr=dict(num_iter=10, dilations=(8, 16)) if with_pamr else None)
    with torch.no_grad():
        ours = dense(tower, image, text)
        expected, labels = reference_resclip(
            tower, image, text, temp_thd, (2.0, 0.3), (2.1, 0.7), with_pamr=with_pamr)
    assert ours.shape == (1, OUT, 7, 7)
    assert labels.unique().numel() > 1  # the feedback has more than one region
    torch.testing.assert_close(ours[0], expected, rtol=1e-4, atol=1e-5)


def test_feedback_attention_matches_the_reference_on_a_non_square_grid():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (4, 6))
    labels[1:3, 1:4] = 2  # a blob, so that some straight paths stay inside one label
    valid, steps = straight_path_within_label(labels)
    assert torch.equal(valid, ref_check_path(labels, int(steps.max())))
    torch.testing.assert_close(
        semantic_feedback_attention(labels, 1.5),
        ref_sfr(labels, 1.5)[0, 1:, 1:])


def test_feedback_and_residual_attention_change_the_output_and_are_optional():
    tower = tiny_tower()
    first_image, text = structured_case(tower, 1)
    image = torch.cat([first_image, structured_case(tower, 2)[0]])
    with torch.no_grad():
        full = ResCLIPDense(temp_thd=0.0)(tower, image, text)
        no_sfr = ResCLIPDense(use_sfr=False)(tower, image)
        neither = ResCLIPDense(use_sfr=False, use_rcs=False)(tower, image)
        first = ResCLIPDense(temp_thd=0.0)(tower, image[:1], text)
    assert not torch.allclose(full, no_sfr) and not torch.allclose(no_sfr, neither)
    torch.testing.assert_close(full[:1], first, rtol=1e-5, atol=1e-6)
    # Without RCS and SFR the block is NACLIP's (k-k attention + Gaussian window, reduced).
    with torch.no_grad():
        naclip = tower.encode_dense(image, variant='naclip')['dense']
    torch.testing.assert_close(neither, naclip, rtol=1e-5, atol=1e-6)


def test_bad_inputs_are_clear_errors():
    tower = tiny_tower()
    with pytest.raises(ValueError, match='query text embeddings'):
        ResCLIPDense()(tower, torch.randn(1, 3, 112, 112))
    with pytest.raises(ValueError, match='whole patches'):
        ResCLIPDense()(tower, torch.randn(1, 3, 100, 112), queries())
    with pytest.raises(ValueError, match='must end by block'):
        ResCLIPDense(rcs_layers=(5, 12))(tower, torch.randn(1, 3, 112, 112), queries())
