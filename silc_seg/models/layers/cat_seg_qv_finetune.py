"""Query/value-only fine-tuning of towers with fused ``attn.qkv`` projections (CAT-Seg).

CAT-Seg fine-tunes only the query and value projection weights of CLIP's attention layers
(cvlab-kaist/CAT-Seg ``cat_seg/cat_seg_model.py``, ``CLIP_FINETUNE: "attention"``: the parameters
whose names contain ``q_proj``/``v_proj``; the fused in-projection bias, whose name contains
neither, stays frozen, and the branch meant for positional embeddings never fires because their
names lack ``transformer``). Our towers fuse the three projections into one ``Linear(D, 3D)``, so
the key rows cannot be frozen with ``requires_grad``; masking their gradient is not enough either,
because decoupled weight decay (AdamW) still shrinks them. :class:`SplitQKVLinear` therefore stores
the query, key and value rows as separate parameters (the key ones frozen) and behaves like the
fused ``Linear`` everywhere else: same forward, ``weight``/``bias`` attributes, and the same
``qkv.weight``/``qkv.bias`` state-dict keys, so checkpoints load and save unchanged.
"""
from typing import Iterable, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

QKV_PARTS = ('query', 'key', 'value')


class SplitQKVLinear(nn.Module):
    """Drop-in replacement for a fused ``Linear(D, 3D)`` query/key/value projection with
    the three row blocks held as separate parameters.

    Args:
        fused (nn.Linear): the projection to split; its values are copied.
        trainable (Iterable[str]): which of ``'query'``, ``'key'``, ``'value'`` keep
            ``requires_grad=True``; the others are frozen.
    """

    def __init__(self, fused: nn.Linear, trainable: Iterable[str] = ('query', 'value')):
        super().__init__()
        if fused.out_features % 3 != 0:
            raise ValueError(f'a fused qkv projection has 3 * D outputs, got {fused.out_features}')
        trainable = set(trainable)
        unknown = trainable - set(QKV_PARTS)
        if unknown:
            raise ValueError(f'unknown qkv parts {sorted(unknown)}; choose from {QKV_PARTS}')
        self.in_features = fused.in_features
        self.out_features = fused.out_features
        weights = fused.weight.detach().chunk(3, dim=0)
        biases = fused.bias.detach().chunk(3) if fused.bias is not None else (None, ) * 3
        for part, weight, bias in zip(QKV_PARTS, weights, biases):
            requires_grad = part in trainable
            self.register_parameter(f'{part}_weight',
                                    nn.Parameter(weight.clone(), requires_grad=requires_grad))
            self.register_parameter(
                f'{part}_bias',
                None if bias is None else nn.Parameter(bias.clone(), requires_grad=requires_grad))

    @property
    def weight(self) -> Tensor:
        """The fused ``(3D, D)`` weight (differentiable w.r.t. the trainable parts)."""
        return torch.cat([self.query_weight, self.key_weight, self.value_weight])

    @property
    def bias(self):
        """The fused ``(3D, )`` bias, or None."""
        if self.query_bias is None:
            return None
        return torch.cat([self.query_bias, self.key_bias, self.value_bias])

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # Keep the fused ``weight``/``bias`` keys of nn.Linear so checkpoints stay interchangeable.
        weight, bias = self.weight, self.bias
        destination[prefix + 'weight'] = weight if keep_vars else weight.detach()
        if bias is not None:
            destination[prefix + 'bias'] = bias if keep_vars else bias.detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        names = ['weight'] + (['bias'] if self.query_bias is not None else [])
        for name in names:
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            fused = state_dict[key]
            expected = getattr(self, f'query_{name}').shape[0] * 3
            if fused.shape[0] != expected:
                error_msgs.append(f'size mismatch for {key}: checkpoint has {tuple(fused.shape)}, '
                                  f'the model expects {expected} rows')
                continue
            with torch.no_grad():
                for part, rows in zip(QKV_PARTS, fused.chunk(3, dim=0)):
                    getattr(self, f'{part}_{name}').copy_(rows)

    def extra_repr(self) -> str:
        trainable = [part for part in QKV_PARTS if getattr(self, f'{part}_weight').requires_grad]
        return (f'in_features={self.in_features}, out_features={self.out_features}, '
                f'trainable={trainable}')


def setup_qv_finetuning(tower: nn.Module,
                        trainable_param_names: Iterable[str] = (),
                        train_qv_bias: bool = False) -> List[str]:
    """Freeze a tower except the query/value projection weights of every attention layer
    (CAT-Seg's rule), optionally their biases, and the parameters whose names end with one of
    ``trainable_param_names`` (e.g. positional embeddings).

    Every submodule named ``attn`` with a fused ``qkv`` ``nn.Linear`` gets a
    :class:`SplitQKVLinear`.

    Args:
        tower (nn.Module): the image or text tower; modified in place.
        trainable_param_names (Iterable[str]): parameter-name suffixes that stay trainable
            (CAT-Seg: none).
        train_qv_bias (bool): also train the query and value rows of the ``qkv`` bias
            (CAT-Seg: False, its fused in-projection bias is frozen).

    Returns:
        list[str]: the names of the trainable parameters.

    Raises:
        ValueError: if the tower has no fused ``attn.qkv`` projection, or a name in
            ``trainable_param_names`` matches no parameter.
    """
    attention_layers = [
        module for name, module in tower.named_modules()
        if name.split('.')[-1] == 'attn' and isinstance(getattr(module, 'qkv', None), nn.Linear)
    ]
    if not attention_layers:
        raise ValueError(
            f'{type(tower).__name__} has no attention layer with a fused `attn.qkv` nn.Linear; '
            'query/value fine-tuning needs the block layout of docs/design.md')
    for attention in attention_layers:
        attention.qkv = SplitQKVLinear(attention.qkv)
    suffixes = tuple(trainable_param_names)
    names = [name for name, _ in tower.named_parameters()]
    unmatched = [s for s in suffixes if not any(name.endswith(s) for name in names)]
    if unmatched:
        raise ValueError(f'{type(tower).__name__} has no parameter named *{unmatched}; '
                         f'its parameters: {names[:8]}...')
    qv_names = ('qkv.query_weight', 'qkv.value_weight') + (
        ('qkv.query_bias', 'qkv.value_bias') if train_qv_bias else ())
    trainable = []
    for name, param in tower.named_parameters():
        is_qv = name.endswith(qv_names)
        param.requires_grad = is_qv or (bool(suffixes) and name.endswith(suffixes))
        if param.requires_grad:
            trainable.append(name)
    return trainable
