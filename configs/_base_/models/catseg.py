# CAT-Seg (Cho et al., CVPR 2024), the ViT-B recipe of cvlab-kaist/CAT-Seg configs/vitb_384.yaml,
# without towers: a task config inherits a tower base (configs/_base_/towers/*.py) next to this
# file and sets model.image_encoder / text_encoder / tokenizer and the data_preprocessor's
# mean / std from it (configs/silc/catseg_b16_common.py). The head's vision width, text dims,
# template count and guidance layers follow from the towers (CATSeg), so nothing else changes
# with another tower.
# Every value and its official source: the settings table of docs/catseg.md.
crop_size = (384, 384)
model = dict(
    type='CATSeg',
    data_preprocessor=dict(
        type='SegDataPreProcessor', bgr_to_rgb=True, size=crop_size, pad_val=0, seg_pad_val=255),
    decode_head=dict(
        type='CATSegHead',
        guidance_upsample_dims=(256, 128),
        guidance_upsample_scales=(2, 4),
        aggregator=dict(
            embed_dims=128,
            appearance_guidance_dims=128,
            text_guidance_dims=128,
            decoder_dims=(64, 32),
            decoder_guidance_dims=(256, 128),
            decoder_guidance_proj_dims=(32, 16),
            num_layers=2,
            num_heads=4,
            pooling_size=(2, 2),
            window_size=12,
            num_class_slots=256),
        # CAT-Seg's loss: per-class BCE, ignored pixels as all-negative targets
        loss_decode=dict(type='PerClassBCELoss', loss_weight=1.0),
        ignore_index=255),
    templates=['A photo of a {} in the scene'],
    # a class with several names is embedded by its first name (CAT-Seg's predictor); 'average'
    # averages the embeddings of all names
    name_rule='first',
    # CAT-Seg's dense last block (value path, class-token residual); 'plain': the ordinary block
    dense_variant='catseg',
    # CAT-Seg trains the q/v projection weights of both towers only
    train_qv_bias=False,
    image_trainable_params=(),
    text_trainable_params=(),
    # None: blocks 4 and 8 of 12 (indices 3 and 7) guide the 2x and 4x decoder stages
    guidance_layers=None,
    # A ViT-B/16 tower keeps its 224 px positional embedding (14 x 14), resized bicubically to
    # the 24 x 24 grid of the 384 px input at every forward, as CAT-Seg's VisualTransformer does.
    image_size=crop_size,
    # CAT-Seg inference: the image resized to 640 x 640, 2 x 2 windows of 384 with overlap 1/3,
    # plus the whole image at 384; sigmoid scores averaged.
    test_cfg=dict(mode='slide', out_size=(640, 640), crop_size=crop_size, stride=(256, 256)))
