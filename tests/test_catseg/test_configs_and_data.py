"""CAT-Seg configs build the published recipe; 16-bit label maps of A-847/PC-459 load intact."""
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.datasets import COCOStuffDataset
from PIL import Image

import silc_seg  # noqa: F401
from silc_seg.models.utils import load_class_names
from silc_seg.registry import DATASETS, MODELS

init_default_scope('mmseg')
CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'silc')


def load(name):
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def test_training_config_is_the_cat_seg_vit_b_recipe():
    cfg = load('catseg_b16_coco-stuff171.py')
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.train_cfg.max_iters == 80000
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4, weight_decay=1e-4)
    assert cfg.optim_wrapper.clip_grad.max_norm == 0.01
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {
        'image_encoder': dict(lr_mult=0.01),
        'text_encoder': dict(lr_mult=0.01)
    }
    assert cfg.param_scheduler[0].type == 'CosineAnnealingLR'
    assert [t.type for t in cfg.train_dataloader.dataset.pipeline
            ][2:4] == ['ResizeShortestEdge', 'RandomCrop']
    assert cfg.model.decode_head.aggregator.window_size == 12
    assert cfg.model.decode_head.aggregator.num_layers == 2
    # CAT-Seg's dense features, fine-tuned parameters, class names and loss
    assert cfg.model.dense_variant == 'catseg'
    assert cfg.model.train_qv_bias is False
    assert cfg.model.image_trainable_params == () and cfg.model.text_trainable_params == ()
    assert cfg.model.name_rule == 'first'
    assert cfg.model.decode_head.loss_decode.type == 'PerClassBCELoss'
    assert 'vision_width' not in cfg.model.decode_head  # follows the tower
    vocabulary = load_class_names(cfg.model.train_class_names)
    assert [names[0] for names in vocabulary] == list(COCOStuffDataset.METAINFO['classes'])


@pytest.mark.slow
@pytest.mark.parametrize('name,dataset_type,num_classes', [
    ('catseg_b16_ade150.py', 'ADE20KDataset', 150),
    ('catseg_b16_pc59.py', 'PascalContextDataset59', 59),
    ('catseg_b16_ade847.py', 'ADE20K847Dataset', 847),
    ('catseg_b16_pc459.py', 'PascalContext459Dataset', 459),
])
def test_evaluation_configs(name, dataset_type, num_classes):
    cfg = load(name)
    dataset = cfg.test_dataloader.dataset
    assert dataset.type == dataset_type
    assert len(DATASETS.get(dataset_type).METAINFO['classes']) == num_classes
    assert cfg.model.decode_head.aggregator.pooling_size == (1, 1)
    assert cfg.model.test_cfg == dict(
        mode='slide', out_size=(640, 640), crop_size=(384, 384), stride=(256, 256))
    assert dict(type='ModelDatasetMetaHook') in cfg.custom_hooks
    if num_classes > 255:
        assert 'LoadWideAnnotations' in [t.type for t in dataset.pipeline]
        assert cfg.test_evaluator.ignore_index == 65535


@pytest.mark.slow
def test_training_config_builds_vit_b_towers_with_qv_training_only():
    cfg = load('catseg_b16_coco-stuff171.py')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    towers = [n for n in trainable if n.startswith(('image_encoder.', 'text_encoder.'))]
    # 12 image + 12 text blocks x (q, v) weights
    assert sorted(towers) == sorted(f'{tower}.blocks.{i}.attn.qkv.{part}_weight'
                                    for tower in ('image_encoder', 'text_encoder')
                                    for i in range(12) for part in ('query', 'value'))
    # the 224 px embedding stays, resized to the 24 x 24 grid of 384 px inputs at each forward
    assert model.image_encoder.pos_embed.shape == (1, 14 * 14 + 1, 768)
    assert model.image_size == (384, 384)
    assert model.guidance_layers == (3, 7)
    assert model.decode_head.guidance_upsamplers[0].in_channels == 768
    assert model.decode_head.aggregator.num_templates == 1
    head_params = sum(p.numel() for n, p in model.named_parameters()
                      if n.startswith('decode_head'))
    print(f'CAT-Seg head parameters: {head_params / 1e6:.2f} M')


def write_uint16_tif(path, labels):
    Image.fromarray(labels.astype(np.uint16)).save(path)


@pytest.mark.slow
@pytest.mark.parametrize('dataset_type,data_prefix,ann_file', [
    ('ADE20K847Dataset',
     dict(
         img_path='images_detectron2/validation',
         seg_map_path='annotations_detectron2/validation'), ''),
    ('PascalContext459Dataset',
     dict(img_path='JPEGImages', seg_map_path='annotations_detectron2/pc459_val'), 'val.txt'),
])
def test_wide_label_maps_keep_labels_above_255(tmp_path, dataset_type, data_prefix, ann_file):
    labels = np.array([[0, 255, 256], [458, 65535, 300]], dtype=np.uint16)
    labels = np.kron(labels, np.ones((4, 4), dtype=np.uint16))
    mmcv.imwrite(
        np.zeros((8, 12, 3), np.uint8),
        str(tmp_path / data_prefix['img_path'] / '2008_000001.jpg'))
    seg_dir = tmp_path / data_prefix['seg_map_path']
    seg_dir.mkdir(parents=True)
    write_uint16_tif(seg_dir / '2008_000001.tif', labels)
    if ann_file:
        (tmp_path / ann_file).write_text('2008_000001\n')
    dataset = DATASETS.build(
        dict(
            type=dataset_type,
            data_root=str(tmp_path),
            data_prefix=data_prefix,
            ann_file=ann_file,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadWideAnnotations'),
                dict(type='PackSegInputs')
            ]))
    assert len(dataset) == 1
    loaded = dataset[0]['data_samples'].gt_sem_seg.data[0].numpy()
    assert np.array_equal(loaded, labels.astype(np.int64))
    truncating = DATASETS.build(
        dict(
            type=dataset_type,
            data_root=str(tmp_path),
            data_prefix=data_prefix,
            ann_file=ann_file,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')
            ]))
    assert not np.array_equal(truncating[0]['data_samples'].gt_sem_seg.data[0].numpy(), labels)


@pytest.mark.slow
def test_ade847_evaluation_config_runs_end_to_end_with_tiny_towers(tmp_path, single_thread):
    """The A-847 test config through MMEngine's Runner (dataset, 16-bit labels, CAT-Seg sliding
    inference with a top-k class budget, IoUMetric ignoring 65535), towers swapped for tiny
    ones."""
    from mmengine.runner import Runner

    from .tiny_towers import tiny_catseg_cfg
    rng = np.random.default_rng(0)
    images = tmp_path / 'images_detectron2' / 'validation'
    labels_dir = tmp_path / 'annotations_detectron2' / 'validation'
    labels_dir.mkdir(parents=True)
    for index in range(2):
        mmcv.imwrite(
            rng.integers(0, 255, (48, 40, 3), dtype=np.uint8),
            str(images / f'ADE_frame_{index}.jpg'))
        labels = rng.choice([0, 300, 846, 65535], size=(48, 40)).astype(np.uint16)
        write_uint16_tif(labels_dir / f'ADE_frame_{index}.tif', labels)
    cfg = load('catseg_b16_ade847.py')
    tiny = tiny_catseg_cfg(
        test_cfg=dict(mode='slide', out_size=(64, 64), crop_size=(32, 32), stride=(16, 16)))
    # a budget of 16 keeps the test cheap; the default 256 is covered in test_segmentor.py
    tiny['decode_head']['aggregator']['num_class_slots'] = 16
    cfg.model = tiny
    cfg.test_dataloader.dataset.data_root = str(tmp_path)
    cfg.test_dataloader.num_workers = 0
    cfg.work_dir = str(tmp_path / 'work_dir')
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    # the same mIoU computed directly from the predictions and the 16-bit labels
    intersection, union = np.zeros(847), np.zeros(847)
    for batch in runner.test_dataloader:
        for sample in runner.model.test_step(batch):
            pred = sample.pred_sem_seg.data[0].numpy()
            label = sample.gt_sem_seg.data[0].numpy()
            assert label.max() == 65535 and (label[label != 65535] > 255).any()
            valid = label != 65535
            pred, label = pred[valid], label[valid]
            intersection += np.bincount(label[pred == label], minlength=847)
            union += np.bincount(pred, minlength=847) + np.bincount(label, minlength=847)
    union -= intersection
    with np.errstate(invalid='ignore', divide='ignore'):
        expected = np.nanmean(intersection / np.where(union > 0, union, np.nan)) * 100
    assert metrics['mIoU'] == pytest.approx(expected, abs=0.01)
    assert runner.model.vocabulary[1] == ['building', 'edifice']
    assert len(runner.model.vocabulary) == 847


def test_training_pipeline_gives_384_crops(tmp_path):
    cfg = load('catseg_b16_coco-stuff171.py')
    rng = np.random.default_rng(0)
    mmcv.imwrite(
        rng.integers(0, 255, (300, 500, 3), dtype=np.uint8),
        str(tmp_path / 'images' / 'train2017' / '000000000001.jpg'))
    mmcv.imwrite(
        rng.integers(0, 171, (300, 500), dtype=np.uint8),
        str(tmp_path / 'annotations' / 'train2017' / '000000000001_labelTrainIds.png'))
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = str(tmp_path)
    sample = DATASETS.build(dataset_cfg)[0]
    assert sample['inputs'].shape == (3, 384, 384)
    assert sample['data_samples'].gt_sem_seg.data.shape == (1, 384, 384)


def make_coco_stuff_layout(root, splits=(('train2017', 6), ('val2017', 2))):
    """COCO-Stuff-164k layout: images/<split>/*.jpg, annotations/<split>/*_labelTrainIds.png
    with label values 0..170 and 255."""
    rng = np.random.default_rng(0)
    for split, num in splits:
        for index in range(num):
            name = f'{index:012d}'
            label = np.full((72, 88), rng.integers(0, 171), dtype=np.uint8)
            y, x = rng.integers(0, 36, size=2)
            label[y:y + 30, x:x + 40] = rng.integers(0, 171)
            label[:2] = 255
            mmcv.imwrite(
                rng.integers(0, 255, (72, 88, 3), dtype=np.uint8),
                osp.join(root, 'images', split, name + '.jpg'))
            mmcv.imwrite(label, osp.join(root, 'annotations', split, name + '_labelTrainIds.png'))


@pytest.mark.slow
def test_tiny_cpu_config_trains_and_evaluates_a_few_iterations(tmp_path, single_thread):
    """configs/silc/catseg_tiny_coco-stuff171.py through MMEngine's Runner as tools/train.py
    runs it: 3 iterations on a generated COCO-Stuff layout, then validation with the sliding
    protocol, and a checkpoint."""
    from mmengine.runner import Runner
    root = str(tmp_path / 'coco_stuff164k')
    make_coco_stuff_layout(root)
    cfg = load('catseg_tiny_coco-stuff171.py')
    cfg.train_dataloader.dataset.data_root = root
    cfg.val_dataloader.dataset.data_root = root
    cfg.test_dataloader.dataset.data_root = root
    cfg.train_cfg.max_iters = 3
    cfg.train_cfg.val_interval = 3
    cfg.default_hooks.checkpoint.interval = 3
    cfg.param_scheduler[0].T_max = cfg.param_scheduler[0].end = 3
    cfg.work_dir = str(tmp_path / 'work_dir')
    runner = Runner.from_cfg(cfg)
    model = runner.model
    assert model.guidance_layers == (1, 3)  # 6 tiny blocks
    assert model.decode_head.guidance_upsamplers[0].in_channels == 192
    assert model.dense_variant == 'catseg'
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runner.train()
    assert runner.iter == 3
    assert osp.isfile(osp.join(cfg.work_dir, 'iter_3.pth'))
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith('decode_head.') for k in changed)
    assert any(k.endswith('attn.qkv.weight') for k in changed)
    assert not any(
        k.endswith(('pos_embed', 'positional_embedding', 'attn.qkv.bias')) for k in changed)
    metrics = runner.val_loop.run()
    assert 0 <= metrics['mIoU'] <= 100


def test_norm_layers_get_no_weight_decay_as_in_cat_seg():
    """CAT-Seg's build_optimizer (train_net.py) sets WEIGHT_DECAY_NORM (detectron2: 0.0) on
    every GroupNorm / LayerNorm parameter; every other trainable parameter decays 1e-4."""
    from mmengine.optim import build_optim_wrapper

    from .tiny_towers import tiny_catseg_cfg
    torch.manual_seed(0)
    model = MODELS.build(tiny_catseg_cfg())
    optim_wrapper = build_optim_wrapper(model, load('catseg_b16_coco-stuff171.py').optim_wrapper)
    decay_of = {
        id(p): group['weight_decay']
        for group in optim_wrapper.optimizer.param_groups
        for p in group['params']
    }
    norms = checked = 0
    for module in model.modules():
        for param in module.parameters(recurse=False):
            if not param.requires_grad:
                continue
            is_norm = isinstance(module, (torch.nn.GroupNorm, torch.nn.LayerNorm))
            assert decay_of[id(param)] == (0.0 if is_norm else 1e-4)
            norms += is_norm
            checked += 1
    assert norms > 10 and checked > norms
