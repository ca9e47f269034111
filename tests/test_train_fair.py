"Fair comparisons and truthful counts in training (issue 20): SFT_OG on SFT_DB's prompts, the pass-rate rule on content gates only, rows dropped by max_seq_len counted, cards that count what passed."
import dataclasses, json
import pytest
from aidsafe_nb.run import open_run
from aidsafe_nb.train import write_demo_data, write_demo_set, gate_stats, check_gates, sft_dataset, TrainSkip
from aidsafe_nb.adapters import train_info, model_dir, skipped_models, is_trained
from aidsafe_nb.steps import run_sft, run_dpo


@pytest.fixture(scope='module')
def fair_run(tmp_path_factory):
    "6 good train rows, 3 gate-failed ones, 1 overlong one; SFT_OG and SFT_DB trained with the defaults."
    rd, cfg = open_run(tmp_path_factory.mktemp('fair')/'run', 'tiny', max_steps=1, enforce_gates=True, min_gate_pass_rate=0.5, max_seq_len=512)
    write_demo_data(rd, n=6, long_rows=1, junk_rows=3, val_rows=2)
    rows = [json.loads(l) for l in (rd.data/'cot.jsonl').read_text().splitlines()]
    rows[-1].update(status='gate_failed', gate_failures='["response: loop"]')     # one validation row failed a gate
    write_demo_set(rd, 'cot', rows)
    run_sft(rd, cfg, names=['sft_db', 'sft_og'])
    return rd, cfg


def test_sft_og_trains_on_the_prompts_sft_db_trains_on(fair_run):
    rd, cfg = fair_run
    og, db = train_info(rd, 'sft_og'), train_info(rd, 'sft_db')
    assert og['n_train'] == db['n_train'] == 6                            # 10 train rows: 3 failed a gate, 1 is too long for SFT_DB
    assert og['train_rows'] == db['train_rows'] and og['train_rows']['n_prompts'] == 6
    assert 'same_as_sft_db' in og['row_selection']
    assert og['n_eval_rows'] == db['n_eval_rows'] == 1                      # validation loss on the same prompts too
    rep = json.loads((model_dir(rd, 'sft_og')/'data_report.json').read_text())
    reasons = [d['reason'] for d in rep['dropped']]
    assert sum("not among SFT_DB's train rows" in r for r in reasons) == 3 and sum("SFT_DB's row is longer" in r for r in reasons) == 1


def test_sft_og_all_rows_is_a_parameter(tmp_path):
    rd, cfg = open_run(tmp_path/'run', 'tiny', max_steps=1, enforce_gates=True, sft_og_rows='all')
    write_demo_data(rd, n=3, junk_rows=2)
    ds, dropped, _ = sft_dataset(rd, 'sft_og')
    run_sft(rd, cfg, names=['sft_og'])
    assert train_info(rd, 'sft_og')['n_train'] == 5 and 'all' in train_info(rd, 'sft_og')['row_selection']


def test_train_info_counts_rows_dropped_by_max_seq_len(fair_run):
    rd = fair_run[0]
    info = train_info(rd, 'sft_db')
    assert info['n_too_long'] == 1 and info['train_config']['max_seq_len'] == 512
    assert json.loads((model_dir(rd, 'sft_db')/'data_report.json').read_text())['n_too_long'] == 1


def test_pass_rate_rule_counts_content_gate_failures_only():
    # the audit's reproduction: 10 pairs, all status ok, 6 excluded by the recipe (rejected side not worse)
    pairs = [dict(id=str(i), status='ok', excluded=i < 6, exclude_reason='rejected_not_worse' if i < 6 else '') for i in range(10)]
    st = gate_stats(pairs)
    assert (st['n_passed'], st['pass_rate'], st['n_gate_failed'], st['n_trainable']) == (10, 1.0, 0, 4)
    assert st['exclusions'] == {'rejected_not_worse': 6} and st['failures'] == {}
    check_gates('dpo', st, 0.5, 'pairs')                                  # trains: nothing failed a gate
    # RW rows the acceptance judge refused are recipe exclusions too; gate failures still count
    rows = [dict(status='not_accepted')]*5 + [dict(status='gate_failed', gate_failures='["response: loop"]')]*3 + [dict(status='ok')]*2
    st = gate_stats(rows)
    assert (st['n_passed'], st['n_gate_failed'], st['n_excluded']) == (7, 3, 5)
    with pytest.raises(TrainSkip, match='only 7/10 train-split rows passed the content gates'): check_gates('rw', st, 0.8)


def test_dpo_trains_when_only_recipe_exclusions_remove_pairs(fair_run, tmp_path):
    rd, cfg = open_run(tmp_path/'run', 'tiny', max_steps=1, enforce_gates=True)
    write_demo_data(rd, n=10)
    run_sft(rd, cfg, names=['sft_db'])
    rows = [json.loads(l) for l in (rd.data/'pairs_belief.jsonl').read_text().splitlines()]
    write_demo_set(rd, 'pairs_belief', [dict(r, excluded=i < 6, exclude_reason='rejected_not_worse' if i < 6 else '') for i, r in enumerate(rows)])
    assert set(run_dpo(rd, cfg, names=['dpo'])) == {'dpo'}              # before: skipped, "only 4/10 ... passed the content gates"
    info = train_info(rd, 'dpo')
    assert info['n_train'] == 4 and info['gates']['exclusions'] == {'rejected_not_worse': 6} and info['gates']['n_gate_failed'] == 0
    # every pair left out by the recipe: skipped, with the recipe's reasons, never "passed the content gates"
    write_demo_set(rd, 'pairs_baseline', [dict(r, excluded=True, exclude_reason='identical') for r in rows])
    assert run_dpo(rd, cfg, names=['dpo_baseline']) == {}
    why = skipped_models(rd)['dpo_baseline']
    assert 'identical' in why and 'passed the content gates' not in why and '0 failed a content gate' in why


def test_card_counts_what_really_passed_when_gates_are_off(tmp_path):
    from huggingface_hub import ModelCard
    rd, cfg = open_run(tmp_path/'run', 'tiny', max_steps=1)              # tiny: enforce_gates=False (plumbing)
    assert cfg.enforce_gates is False
    write_demo_data(rd, n=0, junk_rows=4)                                 # every row failed a gate
    run_sft(rd, cfg, names=['sft_db'])
    g = train_info(rd, 'sft_db')['gates']
    assert (g['n'], g['n_passed'], g['n_gate_failed']) == (4, 0, 4)      # before: "4/4 rows passed the content gates"
    text = ModelCard.load(model_dir(rd, 'sft_db')/'README.md').text
    assert '0/4 train-split rows passed the content gates' in text and 'NOT enforced' in text
    assert 'random weights' in text.lower()
    assert train_info(rd, 'sft_db')['train_config']['load_in_4bit'] is False    # what training did (CPU: full precision)
