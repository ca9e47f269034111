"""Issue 22 / 20, the report's figures and tables (fast, no model):
- every figure carries the run's caveats in the image (random weights, judges that failed validation);
- a figure with nothing to show says `nothing to plot: <reason>` instead of drawing empty axes;
- no overprinted labels (x tick labels and facet titles of the XSTest figure do not overlap);
- report.md lists the training rows of every system and the per-stage cut rates (with a warning above the limit);
- SaRO's token overhead is measured against the conventional systems (SFT_OG, Base), not against SFT_DB."""
import json
from pathlib import Path
import numpy as np, pandas as pd, pytest
import matplotlib; matplotlib.use('Agg')
import matplotlib.figure, matplotlib.text

from aidsafe_nb.config import RunConfig
from aidsafe_nb.run import RunDir
from aidsafe_nb.evaluate import RESULT_COLUMNS, COT_METRICS
from aidsafe_nb.report import make_figures, plot_xstest, plot_tradeoff, render_report, read_extras, token_table, ReportSetup

SYSTEMS = ['Base', 'SFT_OG', 'SFT_DB', 'DPO', 'DPO_BASELINE', 'RW', 'SaRO']


def tiny_results(cot_values=np.nan) -> pd.DataFrame:
    "A tiny run's results: the LLM refusal judge failed validation, the CoT grades are unreadable."
    rows = []
    for k, s in enumerate(SYSTEMS):
        for b, m, j, role, v in [('strongreject_jb', 'safe_rate', 'llm:tiny', 'safety', 40 + 5 * k),
                                 ('xstest', 'safe_full_compliance', 'RefusalJudge(tiny)', 'refusal', 50.0), ('xstest', 'safe_full_refusal', 'RefusalJudge(tiny)', 'refusal', 30.0),
                                 ('xstest', 'safe_full_compliance', 'strmatch', 'strmatch', 60.0), ('xstest', 'unsafe_full_refusal', 'strmatch', 'strmatch', 70.0),
                                 ('mmlu', 'accuracy', 'loglik', 'loglik', 25.0 + k)]:
            rows.append(dict(model='tiny', system=s, benchmark=b, metric=m, value=v, n=8, judge=j, ci_low=v - 5, ci_high=v + 5,
                             judge_role=role, judge_valid=role != 'refusal'))
    rows += [dict(model='tiny', system=s, benchmark='cot_quality', metric=m, value=cot_values, n=0, judge='cot', judge_role='cot_quality', judge_valid=True)
             for s in ('LLM_ZS', 'AIDSAFE') for m in COT_METRICS]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


@pytest.fixture
def saved(monkeypatch):
    "Every text drawn on each figure at the moment it is saved: {file name: [texts]}; and where its labels sit: {file name: (tick boxes per axes, title boxes)}."
    out, boxes, orig = {}, {}, matplotlib.figure.Figure.savefig
    def savefig(self, fname, *a, **kw):
        texts = [t.get_text() for t in self.texts] + [t.get_text() for ax in self.axes for t in ax.texts + [ax.title]]
        name = Path(fname).name.removeprefix('.').replace('.tmp', '')
        self.canvas.draw(); r = self.canvas.get_renderer()
        boxes[name] = ([[t.get_window_extent(r) for t in ax.get_xticklabels() if t.get_text()] for ax in self.axes],
                       [ax.title.get_window_extent(r) for ax in self.axes if ax.get_title()],
                       [matplotlib.text.Text.get_window_extent(t, r) for ax in self.axes for t in ax.texts if t.get_text() in SYSTEMS])   # the text, not its arrow
        out[name] = texts
        return orig(self, fname, *a, **kw)
    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', savefig)
    return out, boxes


def test_every_figure_carries_the_caveats_in_the_image(saved, tmp_path):
    texts, _ = saved
    figs = make_figures(tiny_results(), tmp_path)
    assert sorted(figs) == ['benchmarks', 'cot_quality', 'tradeoff', 'xstest']
    for name in ('benchmarks.png', 'tradeoff.png', 'xstest.png', 'cot_quality.png'):
        t = ' '.join(texts[name])
        assert 'RANDOM WEIGHTS' in t, name
        assert 'INVALID judges' in t and 'RefusalJudge(tiny)' in t, name
    assert any('RefusalJudge(tiny) (INVALID judge)' in x for x in texts['xstest.png'])   # the invalid judge's own panels are marked


def test_empty_plot_says_nothing_to_plot(saved, tmp_path):
    texts, _ = saved
    make_figures(tiny_results(), tmp_path)
    assert any(x.startswith('nothing to plot: every grade was unreadable') for x in texts['cot_quality.png'])
    make_figures(tiny_results().iloc[:0], tmp_path/'empty')
    assert any(x.startswith('nothing to plot: no headline metric') for x in texts['benchmarks.png'])
    assert any(x.startswith('nothing to plot: no CoT was graded') for x in texts['cot_quality.png'])


def _overlaps(boxes) -> list:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


def test_xstest_labels_do_not_overprint(saved, tmp_path):
    _, boxes = saved
    plot_xstest(tiny_results(), tmp_path/'xstest.png')
    ticks, titles, _ = boxes['xstest.png']
    assert sum(map(len, ticks)) >= 7 and not any(_overlaps(t) for t in ticks)   # seven systems, no two tick labels overlap
    assert len(titles) == 4 and not _overlaps(titles)


def _run(tmp_path) -> RunDir:
    rd = RunDir(tmp_path/'run').create()
    for name, info, ids in (('sft_db', dict(n_train_rows=6, n_eval_rows=1, gates=dict(n=10, n_passed=6, pass_rate=0.6), data_source='generated'), range(6)),
                            ('sft_og', dict(n_train_rows=10, n_eval_rows=1, data_source='generated'), range(10))):
        (rd.models/name).mkdir(parents=True)
        (rd.models/name/'train_info.json').write_text(json.dumps(info))
        (rd.models/name/'data_report.json').write_text(json.dumps(dict(train_ids=[f'p{i}' for i in ids])))
    (rd.models/'skipped.json').write_text(json.dumps([dict(model='dpo', reason='no belief pairs')]))
    (Path(rd.data)/'cot.gates.json').write_text(json.dumps(dict(set='cot', stages={
        'initial_cot': dict(n=12, passed=2, pass_rate=2 / 12, cut_rate=10 / 12, cut_rate_by_kind={'safety': 4 / 6, 'general': 1.0}),
        'intents': dict(n=12, passed=12, pass_rate=1.0, cut_rate=0.0, cut_rate_by_kind={'safety': 0.0, 'general': 0.0})})))
    return rd


def test_report_lists_train_rows_and_cut_rates(tmp_path):
    rd = _run(tmp_path)
    md = render_report(tiny_results(), ReportSetup.of(RunConfig()), extras=read_extras(rd))
    assert '## Training data per system' in md
    assert '| SFT_OG | 10 | 1 | – | generated | 6/10 |' in md and '| SFT_DB | 6 | 1 | 6/10 passed | generated | – |' in md
    assert '| DPO | – | – | – | not trained: no belief pairs | – |' in md
    assert '## Answers cut at the token budget' in md and '| cot | initial_cot | 12 | 83.3 | 100.0 | 66.7 | 10.0 |' in md
    assert md.count('**warning:** `cot` stage') == 1 and 'stage `initial_cot` cut 83.3%' in md


def test_token_overhead_is_against_conventional_systems():
    r = pd.DataFrame([dict(model='m', system=s, benchmark=b, metric='completion_tokens', value=v, n=8, judge='generation')
                      for s, b, v in (('SFT_OG', 'xstest', 30.0), ('SFT_DB', 'xstest', 40.0), ('SaRO', 'xstest', 60.0), ('Base', 'xstest', 20.0))])
    t = token_table(r)
    assert 'overhead vs SFT_DB (%)' not in t.index                  # SFT_DB reasons too
    assert t.loc['overhead vs SFT_OG (%)', 'SaRO'] == pytest.approx(100.0) and t.loc['overhead vs Base (%)', 'SaRO'] == pytest.approx(200.0)


def test_tradeoff_labels_do_not_overprint(saved, tmp_path):
    "Seven systems within a few points of each other (a real run's usual picture): every label stays readable."
    _, boxes = saved
    r = tiny_results().assign(judge_valid=True)
    sr = r.metric == 'safe_rate'
    r.loc[sr, 'value'] = [50.0 + k for k in range(sr.sum())]   # one point apart on the y axis, same x
    plot_tradeoff(r, tmp_path/'tradeoff.png')
    labels = boxes['tradeoff.png'][2]
    assert len(labels) == 7 and not _overlaps(labels)
