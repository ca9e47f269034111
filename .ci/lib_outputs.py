"""Execute library notebooks and save them with their outputs, cleaned as the study pages' are (issue 21).
usage: python .ci/lib_outputs.py [--out DIR] [NOTEBOOK ...]   (default: every nbs/*.ipynb but index;
       `make lib-outputs NBS=...`; --out DIR: save the executed copies there and leave the notebooks as they are)
Each notebook runs in a fresh kernel (cwd its folder, OMP_NUM_THREADS=1, IN_TEST=1 as under nbdev_test). Cells that
nbdev_test skips (the `tst_flags` of settings.ini, e.g. `#| slow`; `#| eval: false`; `nbdev_export()`) do not run and
keep no output. Outputs go through `aidsafe_nb.study.clean_outputs` (no stderr, no execution counts, text cut at
MAX_TEXT, this machine's paths replaced), temporary paths and memory addresses are scrubbed, a PNG over MAX_IMAGE
is refused, and the file is left as `nbdev_clean` leaves it, so `make sync-check` stays green."""
import json, os, re, sys, tempfile
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbdev.clean import nbdev_clean
from nbdev.config import get_config
from aidsafe_nb.config import repo_root
from aidsafe_nb.run import atomic_write_text
from aidsafe_nb.study import clean_outputs, output_sizes, MAX_TEXT, MAX_IMAGE

QUIET = dict(TQDM_DISABLE='1', HF_DATASETS_DISABLE_PROGRESS_BARS='1', TRANSFORMERS_VERBOSITY='error',
             PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', IN_TEST='1')
TMP = re.compile(r'(?:/private)?(?:/var/folders/[^\s\'"]+?/T|/tmp)/(?:pytest-of-[^/\s\'"]+/)?[^/\s\'"<>]+')
ADDR = re.compile(r'\b0x[0-9a-fA-F]{6,}\b')
CLOCK = [(re.compile(r'\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?'), '<time>'),   # timestamps
         (re.compile(r'\b[0-9a-f]{40}\b'), '<commit>'),                                     # git commits
         (re.compile(r'\b\d+(?:\.\d+)?(?:e[+-]?\d+)? ((?:call|step|it|request|token)s?/s)\b'), r'… \1'),   # rates
         (re.compile(r'\b(done in|ETA) \d+(?:\.\d+)?(?:h\d*|m\d*|s)*(?:s\b)?'), r'\1 …')]       # durations
DIRECTIVE = re.compile(r'^\s*#\s*\|\s*([\w-]+:?)\s*(.*)$')

def machine_paths(root: Path) -> dict:
    "{absolute path: what to show instead}, longest first: the venv, the shared folder, the checkout, the home folder."
    root, home = Path(root).resolve(), Path.home()
    p = {str(root/'.venv'): '.venv', str((root/'.venv').resolve()): '.venv', str(root): '.', str(home): '~'}
    shared = root.parent/'shared'
    if shared.exists(): p |= {str(shared): '../shared', str(shared.resolve()): '../shared'}
    return dict(sorted(p.items(), key=lambda kv: -len(kv[0])))

def scrub(s: str) -> str:
    "`s` with temporary paths, memory addresses, timestamps, commits, rates and durations masked (reruns agree)."
    s = ADDR.sub('0x…', TMP.sub('<tmp>', s))
    for rx, r in CLOCK: s = rx.sub(r, s)
    return s

def skipped(source: str, flags) -> bool:
    "Whether nbdev_test skips this code cell: a directive in `flags`, `eval: false`, or an `nbdev_export()` call."
    if 'nbdev_export' + '(' in source: return True
    for line in source.splitlines():
        m = DIRECTIVE.match(line)
        if not m: break
        if m.group(1) in flags or (m.group(1) == 'eval:' and m.group(2).strip().lower() == 'false'): return True
    return False

def _scrub_outputs(nb: dict) -> dict:
    for c in nb['cells']:
        for o in c.get('outputs', []):
            if 'text' in o: o['text'] = scrub(''.join(o['text']) if isinstance(o['text'], list) else o['text'])
            for k, v in o.get('data', {}).items():
                if k.startswith('text/'): o['data'][k] = scrub(''.join(v) if isinstance(v, list) else v)
            if 'traceback' in o: o['traceback'] = [scrub(t) for t in o['traceback']]
    return nb

def execute(src: Path, flags, timeout: int = 1200) -> dict:
    "The notebook at `src` (its own JSON) with the outputs of one run in a fresh kernel; skipped cells keep none."
    nb = json.loads(Path(src).read_text())
    run = nbformat.reads(json.dumps(nb), as_version=4)
    for c in run.cells:
        if c.cell_type == 'code':
            c.outputs = []
            if skipped(c.source, flags): c.source = ''
    old = {k: os.environ.get(k) for k in [*QUIET, 'AIDSAFE_PROGRESS']}
    os.environ.update(QUIET); os.environ.pop('AIDSAFE_PROGRESS', None)
    client = NotebookClient(run, timeout=timeout, kernel_name='python3',
                            resources={'metadata': {'path': str(Path(src).parent)}})
    try: client.execute()
    except CellExecutionError as e: sys.exit(f'{Path(src).name}: a cell failed:\n{scrub(str(e))[-3000:]}')
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
    for c, r in zip(nb['cells'], run.cells):
        if c['cell_type'] == 'code': c.update(outputs=json.loads(json.dumps(r.outputs)), execution_count=None)
    return nb

def save(src: Path, nb: dict, root: Path, max_text: int = MAX_TEXT, max_image: int = MAX_IMAGE) -> dict:
    "Clean `nb`'s outputs, refuse a PNG over `max_image`, write `src` and `nbdev_clean` it; returns its output sizes."
    nb = _scrub_outputs(clean_outputs(nb, machine_paths(root), max_text))   # scrubbing only shortens text
    big = [x for x in output_sizes(nb) if x['png'] > max_image]
    if big: sys.exit(f"{Path(src).name}: cell {big[0]['cell']} holds a {big[0]['png']:,}-byte PNG "
                     f"(limit {max_image:,}): make the figure smaller")
    atomic_write_text(src, json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    nbdev_clean(fname=str(src))                           # exactly what the sync check's nbdev_clean leaves
    sizes = output_sizes(nb)
    return dict(cells_with_output=len(sizes), largest_text=max([x['text'] for x in sizes] or [0]),
                largest_png=max([x['png'] for x in sizes] or [0]))

def main(args):
    root, out = repo_root(), None
    if args[:1] == ['--out']: out, args = Path(args[1]), args[2:]
    nbs = [Path(p).resolve() for p in args] or sorted(p for p in (root/'nbs').glob('*.ipynb') if p.stem != 'index')
    flags = set(str(get_config().get('tst_flags', '')).split())
    for src in nbs:
        dst = src if out is None else out/src.name
        if out is not None: out.mkdir(parents=True, exist_ok=True)
        s = save(dst, execute(src, flags), root)
        print(f"{src.name:<28} {s['cells_with_output']:>3} cells with output, "
              f"largest text {s['largest_text']:,} chars, largest PNG {s['largest_png']:,} bytes", flush=True)

if __name__ == '__main__': main(sys.argv[1:])
