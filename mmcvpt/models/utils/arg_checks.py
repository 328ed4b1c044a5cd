"""One-line ValueErrors for backbone arguments, raised before mmpretrain
builds anything (whose own errors are asserts or deep KeyErrors)."""
from typing import Sequence


def check_choices(*choices) -> None:
    """ValueError for the first ``(name, value, allowed)`` not allowed."""
    for name, value, allowed in choices:
        if value not in allowed:
            raise ValueError(f'{name} must be one of {allowed}, got {value!r}')


def check_counts(**counts) -> None:
    """ValueError for the first ``name=value`` that is not an int >= 0."""
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f'{name} must be an int >= 0, got {value!r}')


def check_arch(arch, arch_zoo: dict) -> dict:
    """The settings of ``arch``: a name of ``arch_zoo`` or a custom dict."""
    if isinstance(arch, str):
        if arch.lower() not in arch_zoo:
            raise ValueError(f'arch must be one of {sorted(set(arch_zoo))} '
                             f'or a dict, got {arch!r}')
        return arch_zoo[arch.lower()]
    keys = {'embed_dims', 'num_layers', 'num_heads', 'feedforward_channels'}
    if not isinstance(arch, dict) or not keys <= set(arch):
        raise ValueError(f'a custom arch must be a dict with keys '
                         f'{sorted(keys)}, got {arch!r}')
    return arch


def check_out_indices(out_indices, num_layers: int) -> None:
    """Indices of layers that exist, as ints (negative from the end)."""
    indices = [out_indices] if isinstance(out_indices, int) else out_indices
    if not isinstance(indices, Sequence) or not all(
            isinstance(i, int) and -num_layers <= i < num_layers
            for i in indices):
        raise ValueError(f'out_indices must be ints in [-{num_layers}, '
                         f'{num_layers - 1}] for {num_layers} layers, got '
                         f'{out_indices!r}')


def check_rope(rope, arch_settings: dict) -> None:
    """``rope``: None or a dict of DINOv3RoPE's arguments, with head
    channels divisible by 4."""
    if rope is None:
        return
    keys = {'base', 'normalize_coords'}
    if not isinstance(rope, dict) or not set(rope) <= keys:
        raise ValueError(f'rope must be None or a dict with keys from '
                         f'{sorted(keys)} (e.g. dict(base=100.)), got '
                         f'{rope!r}')
    head_dims = arch_settings['embed_dims'] // arch_settings['num_heads']
    if head_dims % 4:
        raise ValueError(f'rope needs head channels divisible by 4, got '
                         f'{head_dims} (embed_dims / num_heads)')
