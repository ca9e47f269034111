"""Execute the benchmark notebooks at their default (toy) sizes and save them with small, path-free outputs.
usage: python .ci/bench_outputs.py [NOTEBOOK ...]   (default: every nbs/bench/*.ipynb; `make outputs` runs it)
The toy sizes show what each benchmark prints; the measured full-size tables are in the README, with the command for each."""
import json, os, sys, tempfile
from pathlib import Path
import papermill as pm
from nbdev.clean import nbdev_clean
from aidsafe_nb.config import repo_root
from aidsafe_nb.run import atomic_write_text
from aidsafe_nb.study import clean_outputs, output_sizes, MAX_TEXT, MAX_IMAGE

root = repo_root()
nbs = [Path(p).resolve() for p in sys.argv[1:]] or sorted((root/'nbs'/'bench').glob('*.ipynb'))
os.environ.update(TQDM_DISABLE='1', HF_DATASETS_DISABLE_PROGRESS_BARS='1', TRANSFORMERS_VERBOSITY='error', PYTHONWARNINGS='ignore')
paths = {str(root/'.venv'): '.venv', str(root): '.', str(Path.home()): '~', tempfile.gettempdir(): '/tmp'}
for src in nbs:
    with tempfile.TemporaryDirectory() as d:
        pm.execute_notebook(str(src), f'{d}/out.ipynb', cwd=str(src.parent), kernel_name='python3', progress_bar=False, log_output=False)
        nb = clean_outputs(json.loads(Path(d, 'out.ipynb').read_text()), paths, MAX_TEXT)
    big = [x for x in output_sizes(nb) if x['png'] > MAX_IMAGE]
    if big: sys.exit(f"{src.name}: cell {big[0]['cell']} holds a {big[0]['png']:,}-byte PNG (limit {MAX_IMAGE:,})")
    atomic_write_text(src, json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    nbdev_clean(fname=str(src))
    sizes = output_sizes(nb)
    print(f"{src.name:<28} {len(sizes):>3} cells with output, largest text {max([x['text'] for x in sizes] or [0]):,} chars, "
          f"largest PNG {max([x['png'] for x in sizes] or [0]):,} bytes")
