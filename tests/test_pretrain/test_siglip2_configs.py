"""The SigLIP 2 recipe configs: the B/16 values as docs/siglip2.md cites them, the demo as the
SILC demo with the recipe's objective."""
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

import silc_seg  # noqa: F401
from silc_seg.registry import MODELS

B16, DEMO = 'configs/silc/pretrain_siglip2_b16.py', 'configs/silc/demo_siglip2_tiny.py'


def test_b16_recipe_values():
    cfg = Config.fromfile(B16)
    model = cfg.model
    assert model.type == 'SigLIP2' and model.contrastive_loss.type == 'SigLipLoss'
    assert model.switch_ratio == 0.8
    assert (model.distill_weight, model.masked_distill_weight) == (0.25, 0.0625)
    assert model.image_mask_ratio == 0.5 and model.image_decoder is None
    decoder = model.caption_decoder
    assert decoder.type == 'LocCaDecoder' and decoder.vocab_size == 256000
    assert decoder.parallel_prob == 0.5 and decoder.depth == 6
    assert model.tokenizer.type == 'GemmaTokenizer' and model.tokenizer.context_length == 64
    assert model.image_encoder.img_size == 256 and cfg.global_crop_size == 256
    # Batch 32k (128 x 256 GPUs), 40B examples, 20k warm-up, Adam 1e-3 / wd 1e-4, clip 1.
    assert cfg.train_dataloader.batch_size * 256 == 32768
    assert cfg.train_cfg.max_iters == 40_000_000_000 // 32768
    assert cfg.param_scheduler[0].end == 20000
    assert (cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay) == \
        (1e-3, 1e-4)
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert pipeline[0].num_views == [1, 1, 6, 1]
    whole = pipeline[0].transforms[3]
    assert [t['type'] for t in whole] == ['Resize']  # the original image, no augmentation
    assert [t['type']
            for t in pipeline[1:]] == ['TokenizeCaption', 'TokenizeRegions', 'PackSILCInputs']
    assert pipeline[-1].num_contrastive_crops == 1
    assert cfg.model_wrapper_cfg.find_unused_parameters


@pytest.mark.slow
def test_demo_is_the_silc_demo_with_the_recipe_objective():
    demo, silc = Config.fromfile(DEMO), Config.fromfile('configs/silc/demo_silc_tiny.py')
    for key in ('optim_wrapper', 'randomness'):
        assert demo[key] == silc[key], key
    # The short schedule: 40 iterations, 10% warm-up, logged every 10 (both stages in the log).
    assert demo.train_cfg.max_iters == demo.train_cfg.val_interval == 40
    assert demo.param_scheduler[0].end == 4 and demo.param_scheduler[1].T_max == 36
    assert demo.param_scheduler[1].end == 40 and demo.default_hooks.logger.interval == 10
    # Its SigLIP-only baseline: the same run without the recipe (the study's pair).
    siglip = Config.fromfile('configs/silc/demo_siglip_tiny.py')
    for key in ('train_cfg', 'optim_wrapper', 'param_scheduler', 'randomness', 'default_hooks',
                'train_dataloader'):
        assert demo[key] == siglip[key], key
    assert siglip.model.type == 'SILC' and siglip.model.contrastive_loss.type == 'SigLipLoss'
    assert siglip.model.get('distill_head') is None and 'caption_decoder' not in siglip.model
    assert siglip.model.image_encoder == demo.model.image_encoder
    assert siglip.model.text_encoder == demo.model.text_encoder
    assert demo.model.image_encoder == silc.model.image_encoder
    assert demo.model.text_encoder == silc.model.text_encoder
    assert demo.model.distill_head == silc.model.distill_head
    views = demo.train_dataloader.dataset.pipeline[0]
    assert views.num_views == [2, 6, 1]
    assert views.transforms[:2] == silc.train_dataloader.dataset.pipeline[0].transforms
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(demo.model)
    assert type(model).__name__ == 'SigLIP2' and not bool(model.self_distill_on)
    assert model.switch_iteration(demo.train_cfg.max_iters) == 32


@pytest.mark.parametrize('path', [B16, DEMO])
def test_every_recipe_value_has_a_source(path):
    """Each model / schedule line with a number says where it comes from (a source mark or
    'ours'), or inherits (the demo points at the B/16 config and docs/siglip2.md)."""
    text = open(path).read()
    assert 'docs/siglip2.md' in text
    if path == B16:
        for mark in ('[S2 2.1]', '[S2 2.2', '[S2 2.3', '[CapPa', '[SILC]', 'ours'):
            assert mark in text, mark
