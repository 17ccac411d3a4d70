# Demo: demo_silc_tiny.py sharded with FSDP (MMEngine's FlexibleRunner + FSDPStrategy), on CPU
# with gloo or on GPUs with NCCL. Student and EMA teacher are sharded alike: every transformer
# block and distillation head is an FSDP unit (silc_fsdp_wrap_policy), the teacher is updated on
# each rank's own shards (TrainStepFSDP); docs/scaling.md.
#   torchrun --standalone --nproc_per_node 2 tools/train.py \
#       configs/silc/demo_silc_fsdp_tiny.py --launcher pytorch
# mmseg's own tools/train.py runs it too (runner_type below), on GPUs.
_base_ = ['./demo_silc_tiny.py']

runner_type = 'FlexibleRunner'
strategy = dict(
    type='SILCFSDPStrategy',  # MMEngine's FSDPStrategy, resume fixed
    model_wrapper=dict(
        # The model's own train_step (EMA teacher after the step); "mmseg." as for TrainStepDDP.
        type='mmseg.TrainStepFSDP',
        auto_wrap_policy=dict(type='silc_fsdp_wrap_policy'),
        # use_orig_params=True (MMEngine's default) is required: names for the EMA pairs,
        # paramwise_cfg and the hooks. FULL_SHARD: parameters, gradients and AdamW state sharded.
        sharding_strategy='FULL_SHARD'),
    # 'full': one consolidated checkpoint on rank 0 (same keys as a DDP run, loadable by
    # load_model_checkpoint and tools/test.py); 'local': one shard file per rank in a folder.
    state_dict_cfg='full')
# The CPU demo keeps its fp32 OptimWrapper (AMP / FSDP mixed precision: GPU recipes,
# pretrain_silc_vit-l16_fsdp.py). ExtendOptimizerStateHook rebuilds a Runner's optimizer;
# FlexibleRunner builds it inside the strategy, so the FSDP runs go without it.
custom_hooks = [{{_base_.freeze_last_layer_hook}}, {{_base_.data_stats_hook}}]
# FlexibleRunner ignores model_wrapper_cfg (the strategy wraps the model).
model_wrapper_cfg = None
