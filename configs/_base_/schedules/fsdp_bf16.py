# FSDP for the large towers: MMEngine's FlexibleRunner with FSDPStrategy (torch FSDP), inherited
# next to a pretraining schedule. Every transformer block and distillation head, of the student
# and of the EMA teacher, is an FSDP unit (silc_fsdp_wrap_policy): parameters, gradients and
# AdamW state are sharded over all GPUs (FULL_SHARD), the teacher like the student, and the EMA
# runs on each GPU's own shards (TrainStepFSDP). Activations of the blocks are recomputed in the
# backward pass (activation checkpointing inside the FSDP units; the towers' with_cp stays off).
# Memory per GPU: docs/scaling.md. The inheriting config sets model_wrapper_cfg = None.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='SILCFSDPStrategy',  # MMEngine's FSDPStrategy, resume fixed
    model_wrapper=dict(
        type='mmseg.TrainStepFSDP',
        auto_wrap_policy=dict(type='silc_fsdp_wrap_policy'),
        sharding_strategy='FULL_SHARD',
        # bf16 policy (GPU only; a CPU run drops it with a warning and trains in fp32): units
        # are gathered and computed in bf16, gradients reduced in fp32, the sharded master
        # weights, the EMA teacher and the AdamW state stay fp32. The optim wrapper's bf16
        # autocast still runs softmax / norms / losses in fp32.
        mixed_precision=dict(
            param_dtype='bfloat16', reduce_dtype='float32', buffer_dtype='float32'),
        limit_all_gathers=True),
    activation_checkpointing=dict(check_fn='silc_checkpoint_fn'),
    # One consolidated checkpoint on rank 0 (DDP's keys: load_model_checkpoint, tools/test.py,
    # the converters); 'local' writes one shard file per rank instead (faster, same world size
    # needed to resume).
    state_dict_cfg='full')
