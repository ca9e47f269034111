"""Issue 21: library notebooks keep their outputs through the same cleaning as the study pages (`.ci/lib_outputs.py`,
`make lib-outputs`): small, free of this machine's paths, temporary folders, memory addresses and stderr, and exactly
what `nbdev_clean` leaves, so the sync check stays green."""
import importlib.util, json, re
import pytest
from conftest import ROOT
from nbdev.clean import nbdev_clean
from aidsafe_nb.study import output_sizes, MAX_TEXT, MAX_IMAGE

spec = importlib.util.spec_from_file_location('lib_outputs', ROOT/'.ci'/'lib_outputs.py')
lo = importlib.util.module_from_spec(spec); spec.loader.exec_module(lo)

LIB = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if p.stem != 'index')
ABSOLUTE = re.compile(r'(/tmp/|/home/|/root/|/Users/|/work/|/private/|[A-Z]:\\\\)')
ADDRESS = re.compile(r'\b0x[0-9a-fA-F]{6,}\b')

def _outputs(nb: dict) -> list:
    return [o for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]

@pytest.mark.parametrize('path', LIB, ids=[p.stem for p in LIB])
def test_library_outputs_small_and_clean(path):
    nb = json.loads(path.read_text())
    for x in output_sizes(nb):
        assert x['text'] <= MAX_TEXT, f"{path.name} cell {x['cell']}: {x['text']:,} characters of output"
        assert x['png'] <= MAX_IMAGE, f"{path.name} cell {x['cell']}: a {x['png']:,}-byte PNG (> {MAX_IMAGE:,})"
    outs = _outputs(nb); text = json.dumps(outs)
    where = ABSOLUTE.search(text) or ADDRESS.search(text)
    assert str(ROOT) not in text and not where, f'{path.name}: a machine path or memory address in the outputs: {where}'
    assert not any(o.get('name') == 'stderr' for o in outs), f'{path.name}: stderr (warnings, progress bars) saved'
    assert not any(o.get('output_type') == 'error' for o in outs), f'{path.name}: an error saved'

def test_scrub_and_skip_rules():
    assert lo.scrub('<Foo at 0x7f3a2b1c0d90> in /tmp/tmpab_12x/cache.sqlite') == '<Foo at 0x…> in <tmp>/cache.sqlite'
    assert lo.scrub('/tmp/pytest-of-root/pytest-7/test_a0/x.ipynb, 0x1f') == '<tmp>/test_a0/x.ipynb, 0x1f'
    sha = 'bfbbf01fa379a613e63cc023393d19cca2212f6a'
    assert lo.scrub(f"('{sha}', '2026-12-05T15:46:28+00:00')") == "('<commit>', '<time>')"
    assert lo.scrub('[demo] 20/100 call (20%) 314.9 call/s, ETA 0s') == '[demo] 20/100 call (20%) … call/s, ETA …'
    assert lo.scrub('3.52e+04 step/s, ETA 2m03s; [a] done in 2s') == '… step/s, ETA …; [a] done in …'
    kept = 'hold it for 10 seconds on 2025-01-02; fingerprint 9f3a2b1c0d9e8f7a'
    assert lo.scrub(kept) == kept
    flags = {'slow', 'gpu'}
    assert lo.skipped('#| slow\nrun()', flags) and lo.skipped('#| eval: false\nrun()', flags)
    assert lo.skipped('import nbdev; nbdev.nbdev_export()', flags)
    assert not lo.skipped('#| export\ndef f(): pass', flags) and not lo.skipped('x = 1\n#| slow', flags)

def test_tool_keeps_clean_outputs_and_nbdev_clean_leaves_them(tmp_path):
    cells = [f'print({str(ROOT)!r} + "/nbs"); import os; print(os.getcwd())',
             'print(object())',
             'print("x" * 10_000)',
             'import sys; sys.stderr.write("a warning\\n"); 1 + 1',
             '#| slow\nprint("the slow cell ran")']
    kernel = dict(name='python3', display_name='Python 3', language='python')
    nb = dict(nbformat=4, nbformat_minor=5, metadata=dict(kernelspec=kernel),
              cells=[dict(cell_type='code', id=f'c{i}', metadata={}, execution_count=None, outputs=[], source=s)
                     for i, s in enumerate(cells)])
    src = tmp_path/'demo.ipynb'; src.write_text(json.dumps(nb))
    lo.save(src, lo.execute(src, {'slow', 'gpu'}), ROOT)
    saved = src.read_text(); out = json.loads(saved)
    texts = [json.dumps(c['outputs'], ensure_ascii=False) for c in out['cells']]
    assert './nbs' in texts[0] and '<tmp>' in texts[0], texts[0]
    assert '0x…' in texts[1]
    assert 'output cut at' in texts[2] and all(x['text'] <= MAX_TEXT for x in output_sizes(out))
    assert 'a warning' not in texts[3] and '2' in texts[3]
    assert out['cells'][4]['outputs'] == [] and out['cells'][4]['source'].startswith('#| slow')
    test_text = json.dumps(_outputs(out))
    assert str(ROOT) not in test_text, test_text[:500]
    assert not ABSOLUTE.search(test_text) and not ADDRESS.search(test_text), test_text[:500]
    nbdev_clean(fname=str(src))
    assert src.read_text() == saved, 'nbdev_clean changed what the tool saved: the sync check would fail'

spec = importlib.util.spec_from_file_location('wrap_lines', ROOT/'.ci'/'wrap_lines.py')
wl = importlib.util.module_from_spec(spec); spec.loader.exec_module(wl)

def test_wrap_lines_keeps_the_code_and_docments():
    src = ('def f(a, # ' + 'a docment that stays on its line ' * 4 + '\n'
           '      b=1):\n'
           '    "' + 'A long docstring ' * 9 + '"\n'
           '    x = g(a, ' + ', '.join(f'name{i}' for i in range(25)) + ')  # why\n'
           "    if a: raise ValueError(f'the value {a} is ' + 'not one we can use, ' * 1 + "
           "'because the text goes on and on and on')\n"
           '    return x\n')
    out = wl.wrap_code(src)
    assert wl._norm(wl.ast.parse(out)) == wl._norm(wl.ast.parse(src))          # the same code
    lines = out.split('\n')
    assert lines[0] == src.split('\n')[0], 'a docment comment left its parameter'
    assert all(len(l) <= 120 for l in lines[1:]), [l for l in lines if len(l) > 120]
    assert wl.wrap_code(out) == out                                               # idempotent
    md = '- ' + 'word ' * 30 + '- not a new item ' + 'more ' * 20 + '\n| a table | ' + 'x' * 130 + ' |'
    w = wl.wrap_md(md).split('\n')
    assert all(len(l) <= 120 for l in w[:-1]) and w[-1] == md.split('\n')[-1]   # tables left alone
    assert not any(l.lstrip().startswith('- ') for l in w[1:-1]), 'a continuation line would start a list item'
    assert wl.wrap_md(wl.wrap_md(md)) == wl.wrap_md(md)
