//! Cutting template source into text and actions.
//!
//! Trim markers (`{{- ` and ` -}}`) and comments are dealt with here, so the
//! parser only ever sees finished text and the tokens of each action.

use super::PosError;

/// A run of literal text, or one `{{ ... }}` action.
pub(super) enum Piece<'a> {
    Text(&'a str),
    Action { pos: usize, tokens: Vec<Token> },
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    /// Byte offset in the source.
    pub pos: usize,
    /// Whether whitespace (or the opening delimiter) comes right before it;
    /// `.A.B` is a field chain, `.A .B` two arguments.
    pub spaced: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// Function names, keywords, `true`, `false`, `nil`.
    Ident(String),
    /// `.Name`
    Field(String),
    /// `$` or `$name`, kept with its `$`.
    Var(String),
    Dot,
    /// A quoted or raw string, already unquoted.
    Str(String),
    /// The source text of a number; the parser decides int or float.
    Number(String),
    /// A character constant such as `'a'`.
    Char(char),
    Declare,
    Assign,
    Pipe,
    LParen,
    RParen,
    Comma,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Field(s) | Tok::Var(s) | Tok::Number(s) => s.clone(),
            Tok::Dot => ".".into(),
            Tok::Str(s) => format!("{s:?}"),
            Tok::Char(c) => format!("{c:?}"),
            Tok::Declare => ":=".into(),
            Tok::Assign => "=".into(),
            Tok::Pipe => "|".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
        }
    }
}

/// Go trims exactly these around trim markers.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

pub(super) fn lex(src: &str) -> Result<Vec<Piece<'_>>, PosError> {
    let mut pieces = Vec::new();
    let mut pos = 0;
    let mut trim_next = false;
    loop {
        let open = src[pos..].find("{{").map(|o| pos + o);
        let mut text = &src[pos..open.unwrap_or(src.len())];
        if trim_next {
            text = text.trim_start_matches(is_space);
        }
        let Some(open) = open else {
            if !text.is_empty() {
                pieces.push(Piece::Text(text));
            }
            return Ok(pieces);
        };
        let mut p = open + 2;
        if src[p..].starts_with('-') && src[p + 1..].starts_with(is_space) {
            text = text.trim_end_matches(is_space);
            p += 2;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        if src[p..].starts_with("/*") {
            let Some(close) = src[p + 2..].find("*/") else {
                return Err(PosError::new(open, "unclosed comment"));
            };
            let after = p + 2 + close + 2;
            let Some((end, trim)) = right_delim(src, after) else {
                return Err(PosError::new(open, "comment ends before closing delimiter"));
            };
            (pos, trim_next) = (end, trim);
            continue;
        }
        let (tokens, end, trim) = Action::new(src, open, p).run()?;
        pieces.push(Piece::Action { pos: open, tokens });
        (pos, trim_next) = (end, trim);
    }
}

/// If `}}` or ` -}}` starts at `p`: where it ends and whether it trims.
fn right_delim(src: &str, p: usize) -> Option<(usize, bool)> {
    let rest = &src[p..];
    if rest.starts_with("}}") {
        Some((p + 2, false))
    } else if rest.starts_with(is_space) && rest[1..].starts_with("-}}") {
        Some((p + 4, true))
    } else {
        None
    }
}

/// Lexer state inside one action.
struct Action<'a> {
    src: &'a str,
    open: usize,
    pos: usize,
    tokens: Vec<Token>,
}

impl<'a> Action<'a> {
    fn new(src: &'a str, open: usize, pos: usize) -> Self {
        Action {
            src,
            open,
            pos,
            tokens: Vec::new(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    /// Lex up to the closing delimiter: (tokens, end offset, trims after).
    fn run(mut self) -> Result<(Vec<Token>, usize, bool), PosError> {
        let mut spaced = true;
        loop {
            if let Some((end, trim)) = right_delim(self.src, self.pos) {
                return Ok((self.tokens, end, trim));
            }
            let Some(c) = self.rest().chars().next() else {
                return Err(PosError::new(self.open, "unclosed action"));
            };
            if is_space(c) {
                self.pos += 1;
                spaced = true;
                continue;
            }
            let start = self.pos;
            let tok = self.token(c)?;
            self.tokens.push(Token {
                tok,
                pos: start,
                spaced,
            });
            spaced = false;
        }
    }

    fn token(&mut self, c: char) -> Result<Tok, PosError> {
        let start = self.pos;
        let next = self.rest()[c.len_utf8()..].chars().next();
        let simple = match c {
            '|' => Some(Tok::Pipe),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '=' => Some(Tok::Assign),
            _ => None,
        };
        if let Some(tok) = simple {
            self.pos += 1;
            return Ok(tok);
        }
        match c {
            ':' if next == Some('=') => {
                self.pos += 2;
                Ok(Tok::Declare)
            }
            '"' => self.quoted(),
            '`' => self.raw(),
            '\'' => self.char_constant(),
            '$' => {
                self.pos += 1;
                Ok(Tok::Var(format!("${}", self.ident())))
            }
            '.' if next.is_some_and(|n| n.is_ascii_digit()) => Ok(self.number()),
            '.' => {
                self.pos += 1;
                let name = self.ident();
                Ok(if name.is_empty() {
                    Tok::Dot
                } else {
                    Tok::Field(name)
                })
            }
            '+' | '-' | '0'..='9' => Ok(self.number()),
            c if is_ident_char(c) => Ok(Tok::Ident(self.ident())),
            _ => Err(PosError::new(
                start,
                format!("unrecognized character in action: {c:?}"),
            )),
        }
    }

    fn ident(&mut self) -> String {
        let len = self
            .rest()
            .find(|c| !is_ident_char(c))
            .unwrap_or(self.rest().len());
        let name = self.rest()[..len].to_string();
        self.pos += len;
        name
    }

    /// Take everything that could belong to a number; the parser judges it.
    fn number(&mut self) -> Tok {
        let mut len = 0;
        let mut prev = ' ';
        for (i, c) in self.rest().char_indices() {
            let sign_ok =
                (c == '+' || c == '-') && (i == 0 || matches!(prev, 'e' | 'E' | 'p' | 'P'));
            if !(sign_ok || c == '.' || is_ident_char(c)) {
                break;
            }
            len = i + c.len_utf8();
            prev = c;
        }
        let text = self.rest()[..len].to_string();
        self.pos += len;
        Tok::Number(text)
    }

    /// Find the closing `quote`, honouring backslash escapes; returns the
    /// text between the quotes.
    fn scan_quoted(&mut self, quote: char, what: &str) -> Result<&'a str, PosError> {
        let start = self.pos;
        let body = &self.rest()[1..];
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                '\n' => break,
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == quote => {
                    self.pos += 1 + i + 1;
                    return Ok(&body[..i]);
                }
                _ => {}
            }
        }
        Err(PosError::new(start, format!("unterminated {what}")))
    }

    fn quoted(&mut self) -> Result<Tok, PosError> {
        let start = self.pos;
        let body = self.scan_quoted('"', "quoted string")?;
        unescape(body, '"')
            .map(Tok::Str)
            .map_err(|m| PosError::new(start, m))
    }

    fn char_constant(&mut self) -> Result<Tok, PosError> {
        let start = self.pos;
        let body = self.scan_quoted('\'', "character constant")?;
        let text = unescape(body, '\'').map_err(|m| PosError::new(start, m))?;
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(Tok::Char(c)),
            _ => Err(PosError::new(
                start,
                format!("malformed character constant: '{body}'"),
            )),
        }
    }

    fn raw(&mut self) -> Result<Tok, PosError> {
        let start = self.pos;
        let Some(len) = self.rest()[1..].find('`') else {
            return Err(PosError::new(start, "unterminated raw quote"));
        };
        let body = &self.rest()[1..1 + len];
        self.pos += len + 2;
        // Go drops carriage returns from raw strings.
        Ok(Tok::Str(body.replace('\r', "")))
    }
}

/// Go's escape sequences in a quoted string or character constant
/// (the text between the quotes).
fn unescape(body: &str, quote: char) -> Result<String, String> {
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut chars = body.chars();
    let push = |out: &mut Vec<u8>, c: char| {
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            push(&mut out, c);
            continue;
        }
        let e = chars.next().ok_or("invalid escape at end of string")?;
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            _ if e == quote => Some(e),
            _ => None,
        };
        if let Some(s) = simple {
            push(&mut out, s);
            continue;
        }
        let digits = |chars: &mut std::str::Chars, n: usize, radix: u32| -> Option<u32> {
            let text: String = chars.by_ref().take(n).collect();
            if text.len() != n || !text.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            u32::from_str_radix(&text, radix).ok()
        };
        let bad = || format!("invalid escape sequence \\{e}");
        match e {
            'x' => out.push(digits(&mut chars, 2, 16).ok_or_else(bad)? as u8),
            '0'..='7' => {
                let rest = digits(&mut chars, 2, 8).ok_or_else(bad)?;
                let v = e.to_digit(8).unwrap_or(0) * 64 + rest;
                out.push(u8::try_from(v).map_err(|_| bad())?);
            }
            'u' | 'U' => {
                let n = if e == 'u' { 4 } else { 8 };
                let v = digits(&mut chars, n, 16).ok_or_else(bad)?;
                push(&mut out, char::from_u32(v).ok_or_else(bad)?);
            }
            _ => return Err(bad()),
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
