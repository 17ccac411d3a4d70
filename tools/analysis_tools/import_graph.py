"""The import graph of the repository, by part: silc_seg's sub-packages, tools, tests.

    python tools/analysis_tools/import_graph.py [--check]

Reads the imports of every tracked ``.py`` file under ``silc_seg/``, ``tools/`` and ``tests/``
(``ast``, nothing is imported) and resolves each to a file of the repository: package imports
from the root, a script's bare imports also from its own folder (as Python does for scripts),
and any bare top-level name that a folder or module anywhere in the tree would provide (a
package such as ``cv2`` placed under ``tools/`` and put on ``PYTHONPATH``). Prints the parts in
layers (each part imports only parts of lower layers, or of its own layer when they import each
other) and one line per dependency. ``--check`` exits 1 when any import resolves into
``tools/``: tools are the top of the graph, nothing imports from them.
"""
import argparse
import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ('silc_seg', 'tools', 'tests')


def tracked_python_files(root: Path) -> List[Path]:
    listed = subprocess.run(
        ['git', 'ls-files', '--cached', '--others', '--exclude-standard', '*.py'],
        cwd=root,
        capture_output=True,
        text=True,
        check=True)
    return [root / line for line in listed.stdout.split() if (root / line).is_file()]


def part_of(path: Path, root: Path) -> str:
    """``silc_seg.<sub-package>`` (or ``silc_seg`` for its own modules), ``tools``, ``tests``."""
    parts = path.relative_to(root).parts
    if parts[0] == 'silc_seg':
        if len(parts) > 2:
            return f'silc_seg.{parts[1]}'
        return 'silc_seg' if parts[1] == '__init__.py' else f'silc_seg.{Path(parts[1]).stem}'
    return parts[0]


def imported_names(path: Path, root: Path) -> List[Tuple[str, int]]:
    """Absolute dotted names of a file's imports (relative ones resolved), with their lines."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = list(path.parent.relative_to(root).parts)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = '.'.join(base + ([node.module] if node.module else []))
            # `from pkg import sub` may name a sub-module: try it first.
            names += [(f'{module}.{alias.name}', node.lineno) for alias in node.names]
            names.append((module, node.lineno))
    return names


def module_file(base: Path, dotted: str) -> Optional[Path]:
    """The file that ``dotted`` names under ``base`` (longest importable prefix), if any."""
    parts = dotted.split('.')
    for end in range(len(parts), 0, -1):
        stem = base.joinpath(*parts[:end])
        for candidate in (stem.with_suffix('.py'), stem / '__init__.py'):
            if candidate.is_file():
                return candidate
    return None


def build_graph(root: Path):
    files = tracked_python_files(root)
    top_level: Dict[str, List[Path]] = defaultdict(list)  # bare names the tree could provide
    for path in files:
        name = path.parent.name if path.name == '__init__.py' else path.stem
        top_level[name].append(path)
    edges: Dict[Tuple[str, str], int] = defaultdict(int)
    into_tools: List[str] = []
    for path in files:
        if path.relative_to(root).parts[0] not in SCANNED:
            continue
        source = part_of(path, root)
        resolved: Set[Path] = set()
        for name, line in imported_names(path, root):
            target = module_file(root, name)
            if target is None and source in ('tools', 'tests'):
                target = module_file(path.parent, name)  # a script's own folder
            if target is None:
                shadows = [
                    p for p in top_level.get(name.split('.')[0], [])
                    if p.relative_to(root).parts[0] == 'tools'
                ]
                target = shadows[0] if shadows else None
            if target is None or target == path or target in resolved:
                continue
            resolved.add(target)
            if target.relative_to(root).parts[0] == 'tools':
                into_tools.append(f'{path.relative_to(root)}:{line} imports {name} '
                                  f'from {target.relative_to(root)}')
            if target.relative_to(root).parts[0] in SCANNED:
                part = part_of(target, root)
                if part != source:
                    edges[(source, part)] += 1
    return edges, into_tools


def layers(edges) -> List[List[str]]:
    """Parts by height: a part sits one layer above the highest part it imports (parts that
    import each other share a layer)."""
    nodes = sorted({n for edge in edges for n in edge})
    deps = defaultdict(set)
    for source, target in edges:
        deps[source].add(target)
    reach = {n: set() for n in nodes}
    for n in nodes:
        stack = list(deps[n])
        while stack:
            m = stack.pop()
            if m not in reach[n]:
                reach[n].add(m)
                stack.extend(deps[m])
    height: Dict[str, int] = {}

    def level(n):
        if n not in height:
            height[n] = 0
            below = [m for m in deps[n] if n not in reach[m]]
            height[n] = 1 + max((level(m) for m in below), default=-1)
        return height[n]

    for n in nodes:
        level(n)
    for n in nodes:  # parts in one cycle: the cycle's highest layer
        height[n] = max(height[m] for m in nodes if m == n or (m in reach[n] and n in reach[m]))
    result = defaultdict(list)
    for n in nodes:
        result[height[n]].append(n)
    return [result[h] for h in sorted(result)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--check', action='store_true', help='exit 1 if anything imports from tools/')
    args = parser.parse_args(argv)
    edges, into_tools = build_graph(ROOT)
    for height, parts in reversed(list(enumerate(layers(edges)))):
        print(f'layer {height}: {", ".join(parts)}')
    print('dependencies (importing files):')
    for (source, target), count in sorted(edges.items()):
        print(f'  {source} -> {target} ({count} file imports)')
    if into_tools:
        print(f'{len(into_tools)} imports resolve into tools/:')
        print('\n'.join(f'  {line}' for line in into_tools))
    else:
        print('nothing imports from tools/')
    return 1 if args.check and into_tools else 0


if __name__ == '__main__':
    sys.exit(main())
