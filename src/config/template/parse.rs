//! Building the template tree from the lexed pieces.
//!
//! Like Go, the parser rejects unknown functions and undefined variables up
//! front, even in branches that would never run, so a typo in a rarely used
//! branch fails at startup rather than in production.

use super::PosError;
use super::funcs;
use super::lex::{self, Piece, Tok, Token};

pub(super) enum Node<'a> {
    Text(&'a str),
    /// `{{ pipeline }}`: printed unless it declares or assigns variables.
    Action(Pipe),
    If(Control<'a>),
    With(Control<'a>),
    Range(Control<'a>),
    Break,
    Continue,
}

/// An `if`, `with` or `range`; `else if` is an `If` alone in `else_body`.
pub(super) struct Control<'a> {
    /// The keyword's offset.
    pub pos: usize,
    pub pipe: Pipe,
    pub body: Vec<Node<'a>>,
    pub else_body: Vec<Node<'a>>,
}

pub(super) struct Pipe {
    /// Variables declared (`$x :=`) or assigned (`$x =`), with their `$`.
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Command>,
}

/// One stage of a pipeline: a function and its arguments, or a lone value.
pub(super) struct Command {
    pub args: Vec<Operand>,
}

pub(super) struct Operand {
    pub pos: usize,
    pub term: Term,
    /// Field chain applied to the term: `.A.B` is `Dot` with `[A, B]`.
    pub fields: Vec<String>,
}

pub(super) enum Term {
    Dot,
    Var(String),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Pipe(Box<Pipe>),
}

/// Deeper nesting than this is refused so that hostile input cannot overflow
/// the stack; real configs nest two or three levels.
const MAX_DEPTH: usize = 200;

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "break", "continue", "define", "template", "block",
];

pub(super) fn parse(src: &str) -> Result<Vec<Node<'_>>, PosError> {
    let mut parser = Parser {
        pieces: lex::lex(src)?.into_iter(),
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
    };
    let (nodes, stop) = parser.list()?;
    match stop {
        Stop::Eof => Ok(nodes),
        Stop::End(pos) => Err(PosError::new(pos, "unexpected {{end}}")),
        Stop::Else { pos, .. } => Err(PosError::new(pos, "unexpected {{else}}")),
    }
}

/// What ended a list of nodes; positions are those of the action's `{{`.
enum Stop {
    Eof,
    End(usize),
    Else { pos: usize, rest: Vec<Token> },
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    If,
    With,
    Range,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::If => "if",
            Kind::With => "with",
            Kind::Range => "range",
        }
    }
}

struct Parser<'a> {
    pieces: std::vec::IntoIter<Piece<'a>>,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn enter(&mut self, pos: usize) -> Result<(), PosError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(PosError::new(pos, "template nested too deeply"));
        }
        Ok(())
    }

    /// Nodes up to the next `{{end}}` or `{{else}}` of this level, or EOF.
    fn list(&mut self) -> Result<(Vec<Node<'a>>, Stop), PosError> {
        let mut nodes = Vec::new();
        while let Some(piece) = self.pieces.next() {
            let (pos, tokens) = match piece {
                Piece::Text(text) => {
                    nodes.push(Node::Text(text));
                    continue;
                }
                Piece::Action { pos, tokens } => (pos, tokens),
            };
            let keyword = match tokens.first() {
                Some(Token {
                    tok: Tok::Ident(word),
                    ..
                }) if KEYWORDS.contains(&word.as_str()) => word.clone(),
                _ => {
                    nodes.push(Node::Action(self.pipeline(tokens, pos, None)?));
                    continue;
                }
            };
            let key_pos = tokens[0].pos;
            let rest: Vec<Token> = tokens.into_iter().skip(1).collect();
            match keyword.as_str() {
                "end" => {
                    no_more(&rest, "end")?;
                    return Ok((nodes, Stop::End(pos)));
                }
                "else" => return Ok((nodes, Stop::Else { pos, rest })),
                "if" => nodes.push(Node::If(self.control(Kind::If, key_pos, rest)?)),
                "with" => nodes.push(Node::With(self.control(Kind::With, key_pos, rest)?)),
                "range" => nodes.push(Node::Range(self.control(Kind::Range, key_pos, rest)?)),
                "break" | "continue" => {
                    if self.range_depth == 0 {
                        return Err(PosError::new(
                            pos,
                            format!("{{{{{keyword}}}}} outside {{{{range}}}}"),
                        ));
                    }
                    no_more(&rest, &keyword)?;
                    nodes.push(if keyword == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                _ => {
                    return Err(PosError::new(
                        pos,
                        format!("{{{{{keyword}}}}} is not supported"),
                    ));
                }
            }
        }
        Ok((nodes, Stop::Eof))
    }

    /// An `if`/`with`/`range` whose keyword has been read, through its `{{end}}`.
    fn control(
        &mut self,
        kind: Kind,
        pos: usize,
        tokens: Vec<Token>,
    ) -> Result<Control<'a>, PosError> {
        self.enter(pos)?;
        let mark = self.vars.len();
        let pipe = self.pipeline(tokens, pos, Some(kind))?;
        if kind == Kind::Range {
            self.range_depth += 1;
        }
        let body = self.list();
        if kind == Kind::Range {
            self.range_depth -= 1;
        }
        let (body, stop) = body?;
        let unclosed = || {
            PosError::new(
                pos,
                format!("unclosed {{{{{}}}}}: missing {{{{end}}}}", kind.name()),
            )
        };
        let else_body = match stop {
            Stop::End(_) => Vec::new(),
            Stop::Eof => return Err(unclosed()),
            Stop::Else { rest, .. } if rest.is_empty() => match self.list()? {
                (list, Stop::End(_)) => list,
                (_, Stop::Eof) => return Err(unclosed()),
                (_, Stop::Else { pos, .. }) => {
                    return Err(PosError::new(pos, "expected {{end}}; found {{else}}"));
                }
            },
            Stop::Else { rest, .. } => {
                let chained = kind != Kind::Range
                    && matches!(&rest[0].tok, Tok::Ident(word) if word == kind.name());
                if !chained {
                    return Err(PosError::new(
                        rest[0].pos,
                        format!("unexpected {} after else", rest[0].tok.describe()),
                    ));
                }
                let key_pos = rest[0].pos;
                let inner = self.control(kind, key_pos, rest.into_iter().skip(1).collect())?;
                vec![match kind {
                    Kind::With => Node::With(inner),
                    _ => Node::If(inner),
                }]
            }
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(Control {
            pos,
            pipe,
            body,
            else_body,
        })
    }

    /// A whole action's pipeline, with its declarations; `control` is the
    /// keyword it follows, if any (only `range` may declare two variables).
    fn pipeline(
        &mut self,
        tokens: Vec<Token>,
        pos: usize,
        control: Option<Kind>,
    ) -> Result<Pipe, PosError> {
        if tokens.is_empty() {
            let what = control.map_or("command", Kind::name);
            return Err(PosError::new(pos, format!("missing value for {what}")));
        }
        let end = tokens.last().map_or(pos, |t| t.pos);
        let mut cur = Cursor { tokens, i: 0, end };
        let (decl, assign) = self.declarations(&mut cur, control == Some(Kind::Range))?;
        let cmds = self.commands(&mut cur)?;
        if let Some(t) = cur.peek() {
            return Err(PosError::new(
                t.pos,
                format!("unexpected {} in command", t.tok.describe()),
            ));
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe { decl, assign, cmds })
    }

    /// `$x :=`, `$x =`, or in `range` also `$i, $e :=`.
    fn declarations(
        &mut self,
        cur: &mut Cursor,
        in_range: bool,
    ) -> Result<(Vec<String>, bool), PosError> {
        let var = |t: Option<&Token>| match t.map(|t| &t.tok) {
            Some(Tok::Var(name)) => Some(name.clone()),
            _ => None,
        };
        let mut names = Vec::new();
        let Some(first) = var(cur.get(0)) else {
            return Ok((names, false));
        };
        names.push(first);
        let mut at = 1;
        if cur.get(1).map(|t| &t.tok) == Some(&Tok::Comma) {
            let Some(second) = var(cur.get(2)) else {
                return Ok((Vec::new(), false));
            };
            if !in_range {
                return Err(PosError::new(
                    cur.tokens[1].pos,
                    "too many declarations in command",
                ));
            }
            names.push(second);
            at = 3;
        }
        let assign = match cur.get(at).map(|t| &t.tok) {
            Some(Tok::Declare) => false,
            Some(Tok::Assign) => true,
            _ if at == 1 => return Ok((Vec::new(), false)),
            _ => {
                return Err(PosError::new(
                    cur.tokens[at - 1].pos,
                    "expected := or = after variables",
                ));
            }
        };
        for (i, name) in names.iter().enumerate() {
            let pos = cur.tokens[i * 2].pos;
            if name == "$" {
                return Err(PosError::new(pos, "cannot declare or assign $"));
            }
            if assign && !self.vars.contains(name) {
                return Err(PosError::new(pos, format!("undefined variable \"{name}\"")));
            }
        }
        cur.i = at + 1;
        Ok((names, assign))
    }

    /// Commands separated by `|`, up to a `)` or the end of the action.
    fn commands(&mut self, cur: &mut Cursor) -> Result<Vec<Command>, PosError> {
        let mut cmds = Vec::new();
        loop {
            let mut args = Vec::new();
            while let Some(t) = cur.peek() {
                if matches!(t.tok, Tok::Pipe | Tok::RParen) {
                    break;
                }
                args.push(self.operand(cur)?);
            }
            let Some(first) = args.first() else {
                return Err(PosError::new(cur.here(), "missing value for command"));
            };
            let inert = match first.term {
                Term::Dot => first.fields.is_empty(),
                Term::Str(_) | Term::Int(_) | Term::Float(_) | Term::Bool(_) | Term::Nil => true,
                _ => false,
            };
            if !cmds.is_empty() && inert {
                return Err(PosError::new(
                    first.pos,
                    format!(
                        "non executable command in pipeline stage {}",
                        cmds.len() + 1
                    ),
                ));
            }
            cmds.push(Command { args });
            if cur.peek().map(|t| &t.tok) != Some(&Tok::Pipe) {
                return Ok(cmds);
            }
            cur.i += 1;
        }
    }

    fn operand(&mut self, cur: &mut Cursor) -> Result<Operand, PosError> {
        let Some(token) = cur.next() else {
            return Err(PosError::new(cur.here(), "missing value for command"));
        };
        let pos = token.pos;
        let mut fields = Vec::new();
        let term = match token.tok {
            Tok::Dot => Term::Dot,
            Tok::Field(name) => {
                fields.push(name);
                Term::Dot
            }
            Tok::Var(name) => {
                if !self.vars.contains(&name) {
                    return Err(PosError::new(pos, format!("undefined variable \"{name}\"")));
                }
                Term::Var(name)
            }
            Tok::Ident(word) => match word.as_str() {
                "true" => Term::Bool(true),
                "false" => Term::Bool(false),
                "nil" => Term::Nil,
                _ if KEYWORDS.contains(&word.as_str()) => {
                    return Err(PosError::new(
                        pos,
                        format!("unexpected <{word}> in command"),
                    ));
                }
                _ if !funcs::exists(&word) => {
                    return Err(PosError::new(
                        pos,
                        format!(
                            "function \"{word}\" not defined{}",
                            funcs::suggestion(&word)
                        ),
                    ));
                }
                _ => Term::Func(word),
            },
            Tok::Str(s) => Term::Str(s),
            Tok::Char(c) => Term::Int(i64::from(u32::from(c))),
            Tok::Number(text) => number(&text)
                .ok_or_else(|| PosError::new(pos, format!("bad number syntax: {text}")))?,
            Tok::LParen => {
                self.enter(pos)?;
                let cmds = self.commands(cur)?;
                if cur.next().map(|t| t.tok) != Some(Tok::RParen) {
                    return Err(PosError::new(pos, "unclosed left paren"));
                }
                self.depth -= 1;
                Term::Pipe(Box::new(Pipe {
                    decl: Vec::new(),
                    assign: false,
                    cmds,
                }))
            }
            other => {
                return Err(PosError::new(
                    pos,
                    format!("unexpected {} in operand", other.describe()),
                ));
            }
        };
        while let Some(Token {
            tok: Tok::Field(name),
            spaced: false,
            pos: field_pos,
        }) = cur.peek()
        {
            if !matches!(term, Term::Dot | Term::Var(_) | Term::Pipe(_)) {
                return Err(PosError::new(
                    *field_pos,
                    format!("unexpected .{name} after term"),
                ));
            }
            fields.push(name.clone());
            cur.i += 1;
        }
        Ok(Operand { pos, term, fields })
    }
}

/// Tokens of one action, consumed left to right.
struct Cursor {
    tokens: Vec<Token>,
    i: usize,
    /// Reported for errors at the end of the action: its last token.
    end: usize,
}

impl Cursor {
    fn get(&self, offset: usize) -> Option<&Token> {
        self.tokens.get(self.i + offset)
    }

    fn peek(&self) -> Option<&Token> {
        self.get(0)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.i).cloned();
        self.i += 1;
        t
    }

    fn here(&self) -> usize {
        self.peek().map_or(self.end, |t| t.pos)
    }
}

fn no_more(rest: &[Token], keyword: &str) -> Result<(), PosError> {
    match rest.first() {
        None => Ok(()),
        Some(t) => Err(PosError::new(
            t.pos,
            format!("unexpected {} in {keyword}", t.tok.describe()),
        )),
    }
}

/// A Go number literal: ints (decimal, `0x`, `0o`, `0b`, legacy `0` octal)
/// and floats; an int too big for 64 bits becomes a float, as in Go.
fn number(text: &str) -> Option<Term> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let clean: String = body.chars().filter(|&c| c != '_').collect();
    let lower = clean.to_ascii_lowercase();
    let (digits, radix) = if let Some(d) = lower.strip_prefix("0x") {
        (d, 16)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (d, 8)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (d, 2)
    } else if lower.len() > 1
        && lower.starts_with('0')
        && lower.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        (&lower[1..], 8)
    } else {
        (lower.as_str(), 10)
    };
    if !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix)) {
        if let Ok(n) = u64::from_str_radix(digits, radix) {
            let n = if negative {
                -i128::from(n)
            } else {
                i128::from(n)
            };
            return Some(match i64::try_from(n) {
                Ok(n) => Term::Int(n),
                Err(_) => Term::Float(n as f64),
            });
        }
        if radix == 10 {
            let f: f64 = digits.parse().ok()?;
            return Some(Term::Float(if negative { -f } else { f }));
        }
        return None;
    }
    if radix != 10
        || !lower
            .bytes()
            .all(|b| b.is_ascii_digit() || b"._e+-".contains(&b))
    {
        return None;
    }
    let f: f64 = lower.parse().ok()?;
    Some(Term::Float(if negative { -f } else { f }))
}
