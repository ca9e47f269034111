"The gates' fast paths (issue 23: per-template caches, exact pre-filters before difflib and the n-gram loop walk) decide exactly as the plain definitions do."
import difflib, json, random, re
from collections import Counter
from pathlib import Path
import aidsafe_nb.gates as G
from aidsafe_nb.policies import AIDSAFE_TEMPLATES, template_source, policies_text

# ---- the plain definitions (the gates before the fast paths), kept here as the reference ----
def _norm(t): return ' '.join(re.findall(r'[^\W_]+', str(t).lower()))

def _examples(tpl):
    body = G._COMMENT.sub(' ', tpl or '')
    return {n for s in G._JSON_STRING.findall(body) if '{{' not in s and '{%' not in s for n in [_norm(s)] if n}

def _prose(tpl):
    body = re.sub(r'\{\{.*?\}\}|\{%.*?%\}', ' | ', G._COMMENT.sub(' ', tpl or ''), flags=re.S)
    return ' | '.join(_norm(p) for p in G._JSON_STRING.sub(' | ', body).split('|'))

def _near_copy(n, e, p):
    if f' {e} ' in f' {n} ': return True
    if min(len(n.split()), len(e.split())) < p.fuzzy_words: return False
    a, b = (n, e[:len(n)]) if len(n) < len(e) else (n[:len(e)], e)
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() >= p.near_copy

def ref_placeholder(text, tpl='', p=G.GATE_PARAMS):
    n = _norm(text)
    if G._angle_placeholder(text): return True
    if not n: return str(text).strip() in G.PLACEHOLDERS
    if n in {_norm(x) for x in G.PLACEHOLDERS}: return True
    words, ex = len(n.split()), _examples(tpl)
    if n in ex and (words <= 2 or words >= p.min_copy_words): return True
    if words >= p.min_prose_words and f' {n} ' in f' {_prose(tpl)} ': return True
    return any(_near_copy(n, e, p) for e in ex if len(e.split()) >= p.min_copy_words)

def ref_copied(text, source, span=5):
    a, b = _norm(text).split(), _norm(source).split()
    if len(a) < span or len(b) < span: return 0
    grams = {tuple(b[i:i + span]) for i in range(len(b) - span + 1)}
    hit = [False] * len(a)
    for i in range(len(a) - span + 1):
        if tuple(a[i:i + span]) in grams: hit[i:i + span] = [True] * span
    return sum(hit)

def _loop(seq, n):
    if len(seq) < n or n < 1: return 0, 0.0, list(seq)
    grams = Counter(tuple(seq[i:i + n]) for i in range(len(seq) - n + 1))
    best, count, i, rest = grams.most_common(1)[0][0], 0, 0, []
    while i < len(seq):
        if i <= len(seq) - n and tuple(seq[i:i + n]) == best: count += 1; i += n
        else: rest.append(seq[i]); i += 1
    return count, count * n / len(seq), rest

def ref_loop(text, p=G.GATE_PARAMS):
    words = re.findall(r'[^\W_]+', text.lower())
    for n in range(1, 13):
        c, s, rest = _loop(words, n)
        if c >= p.min_repeats and s >= (p.short_share if n <= 2 else p.min_share) and len(set(rest)) < p.novel_share * len(words): return True
    chars = re.sub(r'\s+', '', text.lower())
    if len(chars) < 20: return False
    for k in range(2, 9):
        c, s, _ = _loop(list(chars), k)
        if c >= p.char_repeats and s >= p.char_share: return True
    return False

def ref_gate(text, tpl, pol, p=G.GATE_PARAMS):
    text = '' if text is None else str(text)
    t = text.strip().strip('."\'`*_ ').lower()
    if not text.strip() or t in G.EMPTY_MARKERS or _norm(t) in {_norm(m) for m in G.EMPTY_MARKERS}: return 'empty'
    if not G._has_word_char(text): return 'punctuation'
    if ref_placeholder(text, tpl, p): return 'placeholder'
    keys = set(G._JSON_KEY.findall(G._COMMENT.sub(' ', tpl or '')))
    s = text.strip()
    if any(re.search(rf'"{re.escape(k)}"\s*:', s) for k in keys): return 'fragment'
    if s[:1] in '{[' and '"' in s:
        try: json.loads(s)
        except ValueError: return 'fragment'
    if pol:
        c, n = ref_copied(text, pol, p.policy_span_words), len(_norm(text).split())
        if c >= p.policy_copy_words and c >= p.policy_copy_share * n: return 'policy_copy'
    if ref_loop(text, p): return 'repetition'
    return None

# ---- the corpus: the labelled gate set, the SmolLM2 fixtures, and constructed near-misses of every gate ----
def corpus():
    rnd = random.Random(0)
    pol = policies_text('aidsafe5')
    tpls = [''] + [template_source(n) for n in AIDSAFE_TEMPLATES]
    texts = [it['text'] for it in G.load_gate_set()]
    texts += [json.loads(l)['text'] for l in (Path(__file__).parent/'fixtures'/'smol_junk.jsonl').read_text().splitlines() if l.strip()]
    for tpl in tpls[1:]:
        for e in G._JSON_STRING.findall(tpl):          # example values with characters dropped (around the near-copy threshold), cut, extended
            for _ in range(4):
                s = list(e)
                for _ in range(rnd.randint(0, max(1, len(s) // 6))): s.pop(rnd.randrange(len(s)))
                texts += [''.join(s), e[:rnd.randint(1, len(e))] + ' and then some more words of an answer']
    words = pol.split()
    for _ in range(120):                                # policy spans of every length, and word loops with noise around them
        i = rnd.randrange(len(words)); texts.append(' '.join(words[i:i + rnd.randint(3, 60)]))
        w = rnd.sample(words, rnd.randint(1, 5)); texts.append(' '.join(w * rnd.randint(1, 7) + rnd.sample(words, rnd.randint(0, 25))))
        texts.append(''.join(rnd.choice('ab#-x ') for _ in range(rnd.randint(5, 60))))
    return list(dict.fromkeys(texts)), tpls, pol

def test_fast_gates_decide_as_the_plain_definitions():
    "Every text x every stage template: the same gate as the plain definitions (each gate and the placeholder and loop checks alone too)."
    texts, tpls, pol = corpus()
    assert len(texts) > 800
    seen, diff = Counter(), []
    for t in texts:
        for tpl in tpls:
            g, r = G.gate_text(t, template=tpl, policies=pol), ref_gate(t, tpl, pol)
            seen[r] += 1
            if g != r or G.is_placeholder(t, tpl) != ref_placeholder(t, tpl): diff.append((t[:60], tpl[:30], g, r))
        if G.is_loop(t) != ref_loop(t) or G.copied_words(t, pol) != ref_copied(t, pol): diff.append((t[:60], 'loop/copy'))
    assert not diff, diff[:5]
    assert all(seen[g] > 10 for g in ('empty', 'punctuation', 'placeholder', 'fragment', 'policy_copy', 'repetition', None)), seen   # every gate exercised

def test_loop_prefilter_keeps_ties_and_params():
    "Non-default thresholds (including ones that disable the early exits) decide as the plain definition does."
    texts, _, _ = corpus()
    for p in (G.GateParams(min_repeats=0), G.GateParams(min_repeats=2, min_share=0.2, short_share=0.3, novel_share=0.6), G.GateParams(char_repeats=1, char_share=0.0)):
        assert [G.is_loop(t, p) for t in texts[:400]] == [ref_loop(t, p) for t in texts[:400]]
