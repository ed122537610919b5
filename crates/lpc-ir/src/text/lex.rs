//! The `.lir` lexer: text to tokens with line and column.

use super::parse::ParseError;

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// `%name` or `%"quoted name"`.
    Value(String),
    /// `@name` or `@"quoted name"`.
    At(String),
    /// A word: `[A-Za-z_][A-Za-z0-9_]*`.
    Ident(String),
    /// A number as written (`-1.25`, `1e-7`, `300`, `-inf`).
    Num(String),
    /// A quoted string outside a name (a symbolic dimension).
    Str(String),
    /// `sha256:<hex>`.
    Digest(String),
    /// `nan:0x<hex>`: a NaN by its bits.
    NanBits(u64),
    /// One of `( ) { } [ ] , = : ? *`.
    Punct(char),
    /// `->`.
    Arrow,
    /// End of input.
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Value(s) => format!("`%{}`", super::print::name(s)),
            Tok::At(s) => format!("`@{}`", super::print::name(s)),
            Tok::Ident(s) | Tok::Num(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string {}", super::print::quote(s)),
            Tok::Digest(d) => format!("`sha256:{d}`"),
            Tok::NanBits(b) => format!("`nan:0x{b:x}`"),
            Tok::Punct(c) => format!("`{c}`"),
            Tok::Arrow => "`->`".into(),
            Tok::Eof => "end of input".into(),
        }
    }
}

/// A token and where it starts (1-based line and column, in characters).
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    col: usize,
}

impl Lexer<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err(&self, line: usize, col: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            line,
            col,
            message: msg.into(),
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            s.push(c);
            self.bump();
        }
        s
    }

    /// A quoted string; the opening quote is next.
    fn string(&mut self) -> Result<String, ParseError> {
        let (line, col) = (self.line, self.col);
        self.bump();
        let mut s = String::new();
        loop {
            let (l, c) = (self.line, self.col);
            match self.bump() {
                None | Some('\n') => {
                    return Err(self.err(line, col, "unterminated string (a `\"` is missing)"))
                }
                Some('"') => return Ok(s),
                Some('\\') => {
                    match self.bump() {
                        Some('\\') => s.push('\\'),
                        Some('"') => s.push('"'),
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('r') => s.push('\r'),
                        Some('u') => {
                            if self.bump() != Some('{') {
                                return Err(self.err(
                                    l,
                                    c,
                                    "expected `{` after `\\u` (escape as `\\u{41}`)",
                                ));
                            }
                            let h = self.take_while(|c| c.is_ascii_hexdigit());
                            if self.bump() != Some('}') {
                                return Err(self.err(
                                    l,
                                    c,
                                    "expected hex digits and `}` in a `\\u{..}` escape",
                                ));
                            }
                            let ch = u32::from_str_radix(&h, 16).ok().and_then(char::from_u32);
                            match ch {
                                Some(ch) => s.push(ch),
                                None => {
                                    return Err(self.err(
                                        l,
                                        c,
                                        format!("`\\u{{{h}}}` is not a Unicode scalar value"),
                                    ))
                                }
                            }
                        }
                        _ => return Err(self.err(
                            l,
                            c,
                            "unknown escape in string (use \\\\, \\\", \\n, \\t, \\r or \\u{..})",
                        )),
                    }
                }
                Some(ch) => s.push(ch),
            }
        }
    }

    /// The name after a `%` or `@` sigil.
    fn name(&mut self, sigil: char, line: usize, col: usize) -> Result<String, ParseError> {
        if self.peek() == Some('"') {
            return self.string();
        }
        let s = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if s.is_empty() {
            return Err(self.err(
                line,
                col,
                format!("expected a name after `{sigil}` (quote other names: {sigil}\"a/b\")"),
            ));
        }
        Ok(s)
    }
}

fn is_num_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '_'
}

/// Splits `text` into tokens, ending with `Eof`.
pub(crate) fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut lx = Lexer {
        chars: text.chars().peekable(),
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    loop {
        let (line, col) = (lx.line, lx.col);
        let Some(c) = lx.peek() else {
            out.push(Token {
                tok: Tok::Eof,
                line,
                col,
            });
            return Ok(out);
        };
        let tok = match c {
            c if c.is_whitespace() => {
                lx.bump();
                continue;
            }
            '#' => {
                lx.take_while(|c| c != '\n');
                continue;
            }
            '%' | '@' => {
                lx.bump();
                let s = lx.name(c, line, col)?;
                if c == '%' {
                    Tok::Value(s)
                } else {
                    Tok::At(s)
                }
            }
            '"' => Tok::Str(lx.string()?),
            '-' | '+' | '0'..='9' | '.' => {
                lx.bump();
                if c == '-' && lx.peek() == Some('>') {
                    lx.bump();
                    Tok::Arrow
                } else {
                    let mut s = String::from(c);
                    // Digits, letters (exponents, inf, nan), dots; a sign only after an exponent.
                    loop {
                        match lx.peek() {
                            Some(d) if is_num_char(d) => s.push(d),
                            Some(d @ ('+' | '-')) if s.ends_with(['e', 'E']) => s.push(d),
                            _ => break,
                        }
                        lx.bump();
                    }
                    Tok::Num(s)
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let s = lx.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
                if (s == "sha256" || s == "nan") && lx.peek() == Some(':') {
                    lx.bump();
                    if s == "sha256" {
                        Tok::Digest(lx.take_while(|c| c.is_ascii_alphanumeric()))
                    } else {
                        let h = lx.take_while(|c| c.is_ascii_alphanumeric());
                        match h
                            .strip_prefix("0x")
                            .and_then(|h| u64::from_str_radix(h, 16).ok())
                        {
                            Some(b) => Tok::NanBits(b),
                            None => {
                                return Err(lx.err(
                                    line,
                                    col,
                                    "expected hex bits after `nan:` (as in `nan:0x7fc00001`)",
                                ))
                            }
                        }
                    }
                } else {
                    Tok::Ident(s)
                }
            }
            '(' | ')' | '{' | '}' | '[' | ']' | ',' | '=' | ':' | '?' | '*' => {
                lx.bump();
                Tok::Punct(c)
            }
            other => {
                return Err(lx.err(line, col, format!("unexpected character {other:?}")));
            }
        };
        out.push(Token { tok, line, col });
    }
}
