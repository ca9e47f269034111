"""Issue 20: the `paper` profile's study step 1 against simulated OpenAI-compatible endpoints (`aidsafe_nb.simulate`, loopback only):
an endpoint that answers like a capable agent keeps >= 90% of the rows, one that answers like a broken agent keeps <= 10%.
Before issue 20 (commit a20de9f: 256-token stage budgets, every gate failure removing the row) the capable endpoint kept 10 of 12
rows with this simulation (the issue's own, longer-answer simulation: 2 of 12)."""
import pytest
from aidsafe_nb.simulate import simulate_step1

def test_paper_step1_capable_endpoint_keeps_rows(tmp_path):
    s = simulate_step1(tmp_path/'run', 'capable', 'paper', n_prompts=12)
    print(s)
    assert s['rows'] == 12 and s['kept_share'] >= 0.9, s
    assert all(r == 0 for st, r in s['cut_rate'].items()), s['cut_rate']     # the paper budgets fit the answers
    assert s['endpoint_calls']['initial_cot'] == 12 and s['endpoint_cuts'].get('initial_cot', 0) == 0

def test_paper_step1_broken_endpoint_keeps_few_rows(tmp_path):
    s = simulate_step1(tmp_path/'run', 'broken', 'paper', n_prompts=12)
    print(s)
    assert s['rows'] == 12 and s['kept_share'] <= 0.1, s
