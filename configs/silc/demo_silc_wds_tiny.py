# Demo: SILC pretraining of the tiny ViT streamed from WebDataset shards, on CPU in minutes: the
# recipe of a web-scale run (pretrain_b16.py) at demo size. Same towers, crops, losses, schedule
# and validation as demo_silc_tiny.py; only the training data comes from tar shards.
#   python tools/misc/make_demo_data.py --out data/demo --shards 8
#   python tools/train.py configs/silc/demo_silc_wds_tiny.py
#   python tools/train.py configs/silc/demo_silc_wds_tiny.py --resume   # continues the stream
# Your own shards: --cfg-options train_dataloader.dataset.shards='/data/shards/{00000..00099}.tar'
# (each sample <key>.jpg|png|webp + <key>.txt or .json with "caption"; at least
# num_workers shards per rank).
_base_ = ['./demo_silc_tiny.py']

train_dataloader = dict(
    # A stream splits its shards between ranks and workers itself: no sampler, and the manifest
    # dataset settings of the base are dropped.
    _delete_=True,
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=None,
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='WebDatasetImageText',
        shards='data/demo/shards/train-{00000..00007}.tar',
        shuffle_buffer=256,
        pipeline={{_base_.train_pipeline}}))

custom_hooks = [
    {{_base_.freeze_last_layer_hook}},
    {{_base_.data_stats_hook}},
    {{_base_.extend_optimizer_state_hook}},
    # Saves the stream position in checkpoints: --resume continues the stream where it stopped
    # instead of re-reading every earlier batch.
    dict(type='StreamResumeHook'),
]
