"Issue 20: `aidsafe-study --pilot N` on the tiny profile, offline: every step on N prompts into RUN/pilot, `pilot.md` with the verdict, and exit 4 because the full tiny run rests on judges that fail validation (random weights). Slow: a whole tiny study."
import json, os
from pathlib import Path
import pytest
from conftest import aidsafe_study

pytestmark = pytest.mark.slow

def test_tiny_pilot_writes_pilot_md_and_names_what_the_full_run_would_lose(tmp_path):
    run = tmp_path/'run'
    r = aidsafe_study('--profile', 'tiny', '--run', run, '--pilot', '3', check=False)
    assert r.returncode == 4, (r.returncode, r.stderr[-3000:])
    md = (run/'pilot'/'pilot.md').read_text()
    for want in ('# Pilot of the `tiny` profile on 3 prompts', '## Verdict', 'fails validation', '## Content gates and cut rates per stage',
                 '| cot | intents |', '## Training sets', 'SFT_DB', '## Judges', '## The full run, estimated', 'does not enforce the content gates'):
        assert want in md, want
    assert 'the full run would lose something' in r.stderr and 'fails validation' in r.stderr
    m = json.loads((run/'pilot'/'manifest.json').read_text())
    assert [m['steps'][s]['status'] for s in ('1_generate', '2_preference', '3_sft', '4_dpo', '5_evaluate', '6_report')] == ['done'] * 6
    assert (run/'pilot'/'cache.sqlite').resolve() == (run/'cache.sqlite').resolve()          # the full run reuses the pilot's calls
    assert 'n_prompts: 3' in (run/'pilot'/'config.yaml').read_text() and not (run/'config.yaml').exists()
