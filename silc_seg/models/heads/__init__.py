from .distillation_head import DistillationHead

__all__ = ['DistillationHead']
