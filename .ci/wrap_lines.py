"""Wrap notebook lines over 120 characters without changing what the code does (issue 21).
usage: python .ci/wrap_lines.py NOTEBOOK ...   (then `nbdev_clean && nbdev_export`)
Markdown: a paragraph or list item with a line over 120 is re-flowed (tables, headings, fences and the title cell's
`> description`, which nbdev reads as one line, are left). Code: a trailing comment moves above its line (never a
docment: a parameter's or a dataclass field's comment stays); a one-line docstring becomes a wrapped triple-quoted one;
a long line breaks after a comma inside brackets (outermost first, visual indent) or between two pieces of a string
literal. A changed cell must parse to the same AST (docstrings compared with whitespace collapsed), else its remaining
changes are dropped. What it cannot wrap (docment lines, tables, long expressions) is left for a person."""
import ast, io, json, re, sys, tokenize

W = 120
BAD_START = re.compile(r'^([-*+#>|=]|\d+[.)])')

def wrap_words(words, first, rest, width=W):
    "Greedy wrap; a continuation line never starts with a token markdown would read as a block start."
    lines, cur, empty = [], first, True
    for w in words:
        if empty: cur, empty = cur + w, False; continue
        cand = cur + ' ' + w
        if len(cand) <= width: cur = cand; continue
        if BAD_START.match(w):                                # move the previous word down with it, or stay long
            head, sep, prev = cur.rpartition(' ')
            if sep and head.strip() and len(head) > len(rest if lines else first):
                lines.append(head); cur = rest + prev + ' ' + w; continue
            cur = cand; continue
        lines.append(cur); cur = rest + w
    lines.append(cur)
    return lines

def _unit_start(line):
    return re.match(r'^(\s*(?:>\s*)*)((?:[-*+]|\d+[.)])\s+)?', line)

def _plain(line):
    s = line.strip().lstrip('>').strip()
    return bool(s) and not s.startswith(('|', '#', '<', '```'))

def wrap_md(src: str) -> str:
    lines, out, fence, i = src.split('\n'), [], False, 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith('```'): fence = not fence
        if fence or not _plain(line): out.append(line); i += 1; continue
        m = _unit_start(line); lead, marker = m.group(1), m.group(2) or ''
        j = i + 1                                   # the unit: this line and its continuation lines
        while j < len(lines) and _plain(lines[j]) and not _unit_start(lines[j]).group(2) \
              and _unit_start(lines[j]).group(1).strip() == lead.strip(): j += 1
        unit = lines[i:j]
        if all(len(l) <= W for l in unit): out.extend(unit); i = j; continue
        words = [w for w in line[m.end():].split(' ') if w]
        for l in unit[1:]: words += [w for w in l[_unit_start(l).end():].split(' ') if w]
        out.extend(wrap_words(words, lead + marker, lead + ' ' * len(marker)))
        i = j
    return '\n'.join(out)

def _norm(tree):
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and n.body:
            b = n.body[0]
            if isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str):
                b.value.value = ' '.join(b.value.value.split())
    return ast.dump(tree)

def _tokens(src):
    return list(tokenize.generate_tokens(io.StringIO(src).readline))

def _docment_lines(tree) -> set:
    ls = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = n.args
            for x in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
                if x is not None: ls.add(x.lineno)
            ls.add(n.lineno)
        if isinstance(n, ast.ClassDef):
            for b in n.body:
                if isinstance(b, (ast.AnnAssign, ast.Assign)): ls.add(b.lineno)
    return ls

def _docstring_lines(tree) -> dict:
    d = {}
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body:
            b = n.body[0]
            if isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str) \
               and b.lineno == b.end_lineno: d[b.lineno] = b
    return d

def fix_one(src: str):
    "One change to the first fixable long line of `src`, or None."
    tree = ast.parse(src)
    lines = src.split('\n')
    toks = _tokens(src)
    docm, docs = _docment_lines(tree), _docstring_lines(tree)
    in_string = set()
    for t in toks:
        if t.type == tokenize.STRING and t.end[0] > t.start[0]: in_string.update(range(t.start[0] + 1, t.end[0] + 1))
    depth, opens, info = 0, [], {}       # per line: [(token, bracket depth after it, innermost open bracket)]
    for t in toks:
        if t.type == tokenize.OP and t.string in '([{':
            opens.append(t.start); depth += 1
        elif t.type == tokenize.OP and t.string in ')]}':
            opens.pop(); depth -= 1
        info.setdefault(t.start[0], []).append((t, depth, opens[-1] if opens else None))
    for i, line in enumerate(lines, 1):
        if len(line) <= W or i in in_string or i in docm or line.lstrip().startswith('#|'): continue
        ts = info.get(i, [])
        ind = re.match(r'\s*', line).group()
        # docstring
        if i in docs:
            b = docs[i]; s = line[b.col_offset:]
            m = re.match(r'^([rRuU]?)(["\'])(.*)\2$', s)
            if m and '"""' not in m.group(3) and not m.group(3).endswith('\\') and not m.group(3).endswith('"'):
                words = [w for w in m.group(3).split(" ") if w]
                body = wrap_words(words, ind + m.group(1) + '"""', ind, W - 3)
                body[-1] += '"""'
                if m.group(2) == "'": body = [l.replace("\\'", "'") for l in body]
                return '\n'.join(lines[:i-1] + body + lines[i:])
        # trailing comment (not a docment)
        com = [t for t, d, o in ts if t.type == tokenize.COMMENT]
        if com and i not in docm:
            c = com[0]; code = line[:c.start[1]].rstrip()
            if code.strip() and len(code) <= W:
                text = c.string.lstrip('#').strip()
                cl = wrap_words(text.split(' '), ind + '# ', ind + '# ')
                return '\n'.join(lines[:i-1] + cl + [code] + lines[i:])
        cands = []                                   # (bracket depth, col of the break, new lines)
        for k, (t, d, o) in enumerate(ts):
            if not (t.type == tokenize.OP and t.string == ',' and d >= 1 and o): continue
            if not len(ind) + 8 < t.end[1] <= W: continue
            rest = line[t.end[1]:].lstrip()
            if not rest or rest.startswith('#'): continue
            close = next((u for u, dd, _ in ts[k:] if u.type == tokenize.OP and u.string in ')]}' and dd == d - 1),
                         None)
            if close and line[close.end[1]:].split('#')[0].strip(' )]},:'): continue   # an inner call: break outside it
            if o[1] + 1 >= W - 40: continue                                  # only visual indents
            if line[o[1]] == '[' and o[0] == i and o[1] and (line[o[1] - 1].isalnum() or line[o[1] - 1] in ')]_'):
                continue                                                     # a subscript
            cands.append((d, t.end[1], [line[:t.end[1]].rstrip(), ' ' * (o[1] + 1) + rest]))
        for t, d, o in ts:
            if t.type != tokenize.STRING or d < 1 or t.end[1] <= W or t.start[1] > W - 15: continue
            m = re.match(r'^([rRuUfFbB]{0,2})(["\'])', t.string)
            if not m or t.string.startswith(m.group(1) + m.group(2) * 3): continue
            pre, q = m.group(1), m.group(2)
            body = t.string[len(pre) + 1:-1]
            f = 'f' in pre.lower(); br = 0; cut = None
            for k, ch in enumerate(body):
                if f and ch == '{': br += 1
                if f and ch == '}': br -= 1
                col = t.start[1] + len(pre) + 1 + k
                if ch == ' ' and br == 0 and col < W - 2 and (k == 0 or body[k-1] != '\\'): cut = k
            if cut is None or cut < 10: continue
            a, b = body[:cut + 1], body[cut + 1:]
            if t.start[1] >= W - 40: continue
            cont_ind = t.start[1]
            pa = pre if not f or any(ch in a for ch in '{}') else pre.replace('f', '').replace('F', '')
            pb = pre if not f or any(ch in b for ch in '{}') else pre.replace('f', '').replace('F', '')
            cands.append((d, t.start[1] + len(pre) + 2 + cut,
                          [line[:t.start[1]] + pa + q + a + q, ' ' * cont_ind + pb + q + b + q + line[t.end[1]:]]))
        if cands:
            d, col, new = min(cands, key=lambda x: (x[1] < 70, x[0], -x[1]))   # outermost brackets first, then longest
            return '\n'.join(lines[:i-1] + new + lines[i:])
    return None

def wrap_code(src: str) -> str:
    if any(l.lstrip().startswith(('%', '!')) for l in src.split('\n')): return src
    try: before = _norm(ast.parse(src))
    except SyntaxError: return src
    cur = src
    for _ in range(200):
        try: new = fix_one(cur)
        except (SyntaxError, tokenize.TokenError, IndentationError): break
        if new is None: break
        try: ok = _norm(ast.parse(new)) == before
        except SyntaxError: ok = False
        if not ok:
            print('  (a change would alter the code; cell left from here)', file=sys.stderr); break
        cur = new
    return cur

if __name__ == '__main__':
    if not sys.argv[1:] or sys.argv[1].startswith('-'): sys.exit(__doc__)
    for p in sys.argv[1:]:
        nb = json.load(open(p))
        first_md = next((c for c in nb['cells'] if c['cell_type'] == 'markdown'), None)
        for c in nb['cells']:
            if c is first_md: continue       # the title and `> description`: nbdev reads the description's first line
            s = ''.join(c['source'])
            n = wrap_md(s) if c['cell_type'] == 'markdown' else wrap_code(s) if c['cell_type'] == 'code' else s
            if n != s: c['source'] = n.splitlines(keepends=True)
        open(p, 'w').write(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
