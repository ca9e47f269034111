"Issue 22: every batched call shows progress with rate and ETA on the process's real stderr (the terminal) when AIDSAFE_PROGRESS is set."
import os, subprocess, sys
from conftest import ROOT

CHILD = '''
from aidsafe_nb.testing import FakeBackend
be = FakeBackend(latency=0.05, progress=False)
be.chat([[{'role': 'user', 'content': f'q{i}'}] for i in range(50)], stage='intents')
be.chat([[{'role': 'user', 'content': 'x'}]], stage='quiet')
'''

def run(env_extra):
    env = {**os.environ, 'PYTHONPATH': str(ROOT), **env_extra}
    env.pop('AIDSAFE_PROGRESS', None) if 'AIDSAFE_PROGRESS' not in env_extra else None
    return subprocess.run([sys.executable, '-c', CHILD], capture_output=True, text=True, timeout=120, env=env)

def test_batched_call_progress_lines_on_stderr(tmp_path):
    r = run({'AIDSAFE_PROGRESS': '1.1', 'AIDSAFE_PROGRESS_FILE': str(tmp_path/'progress.log')})
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [l for l in r.stderr.splitlines() if '[fake:fake:intents]' in l]
    assert lines[0].strip() == '[fake:fake:intents] sending 50 of 50 requests (0 cached)', lines
    assert any('call/s, ETA' in l and '/50 call (' in l for l in lines[1:-1]), lines     # at least one periodic line with rate and ETA
    assert lines[-1].strip().startswith('[fake:fake:intents] 50 requests done in'), lines
    assert (tmp_path/'progress.log').read_text().splitlines() == [l for l in r.stderr.splitlines() if l.startswith('  [fake:')]

def test_no_progress_lines_without_the_variable():
    r = run({})
    assert r.returncode == 0 and '[fake:' not in r.stderr, r.stderr[-2000:]
