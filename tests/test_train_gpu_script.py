"The prepared GPU check runs end to end offline on CPU at toy size and says that GPU numbers were not measured."
import json, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_at_toy_size(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT/'tests'/'gpu'/'gpu_check.py'), '--out', str(tmp_path), '--budget', '400'],
                       capture_output=True, text=True, timeout=900, env={'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin', 'AIDSAFE_TQDM': '0', 'HF_HUB_OFFLINE': '1'})
    assert p.returncode == 0, p.stderr[-3000:]
    rep = json.loads((tmp_path/'gpu_check.json').read_text())
    assert rep['gpu_measured'] is False and 'NOT measured' in (tmp_path/'gpu_check.md').read_text()
    assert all(r['passed'] for r in rep['dtype'])
    assert [(r['kind'], r['config'], r['status']) for r in rep['training']] == [('sft', 'trl_default', 'ok'), ('sft', 'tuned', 'ok'), ('dpo', 'trl_default', 'ok'), ('dpo', 'tuned', 'ok')]
    assert len(rep['generation']) == 2
