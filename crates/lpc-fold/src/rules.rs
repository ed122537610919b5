//! The rule-file format (`passes/<phase>/*.rules`): named rules with a `match` pattern, `where`
//! conditions, `let` bindings and a `rewrite` pattern. Errors carry file:line:col.
//! See `docs/rule-language.md`.

use crate::lang::{FNode, Head, HeadKind};
use crate::registry::{self, Cmp, CondSpec, HelperSpec};
use egg::{ENodeOrVar, Id, PatternAst, RecExpr, Var};
use std::collections::HashSet;
use std::fmt;

/// A position in a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    /// File name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A located error in a rule file.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{loc}: {msg}")]
pub struct RuleError {
    /// Where.
    pub loc: Loc,
    /// What is wrong.
    pub msg: String,
}

/// One `where` condition.
#[derive(Clone, Debug)]
pub struct Cond {
    /// The registry entry.
    pub spec: &'static CondSpec,
    /// Its variable arguments.
    pub vars: Vec<Var>,
    /// Comparison and right-hand words (dtype names or a number), if the condition takes one.
    pub cmp: Option<(Cmp, Vec<String>)>,
    /// Where it is written.
    pub loc: Loc,
}

/// A helper argument: a variable or a number.
#[derive(Clone, Debug)]
pub enum HArg {
    /// A bound variable.
    Var(Var),
    /// A number literal.
    Num(f64),
}

/// One `let ?v = helper(args)` binding.
#[derive(Clone, Debug)]
pub struct LetDef {
    /// The bound variable.
    pub var: Var,
    /// The registry entry.
    pub spec: &'static HelperSpec,
    /// Arguments.
    pub args: Vec<HArg>,
    /// Where it is written.
    pub loc: Loc,
}

/// One parsed rule.
#[derive(Clone, Debug)]
pub struct RuleDef {
    /// Unique name.
    pub name: String,
    /// Where `rule` is written.
    pub loc: Loc,
    /// The left-hand side.
    pub lhs: PatternAst<FNode>,
    /// The left-hand side as written.
    pub lhs_text: String,
    /// Conditions (all must hold).
    pub conds: Vec<Cond>,
    /// Computed bindings, in order.
    pub lets: Vec<LetDef>,
    /// The right-hand side.
    pub rhs: PatternAst<FNode>,
    /// The right-hand side as written.
    pub rhs_text: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Comma,
    Bar,
    Assign,
    Cmp(Cmp),
    Var(String),
    Word(String),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
    col: usize,
    text: String,
}

fn lex(file: &str, src: &str) -> Result<Vec<Token>, RuleError> {
    let mut out = vec![];
    for (li, line) in src.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let col = i + 1;
            let at = |tok: Tok, text: &str| Token {
                tok,
                line: li + 1,
                col,
                text: text.to_string(),
            };
            if c == '#' {
                break;
            }
            if c.is_whitespace() {
                i += 1;
                continue;
            }
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let t = match c {
                '(' => at(Tok::Open, "("),
                ')' => at(Tok::Close, ")"),
                ',' => at(Tok::Comma, ","),
                '|' => at(Tok::Bar, "|"),
                _ if two == "==" => at(Tok::Cmp(Cmp::Eq), "=="),
                _ if two == "!=" => at(Tok::Cmp(Cmp::Ne), "!="),
                _ if two == ">=" => at(Tok::Cmp(Cmp::Ge), ">="),
                _ if two == "<=" => at(Tok::Cmp(Cmp::Le), "<="),
                '=' => at(Tok::Assign, "="),
                _ => {
                    let word_char = |ch: char| {
                        ch.is_alphanumeric() || matches!(ch, '_' | '-' | '.' | '?' | '+')
                    };
                    if !word_char(c) {
                        return Err(RuleError {
                            loc: Loc {
                                file: file.into(),
                                line: li + 1,
                                col,
                            },
                            msg: format!("unexpected character '{c}'"),
                        });
                    }
                    let start = i;
                    while i < chars.len() && word_char(chars[i]) {
                        i += 1;
                    }
                    let w: String = chars[start..i].iter().collect();
                    let tok = if let Some(v) = w.strip_prefix('?') {
                        if v.is_empty() || !v.chars().all(|ch| ch.is_alphanumeric() || ch == '_') {
                            return Err(RuleError {
                                loc: Loc {
                                    file: file.into(),
                                    line: li + 1,
                                    col,
                                },
                                msg: format!("bad variable name '{w}'"),
                            });
                        }
                        Tok::Var(w.clone())
                    } else {
                        Tok::Word(w.clone())
                    };
                    out.push(Token {
                        tok,
                        line: li + 1,
                        col,
                        text: w,
                    });
                    continue;
                }
            };
            i += t.text.len();
            out.push(t);
        }
    }
    Ok(out)
}

/// The deepest nesting of `(op ...)` terms a pattern may have: far beyond any real rule, and
/// shallow enough that parsing and matching it cannot overflow the stack.
pub const MAX_PATTERN_DEPTH: usize = 256;

struct Parser<'a> {
    file: &'a str,
    toks: Vec<Token>,
    pos: usize,
}

impl Parser<'_> {
    fn loc_of(&self, t: &Token) -> Loc {
        Loc {
            file: self.file.into(),
            line: t.line,
            col: t.col,
        }
    }
    fn here(&self) -> Loc {
        match self.toks.get(self.pos).or(self.toks.last()) {
            Some(t) => self.loc_of(t),
            None => Loc {
                file: self.file.into(),
                line: 1,
                col: 1,
            },
        }
    }
    fn err<T>(&self, loc: Loc, msg: impl Into<String>) -> Result<T, RuleError> {
        Err(RuleError {
            loc,
            msg: msg.into(),
        })
    }
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Result<Token, RuleError> {
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.clone())
            }
            None => {
                let loc = self.here();
                self.err(loc, "unexpected end of file")
            }
        }
    }
    fn at_keyword(&self) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if matches!(w.as_str(), "rule" | "match" | "where" | "let" | "rewrite"))
    }

    /// One pattern term at nesting `depth` (1 for a whole pattern); appends to `ast`, records
    /// variables with their locations.
    fn pattern(
        &mut self,
        ast: &mut RecExpr<ENodeOrVar<FNode>>,
        vars: &mut Vec<(Var, Loc)>,
        text: &mut String,
        depth: usize,
    ) -> Result<Id, RuleError> {
        let t = self.next()?;
        let loc = self.loc_of(&t);
        match &t.tok {
            Tok::Var(v) => {
                text.push_str(v);
                let var: Var = v.parse().map_err(|_| RuleError {
                    loc: loc.clone(),
                    msg: format!("bad variable '{v}'"),
                })?;
                vars.push((var, loc));
                Ok(ast.add(ENodeOrVar::Var(var)))
            }
            Tok::Word(w) if w == "none" => {
                text.push_str("none");
                Ok(ast.add(ENodeOrVar::ENode(FNode {
                    head: Head::Absent,
                    children: vec![],
                })))
            }
            Tok::Word(w) => self.err(
                loc,
                format!("expected '(', a ?variable or none, found '{w}'"),
            ),
            Tok::Open if depth > MAX_PATTERN_DEPTH => self.err(
                loc,
                format!("pattern nested deeper than {MAX_PATTERN_DEPTH} levels"),
            ),
            Tok::Open => {
                let ht = self.next()?;
                let hloc = self.loc_of(&ht);
                let Tok::Word(name) = &ht.tok else {
                    return self.err(hloc, format!("expected an op name, found '{}'", ht.text));
                };
                let Some(head) = HeadKind::from_rule_name(name) else {
                    return self.err(hloc, format!("unknown op '{name}'"));
                };
                text.push('(');
                text.push_str(head.name());
                let mut children = vec![];
                loop {
                    match self.peek() {
                        Some(Token {
                            tok: Tok::Close, ..
                        }) => {
                            self.pos += 1;
                            break;
                        }
                        None => {
                            return self
                                .err(loc, "unbalanced parentheses: this '(' is never closed");
                        }
                        Some(_) if self.at_keyword() => {
                            return self
                                .err(loc, "unbalanced parentheses: this '(' is never closed");
                        }
                        Some(_) => {
                            text.push(' ');
                            children.push(self.pattern(ast, vars, text, depth + 1)?);
                        }
                    }
                }
                text.push(')');
                let attrs = usize::from(head.has_attrs());
                let (req, max) = head.arity();
                let n = children.len();
                let ok = match max {
                    Some(m) => n == m + attrs,
                    None => n > req + attrs.saturating_sub(1),
                };
                if !ok {
                    let want = match max {
                        Some(m) if attrs == 1 => format!("an attribute variable and {m} inputs"),
                        Some(m) => format!("{m} inputs"),
                        None => format!("at least {req} inputs after the attribute variable"),
                    };
                    return self.err(
                        hloc,
                        format!("'{head}' takes {want} (write none for an absent input), got {n}"),
                    );
                }
                Ok(ast.add(ENodeOrVar::ENode(FNode {
                    head: Head::Op {
                        kind: head,
                        nout: 1,
                    },
                    children,
                })))
            }
            Tok::Close => self.err(loc, "unbalanced parentheses: unexpected ')'"),
            _ => self.err(loc, format!("expected a pattern, found '{}'", t.text)),
        }
    }

    fn word(&mut self) -> Result<(String, Loc), RuleError> {
        let t = self.next()?;
        let loc = self.loc_of(&t);
        match t.tok {
            Tok::Word(w) => Ok((w, loc)),
            _ => self.err(loc, format!("expected a name, found '{}'", t.text)),
        }
    }

    fn var(&mut self) -> Result<(Var, Loc), RuleError> {
        let t = self.next()?;
        let loc = self.loc_of(&t);
        match &t.tok {
            Tok::Var(v) => Ok((
                v.parse().map_err(|_| RuleError {
                    loc: loc.clone(),
                    msg: format!("bad variable '{v}'"),
                })?,
                loc,
            )),
            _ => self.err(loc, format!("expected a ?variable, found '{}'", t.text)),
        }
    }

    fn cond(&mut self) -> Result<Cond, RuleError> {
        let (name, loc) = self.word()?;
        let Some(spec) = registry::condition(&name) else {
            return self.err(
                loc,
                format!(
                    "unknown condition '{name}' (known: {})",
                    registry::condition_names().join(", ")
                ),
            );
        };
        let mut vars = vec![];
        for _ in 0..spec.vars {
            vars.push(self.var()?.0);
        }
        let cmp = if spec.compares {
            let t = self.next()?;
            let tl = self.loc_of(&t);
            let Tok::Cmp(c) = t.tok else {
                return self.err(tl, format!("'{name}' needs a comparison (==, !=, >=, <=)"));
            };
            let mut words = vec![self.word()?.0];
            while matches!(self.peek(), Some(Token { tok: Tok::Bar, .. })) {
                self.pos += 1;
                words.push(self.word()?.0);
            }
            (spec.check_words)(&words).map_err(|m| RuleError {
                loc: tl.clone(),
                msg: m,
            })?;
            Some((c, words))
        } else {
            None
        };
        Ok(Cond {
            spec,
            vars,
            cmp,
            loc,
        })
    }

    fn let_def(&mut self) -> Result<(LetDef, Vec<(Var, Loc)>), RuleError> {
        let (var, _) = self.var()?;
        let t = self.next()?;
        if t.tok != Tok::Assign {
            let l = self.loc_of(&t);
            return self.err(l, "expected '=' after the let variable");
        }
        let (name, loc) = self.word()?;
        let Some(spec) = registry::helper(&name) else {
            return self.err(
                loc,
                format!(
                    "unknown helper '{name}' (known: {})",
                    registry::helper_names().join(", ")
                ),
            );
        };
        let t = self.next()?;
        if t.tok != Tok::Open {
            let l = self.loc_of(&t);
            return self.err(l, format!("expected '(' after helper '{name}'"));
        }
        let mut args = vec![];
        let mut used = vec![];
        loop {
            let t = self.next()?;
            let l = self.loc_of(&t);
            match &t.tok {
                Tok::Close => break,
                Tok::Comma => continue,
                Tok::Var(v) => {
                    let var: Var = v.parse().map_err(|_| RuleError {
                        loc: l.clone(),
                        msg: format!("bad variable '{v}'"),
                    })?;
                    used.push((var, l));
                    args.push(HArg::Var(var));
                }
                Tok::Word(w) => match w.parse::<f64>() {
                    Ok(x) => args.push(HArg::Num(x)),
                    Err(_) => {
                        return self.err(
                            l,
                            format!("helper arguments are ?variables or numbers, found '{w}'"),
                        )
                    }
                },
                _ => return self.err(l, format!("unexpected '{}' in helper arguments", t.text)),
            }
        }
        if args.len() != spec.args {
            return self.err(
                loc,
                format!(
                    "helper '{name}' takes {} arguments, got {}",
                    spec.args,
                    args.len()
                ),
            );
        }
        Ok((
            LetDef {
                var,
                spec,
                args,
                loc,
            },
            used,
        ))
    }

    fn rule(&mut self) -> Result<RuleDef, RuleError> {
        let (kw, loc) = self.word()?;
        if kw != "rule" {
            return self.err(loc, format!("expected 'rule', found '{kw}'"));
        }
        let (name, loc) = self.word()?;
        let mut lhs = None;
        let mut rhs = None;
        let mut conds = vec![];
        let mut lets = vec![];
        let mut bound: HashSet<Var> = HashSet::new();
        let mut uses: Vec<(Var, Loc)> = vec![];
        while self.pos < self.toks.len() {
            let t = self.peek().cloned().expect("in range");
            let tl = self.loc_of(&t);
            let Tok::Word(w) = &t.tok else {
                return self.err(
                    tl,
                    format!("expected match, where, let or rewrite, found '{}'", t.text),
                );
            };
            match w.as_str() {
                "rule" => break,
                "match" => {
                    self.pos += 1;
                    if lhs.is_some() {
                        return self.err(tl, "a rule has one match");
                    }
                    let (mut ast, mut vars, mut text) = (RecExpr::default(), vec![], String::new());
                    self.pattern(&mut ast, &mut vars, &mut text, 1)?;
                    if matches!(ast.as_ref().last(), Some(ENodeOrVar::Var(_))) {
                        return self
                            .err(tl, "the match pattern must be an op, not a bare variable");
                    }
                    bound.extend(vars.iter().map(|(v, _)| *v));
                    lhs = Some((ast, text));
                }
                "where" => {
                    self.pos += 1;
                    loop {
                        let c = self.cond()?;
                        uses.extend(c.vars.iter().map(|v| (*v, c.loc.clone())));
                        conds.push(c);
                        if matches!(
                            self.peek(),
                            Some(Token {
                                tok: Tok::Comma,
                                ..
                            })
                        ) {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                "let" => {
                    self.pos += 1;
                    let (l, used) = self.let_def()?;
                    for (v, vl) in used {
                        if !bound.contains(&v) {
                            return self.err(vl, format!("unbound variable {v}"));
                        }
                    }
                    bound.insert(l.var);
                    lets.push(l);
                }
                "rewrite" => {
                    self.pos += 1;
                    if rhs.is_some() {
                        return self.err(tl, "a rule has one rewrite");
                    }
                    let (mut ast, mut vars, mut text) = (RecExpr::default(), vec![], String::new());
                    self.pattern(&mut ast, &mut vars, &mut text, 1)?;
                    uses.extend(vars);
                    rhs = Some((ast, text));
                }
                other => {
                    return self.err(
                        tl,
                        format!("expected match, where, let or rewrite, found '{other}'"),
                    )
                }
            }
        }
        let Some((lhs, lhs_text)) = lhs else {
            return self.err(loc, format!("rule '{name}' has no match"));
        };
        let Some((rhs, rhs_text)) = rhs else {
            return self.err(loc, format!("rule '{name}' has no rewrite"));
        };
        for (v, vl) in uses {
            if !bound.contains(&v) {
                return self.err(vl, format!("unbound variable {v}"));
            }
        }
        Ok(RuleDef {
            name,
            loc,
            lhs,
            lhs_text,
            conds,
            lets,
            rhs,
            rhs_text,
        })
    }
}

/// Parses one rule file. `file` names it in errors.
pub fn parse_rules(file: &str, src: &str) -> Result<Vec<RuleDef>, RuleError> {
    let toks = lex(file, src)?;
    let mut p = Parser { file, toks, pos: 0 };
    let mut rules: Vec<RuleDef> = vec![];
    while p.pos < p.toks.len() {
        let r = p.rule()?;
        if let Some(prev) = rules.iter().find(|q| q.name == r.name) {
            return Err(RuleError {
                loc: r.loc.clone(),
                msg: format!("duplicate rule name '{}' (first at {})", r.name, prev.loc),
            });
        }
        rules.push(r);
    }
    Ok(rules)
}

/// Checks that rule names are unique across several files.
pub fn check_unique(rules: &[RuleDef]) -> Result<(), RuleError> {
    for (i, r) in rules.iter().enumerate() {
        if let Some(prev) = rules[..i].iter().find(|q| q.name == r.name) {
            return Err(RuleError {
                loc: r.loc.clone(),
                msg: format!("duplicate rule name '{}' (first at {})", r.name, prev.loc),
            });
        }
    }
    Ok(())
}
