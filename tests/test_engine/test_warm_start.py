"""The EMA teacher follows the student whichever way weights arrive (e.g. a warm start from
CLIP), and a checkpoint that has teacher weights keeps them."""
import pytest
import torch
from mmengine.runner import Runner

from silc_seg.converters import save_state_dict
from silc_seg.utils import torch_load_weights_only
from tests.test_engine.test_teacher import runner_cfg
from tests.test_models.test_silc import build, model_cfg


def tower_weights(seed):
    """Student towers of another (contrastive-only) model: what a converter writes."""
    torch.manual_seed(seed)
    other = build(distill=False)
    with torch.no_grad():
        for param in other.parameters():
            param.add_(torch.randn_like(param))
    return {
        k: v
        for k, v in other.state_dict().items() if k.startswith(('image_encoder.', 'text_encoder.'))
    }


def assert_teacher_is_student(model):
    for teacher, student in model.teacher_student_names():
        t_state, s_state = getattr(model, teacher).state_dict(), getattr(model,
                                                                         student).state_dict()
        for key, value in s_state.items():
            assert torch.equal(t_state[key], value), f'{teacher}.{key}'


def assert_state(module, expected, prefix):
    for key, value in module.state_dict().items():
        assert torch.equal(value, expected[prefix + key]), prefix + key


def silc_checkpoint_with_own_teacher(seed=3):
    """A SILC state dict whose teacher differs from its student."""
    model = build()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    for key in state:
        if key.startswith(('image_encoder.', 'teacher_image_encoder.', 'teacher_head.')) \
                and state[key].is_floating_point():
            state[key] += torch.randn(state[key].shape, generator=generator)
    assert not torch.equal(state['image_encoder.cls_token'],
                           state['teacher_image_encoder.cls_token'])
    return state


def test_load_state_dict_without_teacher_copies_the_loaded_student():
    model = build()
    towers = tower_weights(1)
    result = model.load_state_dict(towers, strict=False)
    assert_state(model.image_encoder, towers, 'image_encoder.')
    assert_state(model.teacher_image_encoder, towers, 'image_encoder.')
    assert_teacher_is_student(model)
    # The teacher's keys came from the student's, so they are not reported missing.
    assert not [k for k in result.missing_keys if k.startswith('teacher_image_encoder.')]


def test_load_state_dict_with_teacher_keeps_it():
    model = build()
    state = silc_checkpoint_with_own_teacher()
    model.load_state_dict(state)
    assert_state(model.teacher_image_encoder, state, 'teacher_image_encoder.')
    assert_state(model.teacher_head, state, 'teacher_head.')
    assert_state(model.image_encoder, state, 'image_encoder.')


def _runner(tmp_path, name, **kwargs):
    cfg = runner_cfg(tmp_path / name, max_iters=2)
    cfg.update(kwargs)
    return Runner.from_cfg(cfg)


@pytest.mark.slow
def test_load_from_converter_output(tmp_path):
    towers = tower_weights(2)
    path = str(tmp_path / 'converted.pth')
    save_state_dict(towers, path)  # the converters' writer
    runner = _runner(tmp_path, 'run', load_from=path)
    runner.load_or_resume()
    model = runner.model
    assert_state(model.image_encoder, towers, 'image_encoder.')
    assert_teacher_is_student(model)


@pytest.mark.slow
def test_load_from_silc_checkpoint_keeps_teacher(tmp_path):
    state = silc_checkpoint_with_own_teacher()
    path = str(tmp_path / 'silc.pth')
    torch.save(dict(state_dict=state, meta=dict()), path)
    runner = _runner(tmp_path, 'run', load_from=path)
    runner.load_or_resume()
    assert_state(runner.model.teacher_image_encoder, state, 'teacher_image_encoder.')
    assert_state(runner.model.image_encoder, state, 'image_encoder.')


@pytest.mark.parametrize('with_teacher', [False, True])
def test_init_cfg_pretrained(tmp_path, with_teacher):
    state = silc_checkpoint_with_own_teacher() if with_teacher else tower_weights(4)
    path = str(tmp_path / 'init.pth')
    torch.save(dict(state_dict=state), path)
    torch.manual_seed(0)
    from silc_seg.registry import MODELS
    model = MODELS.build(model_cfg(init_cfg=dict(type='Pretrained', checkpoint=path)))
    model.init_weights()
    assert_state(model.image_encoder, state, 'image_encoder.')
    if with_teacher:
        assert_state(model.teacher_image_encoder, state, 'teacher_image_encoder.')
    else:
        assert_teacher_is_student(model)


def test_tower_init_cfg_pretrained(tmp_path):
    towers = tower_weights(5)
    path = str(tmp_path / 'towers.pth')
    torch.save(dict(state_dict=towers), path)
    from silc_seg.registry import MODELS
    from tests.test_models.test_silc import image_encoder_cfg
    encoder = image_encoder_cfg()
    encoder['init_cfg'] = dict(type='Pretrained', checkpoint=path, prefix='image_encoder.')
    model = MODELS.build(model_cfg(image_encoder=encoder))
    model.init_weights()
    assert_state(model.image_encoder, towers, 'image_encoder.')
    assert_teacher_is_student(model)


@pytest.mark.slow
def test_resume_of_a_contrastive_only_checkpoint(tmp_path):
    clip_cfg = runner_cfg(tmp_path / 'clip', max_iters=2)
    clip_cfg['model'] = model_cfg(
        distill=False, data_preprocessor=dict(type='SILCDataPreprocessor'))
    clip_cfg['custom_hooks'] = []
    clip_cfg['optim_wrapper'] = dict(
        optimizer=dict(type='AdamW', lr=0.01, weight_decay=0.05),
        paramwise_cfg=dict(norm_decay_mult=0.0))
    clip = Runner.from_cfg(clip_cfg)
    clip.train()
    ckpt = str(tmp_path / 'clip' / 'iter_2.pth')
    cfg = runner_cfg(tmp_path / 'silc', max_iters=4, resume=ckpt)
    cfg['optim_wrapper'] = clip_cfg['optim_wrapper']
    silc = Runner.from_cfg(cfg)
    silc.load_or_resume()
    assert silc.iter == 2
    loaded = torch_load_weights_only(ckpt)['state_dict']
    assert_state(silc.model.image_encoder, loaded, 'image_encoder.')
    assert_teacher_is_student(silc.model)
    # The towers keep their AdamW moments; the distillation head starts fresh.
    optimizer = silc.optim_wrapper.optimizer
    params = dict(silc.model.named_parameters())
    for name in ('image_encoder.patch_embed.projection.weight', 'text_encoder.token_embedding'
                 '.weight', 'contrastive_loss.logit_scale'):
        assert optimizer.state[params[name]]['step'].item() == 2, name
    assert params['distill_head.mlp.0.weight'] not in optimizer.state
    lrs = {group['lr'] for group in optimizer.param_groups}
    assert len(lrs) == 1  # the head's groups continue at the resumed learning rate
    silc.train()  # and it trains on from there
    assert silc.iter == 4


@pytest.mark.parametrize('distill', [False, True])
def test_masked_self_distillation_teachers_follow_the_loaded_student(distill):
    # MaskedSelfDistill adds a teacher (the tokenizer head) and, without SILC's head, builds the
    # teacher image tower itself: both must follow the student as SILC's teachers do.
    from tests.test_models.test_masked_self_distill import build_masked
    model = build_masked(distill=distill)
    model.init_weights()
    names = [teacher for teacher, _ in model.teacher_student_names()]
    assert {'teacher_image_encoder', 'teacher_masked_head'} <= set(names)
    assert_teacher_is_student(model)  # after init_weights
    towers = tower_weights(2)
    model.load_state_dict(towers, strict=False)
    assert_state(model.teacher_image_encoder, towers, 'image_encoder.')
    assert_teacher_is_student(model)
