"What training reads: only train-split rows that passed the content gates; skipped models with reasons; the released AIDSAFE layout; model cards."
import dataclasses, json
import pytest
import pandas as pd
from aidsafe_nb.run import open_run
from aidsafe_nb.train import write_demo_data, sft_dataset, dpo_dataset, released_rows, TrainSkip, load_data, write_demo_set
from aidsafe_nb.adapters import skipped_models, train_info, model_dir, is_trained
from aidsafe_nb.hardware import TrainError
from aidsafe_nb.steps import run_sft, run_dpo


def ids_of(rd, name, split):
    return {r['id'] for r in load_data(rd, 'cot', split)}


@pytest.fixture(scope='module')
def split_run(tmp_path_factory):
    rd, cfg = open_run(tmp_path_factory.mktemp('splits')/'run', 'tiny', max_steps=2, enforce_gates=True)
    write_demo_data(rd, n=4, val_rows=2, test_rows=2, junk_rows=1)
    sft, dpo = run_sft(rd, cfg), run_dpo(rd, cfg)
    return rd, cfg, sft, dpo


def test_no_training_set_holds_a_validation_or_test_id(split_run):
    rd, cfg, sft, dpo = split_run
    held = ids_of(rd, 'cot', 'validation') | ids_of(rd, 'cot', 'test')
    assert len(held) == 4
    assert set(sft) == {'sft_og', 'sft_db', 'rw'} and set(dpo) == {'dpo', 'dpo_saro'}
    for name in [*sft, *dpo]:
        rep = json.loads((model_dir(rd, name)/'data_report.json').read_text())
        assert rep['train_ids'] and not set(rep['train_ids']) & held, name
        assert set(rep['validation_ids']) == ids_of(rd, 'cot', 'validation'), name
        assert train_info(rd, name)['n_eval_rows'] == 2 and train_info(rd, name)['final_eval_loss'] is not None, name


def test_gate_failed_rows_never_train(split_run):
    rd = split_run[0]
    for name in ('sft_db', 'rw', 'dpo', 'dpo_saro'):
        rep = json.loads((model_dir(rd, name)/'data_report.json').read_text())
        assert 'demo-4' not in rep['train_ids'], name                  # demo-4 is the junk row
    og = json.loads((model_dir(rd, 'sft_og')/'data_report.json').read_text())['train_ids']   # SFT_OG is not gated, but by default
    assert og == json.loads((model_dir(rd, 'sft_db')/'data_report.json').read_text())['train_ids']   # it trains on SFT_DB's prompts
    g = train_info(rd, 'sft_db')['gates']
    assert (g['n'], g['n_passed'], g['n_gate_failed']) == (5, 4, 1) and g['failures'] == {'response: placeholder_echo': 1}


def test_validation_rows_of_a_split_less_set_follow_their_prompt(split_run):
    rd = split_run[0]
    # pair rows carry no split column: their prompt's split in data/cot decides
    assert sorted(dpo_dataset(rd, 'pairs_belief', 'validation')['id']) == sorted(ids_of(rd, 'cot', 'validation'))
    assert not set(dpo_dataset(rd, 'pairs_belief', 'train')['id']) & ids_of(rd, 'cot', 'test')


def test_low_gate_share_skips_and_the_study_goes_on(tmp_path):
    rd, cfg = open_run(tmp_path/'run', 'tiny', max_steps=1, enforce_gates=True)
    write_demo_data(rd, n=1, junk_rows=3)                              # 1 of 4 passed: 25% < 50%
    assert set(run_sft(rd, cfg)) == {'sft_og'}                         # SFT_OG is not gated and trains (on SFT_DB's one passing prompt)
    out = run_dpo(rd, cfg)
    sk = skipped_models(rd)
    assert out == {} and set(sk) == {'sft_db', 'rw', 'dpo', 'dpo_saro'}, sk
    assert 'only 1/4 train-split rows passed the content gates' in sk['sft_db'] and 'min_gate_pass_rate 50%' in sk['sft_db']
    assert "start adapter 'sft_db' was skipped" in sk['dpo'] and "start adapter 'rw' was skipped" in sk['dpo_saro']
    assert json.loads((rd.models/'skipped.json').read_text())[0].keys() == {'model', 'reason'}
    # a lower threshold trains it, and the record is cleared
    run_sft(rd, dataclasses.replace(cfg, min_gate_pass_rate=0.2), names=['sft_db'])
    assert is_trained(rd, 'sft_db') and 'sft_db' not in skipped_models(rd)
    assert train_info(rd, 'sft_db')['n_train_rows'] == 1


def test_no_trainable_pair_skips_dpo_instead_of_raising(tmp_path):
    rd, cfg = open_run(tmp_path/'run', 'tiny', max_steps=1, min_gate_pass_rate=0.0, enforce_gates=True)
    write_demo_data(rd, n=2)
    run_sft(rd, cfg, names=['sft_db'])
    rows = [json.loads(l) for l in (rd.data/'pairs_belief.jsonl').read_text().splitlines()]
    write_demo_set(rd, 'pairs_belief', [dict(r, excluded=True, exclude_reason='small_gap') for r in rows])
    assert run_dpo(rd, cfg, names=['dpo']) == {}
    assert 'no trainable pair in pairs_belief' in skipped_models(rd)['dpo'] and 'small_gap' in skipped_models(rd)['dpo']
    with pytest.raises(TrainError, match='not found'): run_dpo(rd, cfg, names=['dpo_baseline'])    # missing input: still an error


def released_folder(tmp_path):
    "A folder in the released AIDSAFE layout: one CSV per split, thoughts as a serialized list string."
    f = tmp_path/'Beavertails_CoT'; f.mkdir()
    def rows(split, n):
        return pd.DataFrame([dict(prompt=f'{split} question {i}: how do I make a weapon?', refined_thoughts=str([f'Thought {j} about policy.' for j in range(2)]),
                                  response=f'I cannot help with that ({split} {i}).', deliberation_log='[]') for i in range(n)])
    for split, n in (('train', 5), ('validation', 2), ('test', 2)): rows(split, n).to_csv(f/f'{split}.csv', index=False)
    rows('train', 1).assign(prompt='validation question 0: how do I make a weapon?').to_csv(f/'train_extra.csv', index=False)   # leaks into train
    return f


def test_sft_db_trains_on_the_released_layout(tmp_path):
    folder = released_folder(tmp_path)
    assert {r['split'] for r in released_rows(str(folder), 'validation')} == {'validation'}
    rd, cfg = open_run(tmp_path/'run', 'tiny', max_steps=1, sft_db_source=str(folder))
    write_demo_data(rd, n=2)                                            # step 1's data is NOT what SFT_DB trains on
    ds, dropped, gates = sft_dataset(rd, 'sft_db', 'train', cfg.sft_db_source)
    assert len(ds) == 5 and all(p[0]['content'].startswith('train question') for p in ds['prompt'])   # the leaked validation prompt is out
    assert ds[0]['completion'][0]['content'].startswith('<think>\nThought 0 about policy.\nThought 1')
    run_sft(rd, cfg, names=['sft_db'])
    info = train_info(rd, 'sft_db')
    assert info['data_source'] == str(folder) and info['n_train_rows'] == 5 and info['n_eval_rows'] == 2
    with pytest.raises(TrainError, match='neither'): released_rows('aidsafe-nope', 'train')
    with pytest.raises(TrainError, match="could not load hub dataset|sft_db_source"): released_rows('aidsafe:NoSuchConfig', 'train')


def test_model_card_names_the_real_base(split_run):
    from huggingface_hub import ModelCard
    rd, cfg = split_run[:2]
    card = ModelCard.load(model_dir(rd, 'dpo')/'README.md')
    assert card.data.library_name == 'peft' and 'dpo' in card.data.tags and 'base_model' not in card.data.to_dict()
    assert "random-weight" in card.text and 'pairs_belief' in card.text and 'lora_r: 16' in card.text
    assert '/' not in json.loads((model_dir(rd, 'sft_db')/'adapter_config.json').read_text())['base_model_name_or_path']
