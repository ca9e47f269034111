"Issue 23: a corrupt call cache is set aside, its readable answers are salvaged, and the warning reaches the terminal from a papermill kernel."
import json, os, subprocess, sys
import nbformat
from conftest import ROOT
from aidsafe_nb.cache import CallCache
from aidsafe_nb.cache import Completion

def test_truncated_cache_salvaged_and_warned_on_terminal(tmp_path):
    db = tmp_path/'cache.sqlite'
    cc = CallCache(db)
    req = {'messages': [{'role': 'system', 'content': 'the policies ' * 600}, {'role': 'user', 'content': 'q'}]}
    cc.put_many([(f'{i:064x}', Completion(f'answer {i}', 3, 4, finish_reason='stop'), 'm', 's', req) for i in range(400)])
    cc._con().execute('PRAGMA wal_checkpoint(TRUNCATE)'); cc._con().close()   # as a finished run leaves it
    os.truncate(db, os.path.getsize(db) // 2)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"from aidsafe_nb.cache import CallCache\nn = len(CallCache({str(db)!r}))\nprint('rows', n)")])
    src, out = tmp_path/'open.ipynb', tmp_path/'out.ipynb'
    nbformat.write(nb, src)
    code = f"import papermill as pm; pm.execute_notebook({str(src)!r}, {str(out)!r}, kernel_name='python3', progress_bar=False)"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, env={**os.environ, 'PYTHONPATH': str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    line = [l for l in r.stderr.splitlines() if 'aidsafe: WARNING: call cache' in l]
    assert line and 'salvaged' in line[0] and 'corrupt-' in line[0], r.stderr[-3000:]
    n = int(line[0].split('salvaged ')[1].split()[0])
    assert 100 <= n < 400, n
    got = CallCache(db).get_many([f'{i:064x}' for i in range(400)])
    assert len(got) == n and all(c.text == f'answer {int(k, 16)}' for k, c in got.items())
    assert list(tmp_path.glob('cache.sqlite.corrupt-*'))
