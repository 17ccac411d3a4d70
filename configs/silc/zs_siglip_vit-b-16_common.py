# Zero-shot segmentation with SigLIP ViT-B/16 towers (converted with
# tools/model_converters/openclip2silc.py or bigvision2silc.py, see
# configs/_base_/models/siglip_vit-b-16.py): the settings of zs_common.py with
# SigLIP's towers and [-1, 1] normalization. Dense patch embeddings of the attention-pooled (MAP)
# tower: SILCVisionTransformer.project_patches.
# Default protocol (SCLIP / NACLIP): sliding 224x224 windows with stride 112 over the
# image resized to a short side of 336 (448 COCO-Stuff, 560 Cityscapes), OpenAI's 80 ImageNet
# templates, logit scale 40 (VOC-21: 65, PC-60 and COCO-Object: 50, with background thresholds).
# See configs/silc/README.md for the other published protocols.
_base_ = ['./zs_runtime.py', '../_base_/models/siglip_vit-b-16.py']

model = dict(
    _delete_=True,
    type='ZeroShotSegmentor',
    image_encoder={{_base_.image_encoder}},
    text_encoder={{_base_.text_encoder}},
    tokenizer={{_base_.tokenizer}},
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255),
    decode_head=dict(type='ZeroShotHead', logit_scale=40.0),
    # None: the class names of the evaluated dataset (ModelDatasetMetaHook in zs_runtime.py), or a
    # class-name file / list (one class per line, comma-separated synonyms).
    class_names=None,
    templates='imagenet80',
    # plain | maskclip | sclip | clearclip | naclip (last-block variant).
    dense_variant='plain',
    # dict(num_iter=10, dilations=(8, 16)) enables PAMR refinement.
    pamr=None,
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(112, 112), window_batch_size=16))

