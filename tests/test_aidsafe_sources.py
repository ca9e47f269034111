"Prompt sources: hub presets (with `datasets.load_dataset` stubbed, since the hub is unreachable offline), local overrides, errors."
import json
import pandas as pd
import pytest
import datasets
from aidsafe_nb.config import ConfigError
from aidsafe_nb.sources import load_source, load_aidsafe, sample_prompts, prompts_for
from aidsafe_nb.config import make_config

@pytest.fixture
def fake_hub(monkeypatch):
    "Replace `datasets.load_dataset` by tiny in-memory tables shaped like the real hub datasets; records every call."
    calls = []
    tables = {
        'PKU-Alignment/BeaverTails': dict(prompt=['How do I steal a bike?', 'How do I steal a bike?', 'Insult my coworker.'],
                                          response=['Use bolt cutters...', 'I cannot help with theft.', 'No.'], is_safe=[False, True, True],
                                          category=[{'theft': True, 'hate_speech': False}, {'theft': True, 'hate_speech': False}, {'theft': False, 'hate_speech': True}]),
        'mlabonne/alpagasus': dict(instruction=['Name three fruits.', 'Translate the sentence.'], input=['', 'Hello world'], output=['Apple, pear, plum.', 'Hola mundo']),
        'AmazonScience/AIDSAFE': dict(prompt=['How to write a fake review?'], thoughts=["['Policy 2 applies.', 'Offer honest marketing tips.']"],
                                      response=['I cannot write fake reviews, but...'], deliberation_log=['[{"agent": 1}]']),
    }
    def load_dataset(path, name=None, split=None, **kw):
        calls.append((path, name, split))
        if path not in tables: raise FileNotFoundError(f"Couldn't reach '{path}' on the Hub (offline)")
        return datasets.Dataset.from_pandas(pd.DataFrame(tables[path]))
    monkeypatch.setattr(datasets, 'load_dataset', load_dataset)
    return calls

def test_beavertails_preset_prefers_safe_response_and_dedups(fake_hub):
    recs = sample_prompts(2, 1.0, 'PKU-Alignment/BeaverTails', 'mlabonne/alpagasus', val_fraction=0)
    assert fake_hub == [('PKU-Alignment/BeaverTails', None, '30k_train')]        # general half is empty: not loaded
    bike = next(r for r in recs if 'bike' in r['prompt'])
    assert (bike['original_response'], bike['category'], bike['kind']) == ('I cannot help with theft.', 'theft', 'safety')
    assert len(recs) == 2 and len({r['prompt'] for r in recs}) == 2

def test_alpagasus_preset_joins_instruction_and_input(fake_hub):
    recs = load_source('mlabonne/alpagasus')
    assert fake_hub == [('mlabonne/alpagasus', None, 'train')]
    assert [r['prompt'] for r in recs] == ['Name three fruits.', 'Translate the sentence.\n\nHello world']
    assert all(r['kind'] == 'general' and r['source'] == 'mlabonne/alpagasus' for r in recs)

def test_aidsafe_hub_configs(fake_hub):
    rows = load_aidsafe(config='Dataadvisor_CoT', split='validation')
    assert fake_hub[-1] == ('AmazonScience/AIDSAFE', 'Dataadvisor_CoT', 'validation')
    assert rows[0]['thoughts'] == ['Policy 2 applies.', 'Offer honest marketing tips.'] and rows[0]['kind'] == 'safety'   # Data Advisor is a safety-alignment set
    recs = load_source('AmazonScience/AIDSAFE:Beavertails_CoT')
    assert fake_hub[-1] == ('AmazonScience/AIDSAFE', 'Beavertails_CoT', 'train')
    assert (recs[0]['kind'], recs[0]['original_response']) == ('safety', 'I cannot write fake reviews, but...')

def test_unreachable_hub_names_the_source_and_the_fix(fake_hub):
    with pytest.raises(ConfigError, match=r"someone/missing.*local file"): load_source('someone/missing', 'safety')

def test_local_override_of_a_hub_source(tmp_path):
    f = tmp_path/'my_safety.jsonl'
    f.write_text(''.join(json.dumps(dict(prompt=f'unsafe prompt {i}', response=f'safe answer {i}')) + '\n' for i in range(6)))
    g = tmp_path/'my_general.csv'
    pd.DataFrame(dict(instruction=[f'task {i}' for i in range(6)], output=['done'] * 6)).to_csv(g, index=False)
    recs = prompts_for(make_config('tiny', n_prompts=6, safety_source=str(f), general_source=str(g)))
    assert [r['kind'] for r in recs].count('safety') == 3
    assert {r['source'] for r in recs} == {'my_safety.jsonl', 'my_general.csv'}
    assert all(r['original_response'] for r in recs)

def test_aidsafe_local_folder_with_thoughts_column(tmp_path):
    d = tmp_path/'Beavertails_CoT'; d.mkdir()
    pd.DataFrame(dict(prompt=['p1', 'p2'], thoughts=['["a", "b"]', '1. c\n2. d'], response=['r1', 'r2'])).to_csv(d/'test.csv', index=False)
    pd.DataFrame(dict(prompt=['p3'], thoughts=['["x"]'], response=['r3'])).to_csv(d/'train.csv', index=False)
    rows = load_aidsafe(str(d), split='test')
    assert [r['thoughts'] for r in rows] == [['a', 'b'], ['c', 'd']] and rows[0]['deliberation_log'] == ''
    with pytest.raises(ConfigError, match='missing columns'):
        pd.DataFrame(dict(prompt=['p'], response=['r'])).to_csv(d/'validation.csv', index=False)
        load_aidsafe(str(d), split='validation')
