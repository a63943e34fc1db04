//! Executing a parsed template against the environment.

use std::collections::HashMap;

use super::parse::{Command, Control, Node, Operand, Pipe, Term};
use super::value::{self, Value};
use super::{MAX_ITERATIONS, MAX_RENDERED, MAX_WORK, PosError};
use super::{funcs, printf};

pub(super) fn execute(nodes: &[Node], env: &HashMap<String, String>) -> Result<String, PosError> {
    execute_with(nodes, env, env)
}

/// [`execute`] with `data` as dot (what `.NAME` reads) and `env` for the `env`
/// function: ContainerPilot read the two differently (see `quirks`).
pub(super) fn execute_with<'a>(
    nodes: &[Node],
    data: &'a HashMap<String, String>,
    env: &'a HashMap<String, String>,
) -> Result<String, PosError> {
    let mut exec = Exec {
        env,
        vars: vec![("$".to_string(), Value::Env(data))],
        out: String::new(),
        iterations: 0,
        work: 0,
        pos: 0,
    };
    exec.walk(nodes, &Value::Env(data))?;
    Ok(exec.out)
}

/// How a list of nodes finished: normally, or at `{{break}}`/`{{continue}}`.
#[derive(PartialEq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'a> {
    env: &'a HashMap<String, String>,
    /// Variables in scope, innermost last; `$` is the first.
    vars: Vec<(String, Value<'a>)>,
    out: String,
    /// `range` iterations so far, against [`MAX_ITERATIONS`].
    iterations: usize,
    /// Bytes of values made so far, against [`MAX_WORK`].
    work: usize,
    /// The offset of the action being run, for errors found in text.
    pos: usize,
}

impl<'a> Exec<'a> {
    fn walk(&mut self, nodes: &[Node], dot: &Value<'a>) -> Result<Flow, PosError> {
        for node in nodes {
            let flow = match node {
                Node::Text(text) => {
                    self.emit(text)?;
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let v = self.pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        self.print(&v)?;
                    }
                    Flow::Normal
                }
                Node::If(c) => self.branch(c, dot, false)?,
                Node::With(c) => self.branch(c, dot, true)?,
                Node::Range(c) => self.range(c, dot)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    /// An action's value as Go prints it; nil (which only a bare `nil` could
    /// give, and the parser does not allow) would be `<no value>`.
    fn print(&mut self, v: &Value) -> Result<(), PosError> {
        match v {
            Value::Nil => self.emit("<no value>"),
            Value::Str(s) => self.emit(s),
            other => self.emit(&other.to_go_string()),
        }
    }

    /// Appends to the output, within [`MAX_RENDERED`].
    fn emit(&mut self, text: &str) -> Result<(), PosError> {
        if self.out.len() + text.len() > MAX_RENDERED {
            return Err(PosError::new(
                self.pos,
                format!(
                    "the rendered config would be longer than {} MiB",
                    MAX_RENDERED >> 20
                ),
            ));
        }
        self.out.push_str(text);
        Ok(())
    }

    /// Counts a value made by the render against [`MAX_WORK`] and
    /// [`MAX_RENDERED`].
    fn spend(&mut self, v: &Value, pos: usize) -> Result<(), PosError> {
        let weight = v.weight();
        if weight > MAX_RENDERED {
            return Err(PosError::new(
                pos,
                format!(
                    "this makes a value of {weight} bytes; the limit is {} MiB",
                    MAX_RENDERED >> 20
                ),
            ));
        }
        self.work += weight;
        if self.work > MAX_WORK {
            return Err(PosError::new(
                pos,
                format!(
                    "the template does too much work: it made more than {} MiB of values \
                     (is a `range` nested too deep?)",
                    MAX_WORK >> 20
                ),
            ));
        }
        Ok(())
    }

    /// `if` or `with`: variables declared in the pipeline live until `{{end}}`.
    fn branch(&mut self, c: &Control, dot: &Value<'a>, with: bool) -> Result<Flow, PosError> {
        let mark = self.vars.len();
        let v = self.pipe(&c.pipe, dot)?;
        let flow = if !v.truthy() {
            self.walk(&c.else_body, dot)?
        } else if with {
            self.walk(&c.body, &v)?
        } else {
            self.walk(&c.body, dot)?
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn range(&mut self, c: &Control, dot: &Value<'a>) -> Result<Flow, PosError> {
        let mark = self.vars.len();
        let v = self.commands(&c.pipe, dot)?;
        let items: Vec<(Value<'a>, Value<'a>)> = match v {
            Value::Strings(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, s)| (Value::Int(i as i64), Value::Str(s)))
                .collect(),
            Value::Ints(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, n)| (Value::Int(i as i64), Value::Int(n)))
                .collect(),
            Value::Env(map) => value::sorted(map)
                .map(|(k, v)| (Value::Str(k.clone()), Value::Str(v.clone())))
                .collect(),
            Value::Nil => Vec::new(),
            other => {
                return Err(PosError::new(
                    c.pos,
                    format!("range can't iterate over {}", other.to_go_string()),
                ));
            }
        };
        if items.is_empty() {
            let flow = self.walk(&c.else_body, dot)?;
            self.vars.truncate(mark);
            return Ok(flow);
        }
        for (key, elem) in items {
            self.iterations += 1;
            if self.iterations > MAX_ITERATIONS {
                return Err(PosError::new(
                    c.pos,
                    format!(
                        "more than {MAX_ITERATIONS} `range` iterations in all: \
                         the template would run too long"
                    ),
                ));
            }
            self.vars.truncate(mark);
            match c.pipe.decl.len() {
                0 => {}
                1 => self.bind(&c.pipe, std::slice::from_ref(&elem)),
                _ => self.bind(&c.pipe, &[key, elem.clone()]),
            }
            if self.walk(&c.body, &elem)? == Flow::Break {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    /// Evaluate a pipeline and declare or assign its variables.
    fn pipe(&mut self, pipe: &Pipe, dot: &Value<'a>) -> Result<Value<'a>, PosError> {
        let v = self.commands(pipe, dot)?;
        let values = vec![v.clone(); pipe.decl.len()];
        self.bind(pipe, &values);
        Ok(v)
    }

    fn bind(&mut self, pipe: &Pipe, values: &[Value<'a>]) {
        for (name, v) in pipe.decl.iter().zip(values) {
            // The parser has checked that an assigned variable exists.
            let existing = self.vars.iter_mut().rev().find(|(n, _)| n == name);
            match existing {
                Some(slot) if pipe.assign => slot.1 = v.clone(),
                _ => self.vars.push((name.clone(), v.clone())),
            }
        }
    }

    /// Run the commands of a pipeline, each result becoming the last argument
    /// of the next command.
    fn commands(&mut self, pipe: &Pipe, dot: &Value<'a>) -> Result<Value<'a>, PosError> {
        let mut piped = None;
        for cmd in &pipe.cmds {
            piped = Some(self.command(cmd, dot, piped)?);
        }
        Ok(piped.unwrap_or(Value::Nil))
    }

    fn command(
        &mut self,
        cmd: &Command,
        dot: &Value<'a>,
        piped: Option<Value<'a>>,
    ) -> Result<Value<'a>, PosError> {
        let first = &cmd.args[0];
        if let Term::Func(name) = &first.term {
            return self.call(name, first.pos, &cmd.args[1..], piped, dot);
        }
        if cmd.args.len() > 1 || piped.is_some() {
            return Err(PosError::new(
                first.pos,
                format!("can't give argument to non-function {}", describe(first)),
            ));
        }
        if let Term::Nil = first.term {
            return Err(PosError::new(first.pos, "nil is not a command"));
        }
        self.operand(first, dot)
    }

    fn call(
        &mut self,
        name: &str,
        pos: usize,
        args: &[Operand],
        piped: Option<Value<'a>>,
        dot: &Value<'a>,
    ) -> Result<Value<'a>, PosError> {
        if name == "and" || name == "or" {
            return self.and_or(name == "and", pos, args, piped, dot);
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.operand(arg, dot)?);
        }
        values.extend(piped);
        self.pos = pos;
        let v = funcs::call(name, values, self.env).map_err(|m| PosError::new(pos, m))?;
        self.spend(&v, pos)?;
        Ok(v)
    }

    /// `and` gives its first false argument or its last, `or` its first true
    /// argument or its last; later arguments are not evaluated.
    fn and_or(
        &mut self,
        is_and: bool,
        pos: usize,
        args: &[Operand],
        piped: Option<Value<'a>>,
        dot: &Value<'a>,
    ) -> Result<Value<'a>, PosError> {
        let name = if is_and { "and" } else { "or" };
        if args.is_empty() && piped.is_none() {
            return Err(PosError::new(
                pos,
                format!("wrong number of args for {name}: want at least 1 got 0"),
            ));
        }
        let mut last = Value::Nil;
        for arg in args {
            last = self.operand(arg, dot)?;
            if last.truthy() != is_and {
                return Ok(last);
            }
        }
        Ok(piped.unwrap_or(last))
    }

    fn operand(&mut self, op: &Operand, dot: &Value<'a>) -> Result<Value<'a>, PosError> {
        self.pos = op.pos;
        let mut v = match &op.term {
            Term::Dot => dot.clone(),
            Term::Var(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| PosError::new(op.pos, format!("undefined variable \"{name}\"")))?,
            Term::Func(name) => self.call(name, op.pos, &[], None, dot)?,
            Term::Str(s) => Value::Str(s.clone()),
            Term::Int(i) => Value::Int(*i),
            Term::Float(f) => Value::Float(*f),
            Term::Bool(b) => Value::Bool(*b),
            Term::Nil => Value::Nil,
            Term::Pipe(pipe) => self.commands(pipe, dot)?,
        };
        for field in &op.fields {
            v = match v {
                // Go's missingkey=zero on a map[string]string: unset is "".
                Value::Env(map) => Value::Str(map.get(field).cloned().unwrap_or_default()),
                Value::Nil => {
                    return Err(PosError::new(
                        op.pos,
                        format!("nil pointer evaluating <nil>.{field}"),
                    ));
                }
                other => {
                    return Err(PosError::new(
                        op.pos,
                        format!("can't evaluate field {field} in type {}", other.type_name()),
                    ));
                }
            };
        }
        self.spend(&v, op.pos)?;
        Ok(v)
    }
}

/// An operand as written, for error messages.
fn describe(op: &Operand) -> String {
    let base = match &op.term {
        Term::Dot if op.fields.is_empty() => ".".to_string(),
        Term::Dot => String::new(),
        Term::Var(name) | Term::Func(name) => name.clone(),
        Term::Str(s) => printf::quote(s),
        Term::Int(i) => i.to_string(),
        Term::Float(f) => value::format_float_shortest(*f),
        Term::Bool(b) => b.to_string(),
        Term::Nil => "nil".to_string(),
        Term::Pipe(_) => "(...)".to_string(),
    };
    let fields: String = op.fields.iter().map(|f| format!(".{f}")).collect();
    format!("{base}{fields}")
}
