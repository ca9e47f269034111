"""Issue 15/21: the study notebooks are committed with the outputs of a smol run (SmolLM2 in every role), kept small
and free of this machine's paths (regenerate: `make outputs PROFILE=smol`)."""
import json, re
from pathlib import Path
import pytest
from conftest import ROOT
from aidsafe_nb.study import output_sizes, clean_outputs, MAX_TEXT, MAX_IMAGE
from aidsafe_nb.steps import STEPS

# the six step notebooks; 0_colab (the Colab driver) runs the whole study itself, so it has no outputs of its own
NBS = [ROOT/'nbs'/'study'/s.notebook for s in STEPS]
ABSOLUTE = re.compile(r'(/tmp/|/home/|/root/|/Users/|/work/|[A-Z]:\\\\)')

def _outputs_text(nb: dict) -> str:
    return json.dumps([o for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])])

@pytest.mark.parametrize('path', NBS, ids=[p.stem for p in NBS])
def test_study_notebook_has_saved_outputs(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb['cells'] if c['cell_type'] == 'code' and 'parameters' not in c.get('metadata', {}).get('tags', [])]
    with_out = output_sizes(nb)
    assert with_out, f'{path.name} has no saved outputs: run `make outputs`'
    assert len(with_out) >= len(code) // 2, f'{path.name}: only {len(with_out)} of {len(code)} code cells have outputs (a stale save?): run `make outputs`'

@pytest.mark.parametrize('path', NBS, ids=[p.stem for p in NBS])
def test_outputs_are_small(path):
    for x in output_sizes(json.loads(path.read_text())):
        assert x['text'] <= MAX_TEXT, f"{path.name} cell {x['cell']}: {x['text']:,} characters of output (limit {MAX_TEXT:,})"
        assert x['png'] <= MAX_IMAGE, f"{path.name} cell {x['cell']}: a {x['png']:,}-byte PNG (limit {MAX_IMAGE:,})"

@pytest.mark.parametrize('path', NBS, ids=[p.stem for p in NBS])
def test_outputs_hold_no_machine_paths_or_noise(path):
    nb = json.loads(path.read_text())
    text = _outputs_text(nb)
    assert str(ROOT) not in text and not ABSOLUTE.search(text), f'{path.name}: an absolute path in the outputs: {ABSOLUTE.search(text)}'
    assert not any(o.get('name') == 'stderr' for c in nb['cells'] for o in c.get('outputs', [])), f'{path.name}: stderr (progress bars, warnings) saved'
    assert not any('injected-parameters' in c.get('metadata', {}).get('tags', []) for c in nb['cells']), f"{path.name}: papermill's injected cell saved"

def test_clean_outputs_cuts_large_text_and_replaces_paths():
    out = dict(output_type='execute_result', execution_count=1, metadata={},
               data={'text/plain': '/x/run ' + 'a' * 9000, 'text/html': '<p>' + 'b' * 9000 + '</p>'})
    nb = dict(cells=[dict(cell_type='code', source='x', metadata={}, execution_count=1, outputs=[out])], metadata={}, nbformat=4, nbformat_minor=5)
    c = clean_outputs(nb, {'/x/run': 'outputs/tiny'})['cells'][0]
    assert list(c['outputs'][0]['data']) == ['text/plain'] and c['outputs'][0]['data']['text/plain'].startswith('outputs/tiny aaa')
    assert output_sizes(dict(cells=[c]))[0]['text'] <= MAX_TEXT and 'output cut at' in c['outputs'][0]['data']['text/plain']
