# The SILC / CLIP pretraining model without towers, as zero_shot_segmentor.py and catseg.py are
# for their tasks: a model config inherits this and a tower base (../towers/*.py) and sets
# model.image_encoder / text_encoder / tokenizer and the preprocessor's mean / std from it.
model = dict(
    type='SILC',
    data_preprocessor=dict(type='SILCDataPreprocessor', bgr_to_rgb=True),
    contrastive_loss=dict(type='ClipContrastiveLoss'))
