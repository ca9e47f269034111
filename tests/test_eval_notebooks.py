"Issue 15: the benchmark, responses, scoring and evaluate notebooks are committed with the outputs of their examples, kept small and free of this machine's paths and of stderr."
import json, re
import pytest
from conftest import ROOT
from aidsafe_nb.study import output_sizes, MAX_TEXT

NBS = [ROOT/'nbs'/f'{n}.ipynb' for n in ('08_benchmarks', '08a_responses', '08b_scoring', '09_evaluate')]
ABSOLUTE = re.compile(r'(/tmp/|/home/|/root/|/Users/|/work/|[A-Z]:\\\\)')

@pytest.mark.parametrize('path', NBS, ids=[p.stem for p in NBS])
def test_saved_outputs_small_and_clean(path):
    nb = json.loads(path.read_text())
    sizes = output_sizes(nb)
    assert len(sizes) >= 9, f'{path.name}: only {len(sizes)} cells with outputs (rerun its examples and save)'
    assert all(x['text'] <= MAX_TEXT for x in sizes), [x for x in sizes if x['text'] > MAX_TEXT]
    text = json.dumps([o for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])])
    assert not ABSOLUTE.search(text), f'{path.name}: an absolute path in the outputs: {ABSOLUTE.search(text)}'
    assert not any(o.get('name') == 'stderr' for c in nb['cells'] for o in c.get('outputs', [])), f'{path.name}: stderr saved'
    assert not any(o.get('output_type') == 'error' for c in nb['cells'] for o in c.get('outputs', [])), f'{path.name}: an error saved'
