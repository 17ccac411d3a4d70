# The zero-shot segmentor without towers: task configs inherit this and a tower base
# (../towers/*.py) and set model.image_encoder / text_encoder / tokenizer and the normalization
# of those towers. Every setting below is documented in configs/silc/README.md.
model = dict(
    type='ZeroShotSegmentor',
    data_preprocessor=dict(
        type='SegDataPreProcessor', bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
    decode_head=dict(type='ZeroShotHead', logit_scale=40.0),
    # None: the class names of the evaluated dataset (ModelDatasetMetaHook), or a class-name
    # file / list (one class per line, comma-separated synonyms).
    class_names=None,
    templates='imagenet80',
    # plain | maskclip | sclip | clearclip | naclip (last-block variant).
    dense_variant='plain',
    # PAMR refinement is off (the segmentor's default pamr=None; not set here so that a task
    # config can set pamr=dict(num_iter=10, dilations=(8, 16)) without _delete_).
    # fp32 | fp16 | bf16 (autocast of the towers on GPU; CPU runs fp32).
    precision='fp32',
    test_cfg=dict(
        mode='slide',
        crop_size=(224, 224),
        stride=(112, 112),
        window_batch_size=16,
        partial_patches='pad'))
