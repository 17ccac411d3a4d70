"""tools/analysis_tools/compare_with_reference.py without the official repositories: the label
agreement and the stage report on files written here, the errors for a missing or wrong
reference directory, and a whole run against a fake reference written by the test (a tiny
segmentor that predicts a known label pattern)."""
import os.path as osp

import numpy as np
import pytest
import torch

from silc_seg.utils import import_file_as_module
from ..fake_checkouts import write_fake_sclip

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    return import_file_as_module(
        osp.join(REPO, 'tools', 'analysis_tools', 'compare_with_reference.py'),
        'silc_tool_compare_with_reference')


def write_labels(folder, maps):
    (folder / 'labels').mkdir(parents=True)
    for name, labels in maps.items():
        np.save(folder / 'labels' / f'{name}.npy', labels.astype(np.int16))


def test_label_agreement_counts_pixels(tmp_path):
    tool = load_tool()
    rng = np.random.default_rng(0)
    a = {
        'img_a': rng.integers(0, 21, (10, 14)),
        'img_b': rng.integers(0, 21, (12, 9)),
        'only_ours': rng.integers(0, 21, (4, 4))
    }
    b = {'img_a': a['img_a'].copy(), 'img_b': a['img_b'].copy()}
    b['img_a'][3, 2:9] = (b['img_a'][3, 2:9] + 1) % 21  # 7 differing pixels
    b['img_b'][0, 0] = (b['img_b'][0, 0] + 5) % 21  # 1
    write_labels(tmp_path / 'ours', a)
    write_labels(tmp_path / 'ref', b)
    result = tool.label_agreement(str(tmp_path / 'ours'), str(tmp_path / 'ref'))
    assert result['images']['img_a'] == dict(pixels=140, same=133, share=133 / 140)
    assert result['images']['img_b']['same'] == 107
    assert result['total'] == dict(pixels=248, same=240, share=240 / 248)
    assert result['missing'] == ['only_ours']
    np.save(tmp_path / 'ref' / 'labels' / 'img_b.npy', np.zeros((9, 12), np.int16))
    with pytest.raises(RuntimeError, match=r'img_b: our label map is \(12, 9\)'):
        tool.label_agreement(str(tmp_path / 'ours'), str(tmp_path / 'ref'))


def write_stages(tool, folder, text, window_shift=0.0, final_shift=0.0, boxes=None):
    (folder / 'stages').mkdir(parents=True)
    gen = torch.Generator().manual_seed(1)
    image = torch.randn(3, 20, 30, generator=gen)
    boxes = boxes or [(0, 20, 0, 20), (0, 20, 10, 30)]
    windows = [torch.rand(5, 20, 20, generator=gen) for _ in boxes]
    windows[1] = windows[1] + window_shift
    merged = torch.rand(5, 20, 30, generator=gen)
    final = torch.rand(5, 25, 37, generator=gen) + final_shift
    tool.save_stages(
        str(folder / 'stages' / 'img.npz'), image, boxes, windows, merged, final, stride=2)
    np.save(folder / 'stages' / 'text.npy', text)
    write_labels(folder, {'img': np.arange(12).reshape(3, 4)})


def test_stage_report_names_the_first_divergent_stage(tmp_path):
    tool = load_tool()
    text = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    write_stages(tool, tmp_path / 'ours', text)
    write_stages(tool, tmp_path / 'same', text)
    report = tool.stage_report(str(tmp_path / 'ours'), str(tmp_path / 'same'), atol=1e-6)
    assert report['first_divergent'] is None
    assert [row['stage'] for row in report['stages']] == list(tool.STAGES)
    assert all(row['ok'] for row in report['stages'])
    # Windows off by 0.25 (one of two), later stages written identical: 'windows' comes first.
    write_stages(tool, tmp_path / 'windows', text, window_shift=0.25)
    report = tool.stage_report(str(tmp_path / 'ours'), str(tmp_path / 'windows'), atol=1e-3)
    rows = {row['stage']: row for row in report['stages']}
    assert report['first_divergent'] == 'windows'
    assert rows['windows']['max_abs_diff'] == pytest.approx(0.25, abs=1e-6)
    assert rows['text']['ok'] and rows['final']['ok']
    # Text off by 1e-2 at one entry, and windows placed elsewhere.
    shifted = text.copy()
    shifted[2, 3] += 1e-2
    write_stages(
        tool, tmp_path / 'text', shifted, final_shift=0.5, boxes=[(0, 20, 0, 20), (0, 20, 9, 29)])
    report = tool.stage_report(str(tmp_path / 'ours'), str(tmp_path / 'text'), atol=1e-3)
    rows = {row['stage']: row for row in report['stages']}
    assert report['first_divergent'] == 'text'
    assert rows['text']['max_abs_diff'] == pytest.approx(1e-2, rel=1e-3)
    assert 'windows differ' in rows['windows']['note'] and not rows['windows']['ok']
    assert rows['final']['max_abs_diff'] == pytest.approx(0.5, abs=1e-6)
    text_files = tmp_path / 'text' / 'stages'
    np.save(text_files / 'text.npy', text[:4])
    report = tool.stage_report(str(tmp_path / 'ours'), str(tmp_path / 'text'))
    assert 'shapes differ' in report['stages'][1]['note']


def test_reference_dir_errors(tmp_path, capsys):
    tool = load_tool()
    missing = tmp_path / 'nowhere'
    with pytest.raises(SystemExit, match=r'nowhere does not exist .*wangf3014/SCLIP'):
        tool.main(['sclip', 'voc21', '--reference-dir', str(missing)])
    with pytest.raises(SystemExit, match='--reference-dir is required'):
        tool.main(['naclip', 'ade150'])
    wrong = tmp_path / 'wrong'
    (wrong / 'configs').mkdir(parents=True)
    (wrong / 'custom_datasets.py').write_text('')
    with pytest.raises(
            SystemExit,
            match=r'not a checkout of sinahmr/NACLIP for pc59: it lacks '
            r'naclip.py, configs/cfg_context59.py'):
        tool.main(['naclip', 'pc59', '--reference-dir', str(wrong)])
    assert not (tmp_path / 'work_dirs').exists()


# A fake SCLIP checkout: its segmentor reads the weights as clip.load would (a plain state
# dict), has the attributes the stage recorders use, and predicts the label (x // 8) % 3.
FAKE_SEGMENTOR = '''
import torch
from mmengine.structures import PixelData
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.models.segmentors import BaseSegmentor
from mmseg.registry import MODELS
from prompts.imagenet_template import openai_imagenet_template


@MODELS.register_module()
class CLIPForSegmentation(BaseSegmentor):
    def __init__(self, clip_path, name_path, device='cuda', **kwargs):
        super().__init__(data_preprocessor=SegDataPreProcessor(
            mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323], rgb_to_bgr=True))
        state_dict = torch.load(clip_path, map_location='cpu')
        assert state_dict['visual.conv1.weight'].shape[-1] == 16
        assert len(openai_imagenet_template) == 1
        with open(name_path) as f:
            self.query_features = torch.zeros(len(f.readlines()), 64)
        self.slide_crop, self.slide_stride, self.patch_size = 0, 0, 16

    def forward_feature(self, img):
        return torch.zeros((1, len(self.query_features)) + img.shape[-2:])

    def predict(self, inputs, data_samples):
        self.forward_feature(inputs)
        height, width = data_samples[0].ori_shape
        return self.postprocess_result(torch.zeros(1, len(self.query_features), height, width),
                                       data_samples)

    def postprocess_result(self, seg_logits, data_samples):
        width = seg_logits.shape[-1]
        labels = (torch.arange(width) // 8 % 3).expand(seg_logits.shape[-2:])[None]
        data_samples[0].set_data(dict(pred_sem_seg=PixelData(data=labels.clone())))
        return data_samples

    def _forward(self, inputs, data_samples=None):
        pass

    def inference(self, inputs, batch_img_metas):
        pass

    def encode_decode(self, inputs, batch_img_metas):
        pass

    def extract_feat(self, inputs):
        pass

    def loss(self, inputs, data_samples):
        pass
'''
FAKE_CONFIG = '''
model = dict(type='CLIPForSegmentation', clip_path='ViT-B/16', name_path='./configs/cls_voc21.txt')
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
default_scope = 'mmseg'
test_cfg = dict(type='TestLoop')
log_level = 'WARNING'
test_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='PascalVOCDataset', data_root='',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='Resize', scale=(2048, 336), keep_ratio=True),
                  dict(type='LoadAnnotations'), dict(type='PackSegInputs')]))
'''


@pytest.mark.slow
def test_whole_run_against_a_fake_reference(tmp_path):
    tool = load_tool()
    fake = write_fake_sclip(tmp_path / 'fake_sclip', FAKE_SEGMENTOR, {'cfg_voc21.py': FAKE_CONFIG})
    work = tmp_path / 'work'
    report = tool.main([
        'sclip', 'voc21', '--reference-dir',
        str(fake), '--work-dir',
        str(work), '--arch', 'tiny', '--num-templates', '1', '--num-images', '1', '--stages',
        '--device', 'cpu'
    ])
    ours = np.load(work / 'ours' / 'labels' / '2007_000000.npy')
    pattern = (np.arange(ours.shape[1]) // 8 % 3)[None].repeat(ours.shape[0], 0)
    assert report['agreement']['total']['share'] == pytest.approx((ours == pattern).mean())
    assert report['agreement']['total']['pixels'] == ours.size
    assert any('first 1 templates' in line for line in report['patches'])
    rows = {row['stage']: row for row in report['stages']['stages']}
    # Same image file, normalization written with 3 decimals: the inputs agree within 1e-4.
    assert rows['input']['ok'] and rows['input']['max_abs_diff'] < 1e-4
    assert report['stages']['first_divergent'] == 'text'
    assert (work / 'report.json').is_file()
    # The user's checkout is not written to.
    assert sorted(p.name for p in fake.iterdir()) == [
        'clip_segmentor.py', 'configs', 'custom_datasets.py', 'prompts'
    ]


def test_cass_copy_reads_the_vfm_file_and_keeps_prompts_on_the_tower_device(tmp_path):
    tool = load_tool()
    checkout = tmp_path / 'cass'
    checkout.mkdir()
    (checkout / 'cass_segmentor.py').write_text(
        "query = clip.tokenize(words).to('cuda')\n"
        "self.dino_model = DinoSelfAttention(arch='vit_base', patch_size=8, "
        'image_size=(224, 224))\n')
    lines = tool.reference_runner.copy_and_patch(
        str(checkout), str(tmp_path / 'copy'), 'cass', 'cpu')
    text = (tmp_path / 'copy' / 'cass_segmentor.py').read_text()
    assert "environ['REFERENCE_VFM_WEIGHTS']" in text and ".to('cuda')" not in text
    assert '.to(next(net.parameters()).device)' in text and len(lines) == 2
    assert (checkout / 'cass_segmentor.py').read_text().count("'cuda'") == 1  # untouched
    lines = tool.reference_runner.copy_and_patch(
        str(checkout), str(tmp_path / 'gpu'), 'cass', 'cuda')
    assert len(lines) == 1 and ".to('cuda')" in (tmp_path / 'gpu' /
                                                 'cass_segmentor.py').read_text()
    (checkout / 'cass_segmentor.py').write_text('nothing to patch\n')
    with pytest.raises(RuntimeError, match='cannot patch cass_segmentor.py'):
        tool.reference_runner.copy_and_patch(str(checkout), str(tmp_path / 'bad'), 'cass', 'cpu')


@pytest.mark.slow
def test_proxyclip_weights_fill_the_tiny_preset_and_vfm_dir_errors(tmp_path):
    """The random DINO weights (official key layout) converted with the CLIP ones load into the
    ProxyCLIP preset with the tiny overrides, every key and shape used; a missing or wrong
    --vfm-dir is a clear error before anything is written."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from silc_seg.registry import MODELS
    from silc_seg.utils import load_model_checkpoint
    tool = load_tool()
    clip = tool.make_openai_weights(str(tmp_path / 'clip.pt'), 'tiny', seed=0)
    dino = tool.make_dino_weights(str(tmp_path / 'dino.pth'), 'dino_vitb8', 'tiny', seed=0)
    assert dino['patch_embed.proj.weight'].shape == (128, 3, 8, 8)
    assert dino['pos_embed'].shape == (1, 1 + 28 * 28, 128)
    assert not any(key.startswith(('head.', 'vit.')) for key in dino)
    saved = torch.load(tmp_path / 'dino.pth')
    assert sorted(saved) == sorted(dino) and torch.equal(saved['cls_token'], dino['cls_token'])
    checkpoint = str(tmp_path / 'ours.pth')
    tool.convert_for_ours(clip, checkpoint, dino)
    cfg = Config.fromfile(tool.preset_path('proxyclip', 'voc21'))
    cfg.merge_from_dict(tool.tiny_overrides('tiny', 'proxyclip'))
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    load_model_checkpoint(model, checkpoint)  # raises on a missing, unused or misshapen key
    vit = model.dense_forward.vfm.vit
    assert torch.equal(vit.blocks[3].attn.qkv.weight, dino['blocks.3.attn.qkv.weight'])
    assert torch.equal(vit.norm.bias, dino['norm.bias'])

    with pytest.raises(tool.ReferenceDirError, match='--vfm-dir must be a checkout of'):
        tool.check_vfm_dir(None, 'proxyclip')
    (tmp_path / 'dino_src').mkdir()
    (tmp_path / 'dino_src' / 'hubconf.py').write_text('')
    with pytest.raises(tool.ReferenceDirError, match='lacks vision_transformer.py, utils.py'):
        tool.check_vfm_dir(str(tmp_path / 'dino_src'), 'proxyclip')
    assert tool.check_vfm_dir(None, 'sclip') is None


def _assignment_margin(cost):
    """The Hungarian assignment of ``cost`` and how much more the second-best one costs (each
    edge of the best forbidden in turn)."""
    from scipy.optimize import linear_sum_assignment
    rows, cols = linear_sum_assignment(cost)
    best, second = cost[rows, cols].sum(), np.inf
    for i, j in zip(rows, cols):
        forbidden = cost.copy()
        forbidden[i, j] = 1e9
        rows2, cols2 = linear_sum_assignment(forbidden)
        second = min(second, forbidden[rows2, cols2].sum())
    return cols, second - best


def _cass_cost(clip_keys, vfm_keys, num_eigenvalues=20):
    """CASS's head-assignment cost written out: the VFM keys range-matched to the CLIP keys,
    per-head graphs ``K K^T / sqrt(d)``, top eigenvalues L2- then L1-normalized, ``1 - L1``
    distance of the sorted spectra (rows: VFM heads)."""
    lo, hi = clip_keys.min(), clip_keys.max()
    vfm_keys = (vfm_keys - vfm_keys.min()) / (vfm_keys.max() - vfm_keys.min()) * (hi - lo) + lo
    spectra = []
    for keys in (vfm_keys, clip_keys):
        graphs = keys @ keys.transpose(0, 2, 1) / np.sqrt(keys.shape[-1])
        values = np.linalg.eigvalsh(graphs)[:, ::-1][:, :num_eigenvalues]
        values = values / np.linalg.norm(values, axis=1, keepdims=True)
        spectra.append(np.sort(values / values.sum(1, keepdims=True), axis=1))
    return 1 - np.abs(spectra[0][:, None] - spectra[1][None]).sum(-1)


def test_distinct_head_spectra_give_cass_one_clear_head_assignment(tmp_path):
    """``distinct_head_spectra`` changes only the last block's key rows (per head: the first
    half scaled by the rank profile, the second half its negative) and the position
    embedding; on keys of isotropic random tokens through such rows (12 heads, two towers,
    different weights and tokens) CASS's head assignment has one optimum with a clear margin,
    where the plain random rows give a near tie."""
    tool = load_tool()
    # The tool shapes the heads for CASS only.
    assert [m for m, spec in tool.REFERENCES.items()
            if spec.get('distinct_head_spectra')] == ['cass']
    plain = tool.make_openai_weights(str(tmp_path / 'a.pt'), 'tiny', seed=0)
    shaped = tool.make_openai_weights(
        str(tmp_path / 'b.pt'), 'tiny', seed=0, distinct_head_spectra=True)
    last = 'visual.transformer.resblocks.11.attn.'
    assert sorted(k for k in plain if not torch.equal(plain[k], shaped[k])) == [
        'visual.positional_embedding', last + 'in_proj_bias', last + 'in_proj_weight'
    ]
    torch.testing.assert_close(
        shaped['visual.positional_embedding'].float(),
        plain['visual.positional_embedding'].float() * 30,
        rtol=2e-3,
        atol=1e-6)
    width, profiles = 128, tool.head_key_profiles(2, 32)
    torch.testing.assert_close(profiles,
                               torch.tensor([[1.0] + [0.01] * 31,
                                             [1.0, 1.0] + [0.01] * 30]))  # ranks 1, 2
    for name in ('in_proj_weight', 'in_proj_bias'):
        a, b = plain[last + name].float(), shaped[last + name].float()
        assert torch.equal(a[:width], b[:width]) and torch.equal(a[2 * width:], b[2 * width:])
        for head in range(2):
            start = width + 64 * head
            scale = profiles[head] if a.dim() == 1 else profiles[head][:, None]
            torch.testing.assert_close(
                b[start:start + 32], a[start:start + 32] * scale, rtol=2e-3, atol=1e-6)
            assert torch.equal(b[start + 32:start + 64], -b[start:start + 32])

    rng = np.random.default_rng(0)
    margins, noise = {}, {}
    for distinct in (False, True):
        keys = []
        for _ in range(2):  # the CLIP and the VFM tower
            weight = torch.from_numpy(rng.normal(0, 0.1, (3 * 768, 96))).float()
            bias = torch.from_numpy(rng.normal(0, 0.1, 3 * 768)).float()
            if distinct:
                tool._shape_key_rows(weight, bias, 768, 12)
            tokens = rng.normal(0, 1, (196, 96))
            k = tokens @ weight[768:1536].numpy().T + bias[768:1536].numpy()
            keys.append(k.reshape(196, 12, 64).transpose(1, 0, 2))
            if distinct:
                assert np.isclose(keys[-1].min(), -keys[-1].max())  # no offset in the match
        cost = _cass_cost(*keys).astype(np.float32)
        # The VFM keys in fp16, as CASS computes them: a bound on how much an assignment's
        # cost moves.
        rounded = _cass_cost(keys[0], keys[1].astype(np.float16).astype(np.float64))
        noise[distinct] = 12 * np.abs(rounded.astype(np.float32) - cost).max()
        cols, margins[distinct] = _assignment_margin(cost)
        assert np.array_equal(_assignment_margin(rounded.astype(np.float32))[0], cols)
    assert margins[True] > 2e-3 and margins[True] > 5 * noise[True], (margins, noise)
    assert margins[False] < margins[True] / 10, margins
