"The paper facts the code cites live in the repository (nbs/papers.ipynb), agree with the reference data, and the project is licensed and citable."
import csv, json, re
from pathlib import Path
import yaml
from aidsafe_nb.config import data_dir

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT/'nbs'/'papers.ipynb'


def page_text() -> str:
    return '\n'.join(''.join(c['source']) for c in json.loads(PAGE.read_text())['cells'])


def md_table(text: str, header: str) -> list[list[str]]:
    "The rows of the markdown table whose header line starts with `header`."
    lines = text.splitlines(); i = next(k for k, l in enumerate(lines) if l.startswith(header))
    rows = []
    for l in lines[i + 2:]:
        if not l.startswith('|'): break
        rows.append([c.strip() for c in l.strip('|').split('|')])
    return rows


def test_table_2_on_the_papers_page_is_the_reference_data():
    ref = {(r['model'], r['system'], r['benchmark']): r['value'] for r in csv.DictReader(open(data_dir()/'reference'/'aidsafe_table2.csv'))}
    got = {}
    for bench, *cols in md_table(page_text(), '| benchmark | Mixtral | Qwen2.5-7B |'):
        for model, cell in zip(('Mixtral', 'Qwen2.5-7B'), cols):
            for system, v in zip(('Base', 'SFT_OG', 'SFT_DB'), cell.split(' / ')): got[(model, system, bench)] = v
    assert got == ref


def test_table_1_on_the_papers_page_is_the_reference_data():
    ref = [[r['metric'], r['LLM_ZS'], r['AIDSAFE']] for r in csv.DictReader(open(data_dir()/'reference'/'aidsafe_table1.csv'))]
    assert md_table(page_text(), '| metric | LLM_ZS | AIDSAFE |') == ref


def test_citation_cites_both_papers_as_the_papers_page_does():
    cff = yaml.safe_load((ROOT/'CITATION.cff').read_text())
    assert cff['cff-version'] == '1.2.0' and cff['license'] == 'Apache-2.0'
    refs = {r['identifiers'][0]['value']: r for r in cff['references']}
    assert set(refs) == {'arXiv:2505.21784', 'arXiv:2504.09420'}
    text = page_text()
    for r in refs.values():
        assert r['title'] in text and r['authors'][0]['family-names'] in text, r['title']
    assert refs['arXiv:2505.21784']['authors'][0]['family-names'] == 'Kumarage' and refs['arXiv:2504.09420']['authors'][0]['family-names'] == 'Mou'


def test_license_file_matches_settings():
    assert 'Apache License' in (ROOT/'LICENSE').read_text() and 'Version 2.0, January 2004' in (ROOT/'LICENSE').read_text()
    assert re.search(r'^license = apache2$', (ROOT/'settings.ini').read_text(), re.M)


def test_the_papers_page_is_in_the_sidebar():
    assert re.search(r'^\s+- papers\.ipynb$', (ROOT/'nbs'/'sidebar.yml').read_text(), re.M)

def test_no_file_cites_a_papers_file_the_repository_does_not_hold():
    "Issue 22: sources cited the shared folder's papers file, absent from a clone; they cite nbs/papers.ipynb now."
    name = 'PAPERS' + '.md'
    exts = {'.ipynb', '.py', '.j2', '.md', '.yaml', '.cff', '.txt'}
    bad = [str(p.relative_to(ROOT)) for d in ('nbs', 'aidsafe_nb', 'data', 'tests') for p in (ROOT/d).rglob('*')
           if p.suffix in exts and p.is_file() and name in p.read_text(errors='ignore')]
    bad += [f for f in ('README.md', 'CITATION.cff') if name in (ROOT/f).read_text()]
    assert not bad, bad
