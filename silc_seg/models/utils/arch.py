from typing import Dict, Optional, Union


def resolve_arch(arch: Union[str, dict],
                 arch_zoo: Dict[str, dict],
                 overrides: dict,
                 custom_defaults: dict,
                 base: Optional[dict] = None) -> dict:
    """Settings of a transformer tower from a preset name or a custom dict.

    Args:
        arch (str | dict): A key of ``arch_zoo``, or a custom dict that must hold ``width``,
            ``depth`` and ``num_heads`` and may hold any other key of ``overrides``.
        arch_zoo (dict[str, dict]): The tower's presets.
        overrides (dict): Constructor arguments; those that are not None win over the preset.
        custom_defaults (dict): Values a custom dict falls back to.
        base (dict, optional): Values under both presets and custom dicts.

    Returns:
        dict: The merged settings.
    """
    if isinstance(arch, str):
        if arch not in arch_zoo:
            raise ValueError(f'unknown arch {arch!r}; choose from {sorted(arch_zoo)} '
                             'or pass a dict')
        preset = arch_zoo[arch]
    elif isinstance(arch, dict):
        required = {'width', 'depth', 'num_heads'}
        if not required <= set(arch):
            raise ValueError(f'a custom arch needs the keys {sorted(required)}, got {arch}')
        unknown = set(arch) - set(overrides)
        if unknown:
            raise ValueError(f'unknown arch keys {sorted(unknown)}; a custom arch takes '
                             f'{sorted(overrides)}')
        preset = dict(custom_defaults, **arch)
    else:
        raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}')
    settings = dict(base or {}, **preset)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings
