"aidsafe_nb.dataio: DatasetDict round trip with typed nested features, the dataset card's YAML, gate rates, the old layout."
import json
import yaml
from datasets import load_from_disk, DatasetDict, Dataset, Value, List
from huggingface_hub import DatasetCard
from aidsafe_nb.dataio import save_dataset_dict, load_rows, load_dataset_folder

def _rows():
    return [dict(id=str(i), split=s, prompt=f'q{i}', thoughts=[f't{i}', 'u'], n_rounds=i, agreed=bool(i % 2),
                 intents=json.dumps(dict(explicit=[f'e{i}'], implicit=['i'])),
                 deliberation_log=json.dumps([dict(round=1, agent='a', thoughts=['x'], agree=False), dict(round=2, agent='b', thoughts=[], agree=True)]),
                 failures=json.dumps([dict(stage='intents', reason='invalid JSON')] if i == 1 else []))
            for i, s in enumerate(['train', 'train', 'validation', 'test', None])]

def test_round_trip_typed(tmp_path):
    rows = _rows()
    f = save_dataset_dict(rows, tmp_path/'data'/'cot', card=dict(config=dict(agent_model='tiny', safety_source='PKU-Alignment/BeaverTails')))
    dd = load_from_disk(str(f))
    assert isinstance(dd, DatasetDict) and {k: len(v) for k, v in dd.items()} == dict(train=3, validation=1, test=1)
    feats = dd['train'].features
    assert feats['intents']['explicit'] == List(Value('string'))                      # a struct of lists, not a JSON string
    assert feats['deliberation_log'].feature['agree'] == Value('bool')                 # a list of structs
    assert feats['failures'].feature['stage'] == Value('string') and feats['n_rounds'] == Value('int64')
    assert dd['train'][1]['failures'] == [dict(stage='intents', reason='invalid JSON')]
    # back to the JSONL encoding: identical rows (order: train, validation, test)
    order = [0, 1, 4, 2, 3]
    assert load_rows(f, json_strings=True) == [rows[i] for i in order]
    assert [json.loads(l) for l in (tmp_path/'data'/'cot.jsonl').read_text().splitlines()] == rows
    assert [r['id'] for r in load_rows(f, 'validation')] == ['2'] and len(load_dataset_folder(f)) == 5

def test_card_yaml_parses(tmp_path):
    (tmp_path/'data').mkdir()
    (tmp_path/'data'/'cot.gates.json').write_text(json.dumps(dict(set='cot', stages=dict(intents=dict(n=5, passed=4, pass_rate=0.8)))))
    f = save_dataset_dict(_rows(), tmp_path/'data'/'cot', card=dict(config=dict(safety_source='PKU-Alignment/BeaverTails', general_source='smoke', policy_set='aidsafe5')))
    text = (f/'README.md').read_text()
    meta = yaml.safe_load(text.split('---')[1])
    assert meta['license'] == 'cc-by-nc-4.0' and meta['task_categories'] == ['text-generation']
    assert meta['source_datasets'] == ['PKU-Alignment/BeaverTails']                   # 'smoke' is not a hub data set
    card = DatasetCard.load(f/'README.md')
    assert card.data.license == 'cc-by-nc-4.0'
    assert '| intents | 5 | 4 | 0.8 |' in card.text and 'aidsafe_intents.j2' in card.text and '01_hate_harassment_violence.yaml' in card.text

def test_old_layout_and_bad_split(tmp_path):
    Dataset.from_list([dict(id='a', split='train'), dict(id='b', split='test')]).save_to_disk(str(tmp_path/'old'))
    assert [r['id'] for r in load_rows(tmp_path/'old', 'test')] == ['b']
    import pytest
    with pytest.raises(ValueError, match='invalid split'): save_dataset_dict([dict(id='x', split='a b')], tmp_path/'bad')
    assert not (tmp_path/'bad').exists()
