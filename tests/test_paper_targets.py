"Issue 20: AIDSAFE's second target model is a runnable option of the paper profile (a sweep file), not only prose."
from pathlib import Path
import yaml
from aidsafe_nb.config import make_config, PROFILES

ROOT = Path(__file__).resolve().parent.parent

def test_paper_targets_sweep_names_both_targets_and_each_entry_validates():
    entries = yaml.safe_load((ROOT/'data'/'sweeps'/'paper_targets.yaml').read_text())
    targets = [e['target_model'] for e in entries]
    assert PROFILES['paper']['target_model'] in targets and len(set(targets)) == 2
    cfgs = [make_config('paper', **e) for e in entries]
    assert [c.target_model for c in cfgs] == targets and all(c.agent_model == cfgs[0].agent_model for c in cfgs)
