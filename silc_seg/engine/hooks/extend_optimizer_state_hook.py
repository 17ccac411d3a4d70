import torch
from mmengine.hooks import Hook

from silc_seg.registry import HOOKS


def extend_optimizer_state(checkpoint: dict, current: dict, param_schedulers=None) -> int:
    """Fit a checkpoint's optimizer (and scheduler) state to a model with more parameters.

    For a model whose trainable parameters start with those of the checkpoint's model, in
    the same order (SILC's ``image_encoder``, ``text_encoder``, ``contrastive_loss`` come
    before ``distill_head``): the loaded groups keep their hyper-parameters and moments, the
    parameters the checkpoint lacks get no state (AdamW starts their moments at zero), and
    groups only this model has take the learning rate the loaded groups are at (times their
    own ratio to the base learning rate). Scheduler states get the new groups' base values.
    ``checkpoint['optimizer']`` (and ``checkpoint['param_schedulers']``) are changed in place.

    Args:
        checkpoint (dict): An MMEngine checkpoint with ``optimizer``.
        current (dict): ``state_dict()`` of this run's optimizer.
        param_schedulers (list, optional): This run's built parameter schedulers.

    Returns:
        int: How many parameters the checkpoint lacked (0: nothing changed).
    """
    loaded = checkpoint['optimizer']
    old_groups, new_groups = loaded['param_groups'], current['param_groups']
    num_old = sum(len(group['params']) for group in old_groups)
    num_new = sum(len(group['params']) for group in new_groups)
    if num_old >= num_new or len(old_groups) > len(new_groups):
        return 0
    for old, new in zip(old_groups, new_groups):
        if new['params'][:len(old['params'])] != old['params']:
            return 0  # not a prefix layout: leave it to the optimizer's own check
    lr_ratio = old_groups[0]['lr'] / new_groups[0].get('initial_lr', new_groups[0]['lr'])
    groups = []
    for index, new in enumerate(new_groups):
        if index < len(old_groups):
            groups.append(dict(old_groups[index], params=list(new['params'])))
        else:
            groups.append(dict(new, lr=new.get('initial_lr', new['lr']) * lr_ratio))
    loaded['param_groups'] = groups
    schedulers = checkpoint.get('param_schedulers')
    if schedulers and param_schedulers and isinstance(param_schedulers, list):
        for state, scheduler in zip(schedulers, param_schedulers):
            for key in ('base_values', '_last_value'):
                fresh = getattr(scheduler, key, None)
                if key in state and fresh is not None and len(state[key]) < len(fresh):
                    scale = 1.0 if key == 'base_values' else lr_ratio
                    state[key] = list(
                        state[key]) + [value * scale for value in fresh[len(state[key]):]]
    return num_new - num_old


@HOOKS.register_module()
class ExtendOptimizerStateHook(Hook):
    """``--resume`` of a checkpoint whose model had fewer trainable parameters (a
    contrastive-only run resumed with self-distillation): fits the checkpoint's optimizer and
    scheduler states with :func:`extend_optimizer_state` before the runner loads them.

    The new parameters (e.g. the distillation head) start with a fresh optimizer state at the
    resumed learning rate; the teacher itself starts as the loaded student
    (:meth:`SILC._fill_teachers_from_students`). Runs after the checkpoint is read and before
    ``Runner.resume`` loads the optimizer, MMEngine's only point in between.
    """

    priority = 'NORMAL'

    def before_run(self, runner) -> None:
        if not hasattr(runner, 'build_optim_wrapper'):  # FlexibleRunner: built by its strategy
            raise RuntimeError(
                f'ExtendOptimizerStateHook needs MMEngine\'s Runner, not {type(runner).__name__} '
                '(strategy=... configs): remove it from custom_hooks there')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'optimizer' not in checkpoint:
            return
        # Runner.resume builds them right after this hook anyway (a no-op when built).
        runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
        if runner.param_schedulers is not None:
            runner.param_schedulers = runner.build_param_scheduler(runner.param_schedulers)
        optimizer = getattr(runner.optim_wrapper, 'optimizer', None)
        if not isinstance(optimizer, torch.optim.Optimizer):
            return
        extra = extend_optimizer_state(checkpoint, optimizer.state_dict(), runner.param_schedulers)
        if extra:
            runner.logger.warning(
                f'The checkpoint\'s optimizer state lacks {extra} of this model\'s trainable '
                'parameters (a contrastive-only run resumed with self-distillation?): they '
                'start with a fresh optimizer state at the resumed learning rate.')
