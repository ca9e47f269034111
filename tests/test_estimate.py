"""The dry run's estimate against the calls a run really sent (issue 22): from the config alone on tiny, and once step 1 is done
on smol, where the content gates skip five of seven systems. The runs are recorded in `tests/fixtures/` (config, manifest with
every step's usage, and step 1's `data/cot`), so these checks take seconds; `test_study_e2e.py` checks tiny against a live run."""
import json, shutil
from pathlib import Path
import pytest
from aidsafe_nb.config import shared_benchmarks_dir
from aidsafe_nb.run import RunDir, load_config
from aidsafe_nb.study import estimate, fingerprints, dry_run

FIX = Path(__file__).parent/'fixtures'
LATER = ['2_preference', '3_sft', '4_dpo', '5_evaluate', '6_report']
# step 5 counts the benchmark items as the run loads them, offline from ../shared/benchmarks
needs_benchmarks = pytest.mark.skipif(shared_benchmarks_dir() is None,
                                      reason='needs the offline benchmark copies in ../shared/benchmarks (CI has them)')

def sent(man: dict, steps) -> int:
    "Calls a recorded run sent (answered by the model or its cache) in `steps`."
    return sum(u.get('calls', 0) + u.get('cached', 0) for s in steps for u in (man['steps'].get(s, {}).get('usage') or {}).values())

def step1_done(tmp_path, name: str):
    "A copy of the recorded run `name` as it stood when step 1 had finished: (run dir, its config, the full recorded manifest)."
    run = tmp_path/name; shutil.copytree(FIX/name, run)
    full = json.loads((run/'manifest.json').read_text()); cfg = load_config(run/'config.yaml')
    s1 = dict(full['steps']['1_generate'], fingerprint=fingerprints(cfg)['1_generate'])       # done with this tree's step 1
    man = dict(full, steps={'1_generate': s1}, usage={k: v for k, v in full['usage'].items() if k in s1.get('usage', {})})
    (run/'manifest.json').write_text(json.dumps(man))
    return run, cfg, full

def within(est: int, real: int, tol: float = 0.2) -> bool: return abs(est - real) <= tol * real

@needs_benchmarks
@pytest.mark.parametrize('name', ['smol_run', 'smol_run2'])
def test_smol_estimate_once_step1_is_done_is_within_20_percent(tmp_path, monkeypatch, name):
    "smol, 8 prompts: after step 1, the later steps' estimate uses step 1's rows and the systems the gates leave; within 20% of what they sent."
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    run, cfg, full = step1_done(tmp_path, name)
    est, real = estimate(RunDir(run), cfg), sent(full, LATER)
    got = sum(est[s]['calls'] for s in LATER)
    assert within(got, real), ({s: est[s]['calls'] for s in LATER}, {s: sent(full, [s]) for s in LATER})
    assert all(est[s]['basis'].startswith("from the run's data") for s in ('2_preference', '4_dpo', '5_evaluate')), est
    assert '2/7 systems expected to train' in est['5_evaluate']['basis'] and est['4_dpo']['calls'] == 0
    fates = {m: ok for m, (ok, _) in est['5_evaluate']['fates'].items()}          # the run skipped exactly these five
    skipped = {x['model'] for x in json.loads((FIX/name/'skipped.json').read_text())}
    assert {m for m, ok in fates.items() if not ok} == skipped, fates
    # the config alone cannot know that: an upper bound, far above what was sent, and labelled so
    blind = estimate(RunDir(tmp_path/'never-run'), cfg)
    assert sum(blind[s]['calls'] for s in LATER) > 1.5 * real and blind['5_evaluate']['basis'] == 'config only: upper bound, every system trains'
    text = dry_run(run)
    assert '1_generate    skip' in text and 'systems expected to train: sft_og yes' in text and "sft_db no" in text, text

@needs_benchmarks
def test_tiny_config_estimate_within_20_percent(tmp_path, monkeypatch):
    "tiny, 3 prompts: the config-only estimate of a run not started, and the estimate once step 1 is done, are within 20% of what the run sent."
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    run, cfg, full = step1_done(tmp_path, 'tiny_run')
    fresh = estimate(RunDir(tmp_path/'never-run'), cfg)
    assert within(sum(e['calls'] for e in fresh.values()), sent(full, full['steps'])), ({s: e['calls'] for s, e in fresh.items()}, full['usage'])
    after = estimate(RunDir(run), cfg)
    assert within(sum(after[s]['calls'] for s in LATER), sent(full, LATER)), {s: after[s]['calls'] for s in LATER}
