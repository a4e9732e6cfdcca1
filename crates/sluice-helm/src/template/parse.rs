//! The parser of Go's `text/template/parse`: the same trees, the same
//! checks (undefined functions and variables, `break` outside `range`,
//! redefinitions) and the same error texts (`template: NAME:LINE: MESSAGE`).

use std::sync::Arc;

use super::lex::{Item, ItemType, Lexer};
use super::quote::{UChar, quote, unquote, unquote_char};

/// Nesting of parenthesized pipelines the parser accepts (Go: 10000; lower
/// here so that a deep nesting cannot exhaust a thread's stack).
pub(crate) const MAX_PAREN_DEPTH: usize = 1000;
/// Nesting of `if`/`range`/`with`/`block` (Go has no bound).
pub(crate) const MAX_CONTROL_DEPTH: usize = 1000;

// Positions and lines are kept as Go's nodes have them, even where the
// executor reads only some. The trees of a large chart are most of what
// rendering holds (kube-prometheus-stack: 1.5 MB of templates), so lists are
// boxed slices (no spare capacity), the names of fields, variables and
// functions are shared within a template file, and a text is where it lies in
// the file's source, which its trees share (copying the texts out cost
// kube-prometheus-stack 10,000 allocations and about 0.45 MB).

/// A field, variable or function name, shared by every use in one file.
pub(crate) type Name = Arc<str>;
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub(crate) struct ListNode {
    pub pos: usize,
    pub nodes: Box<[Node]>,
}

#[derive(Debug, Clone)]
#[allow(dead_code)]
pub(crate) enum Node {
    /// The text `source[pos..pos + len]` of the tree's file.
    Text {
        pos: usize,
        len: usize,
    },
    Comment {
        pos: usize,
        text: Box<str>,
    },
    Action {
        pos: usize,
        line: usize,
        pipe: PipeNode,
    },
    If(Box<BranchNode>),
    Range(Box<BranchNode>),
    With(Box<BranchNode>),
    Template(Box<TemplateNode>),
    Break {
        pos: usize,
        line: usize,
    },
    Continue {
        pos: usize,
        line: usize,
    },
    /// `{{end}}`: only while parsing.
    End {
        pos: usize,
    },
    /// `{{else}}`: only while parsing.
    Else {
        pos: usize,
        line: usize,
    },
}

#[derive(Debug, Clone)]
#[allow(dead_code)]
pub(crate) struct TemplateNode {
    pub pos: usize,
    pub line: usize,
    pub name: String,
    pub pipe: Option<PipeNode>,
}

#[derive(Debug, Clone)]
#[allow(dead_code)]
pub(crate) struct BranchNode {
    pub pos: usize,
    pub line: usize,
    pub pipe: PipeNode,
    pub list: ListNode,
    pub else_list: Option<ListNode>,
}

#[derive(Debug, Clone)]
pub(crate) struct PipeNode {
    pub pos: usize,
    pub line: usize,
    pub is_assign: bool,
    pub decl: Box<[VarNode]>,
    pub cmds: Box<[CommandNode]>,
}

#[derive(Debug, Clone)]
pub(crate) struct VarNode {
    pub pos: usize,
    pub ident: Box<[Name]>,
}

#[derive(Debug, Clone)]
pub(crate) struct CommandNode {
    pub pos: usize,
    pub args: Box<[Arg]>,
}

#[derive(Debug, Clone)]
pub(crate) struct NumberNode {
    pub pos: usize,
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub is_complex: bool,
    pub int64: i64,
    pub uint64: u64,
    pub float64: f64,
    pub complex: (f64, f64),
    pub text: String,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Identifier {
        pos: usize,
        name: Name,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Field {
        pos: usize,
        ident: Box<[Name]>,
    },
    Variable(VarNode),
    Chain {
        pos: usize,
        node: Box<Arg>,
        field: Box<[Name]>,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number(Box<NumberNode>),
    String {
        pos: usize,
        quoted: Box<str>,
        text: Box<str>,
    },
    Pipe(Box<PipeNode>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Bool { pos, .. }
            | Arg::String { pos, .. } => *pos,
            Arg::Variable(v) => v.pos,
            Arg::Number(n) => n.pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl Node {
    pub fn pos(&self) -> usize {
        match self {
            Node::Text { pos, .. }
            | Node::Comment { pos, .. }
            | Node::Action { pos, .. }
            | Node::Break { pos, .. }
            | Node::Continue { pos, .. }
            | Node::End { pos }
            | Node::Else { pos, .. } => *pos,
            Node::If(b) | Node::Range(b) | Node::With(b) => b.pos,
            Node::Template(t) => t.pos,
        }
    }
}

// Printing, as Go's `String()` methods. `q` quotes text nodes (Go's tests
// switch textFormat to %q).

// `src` is the source of the tree the nodes belong to, where texts lie.

pub(crate) fn write_list(out: &mut String, l: &ListNode, src: &str, q: bool) {
    for n in &l.nodes {
        write_node(out, n, src, q);
    }
}

pub(crate) fn write_node(out: &mut String, n: &Node, src: &str, q: bool) {
    match n {
        &Node::Text { pos, len } => {
            let text = text_at(src, pos, len);
            if q {
                out.push_str(&quote(text));
            } else {
                out.push_str(text);
            }
        }
        Node::Comment { text, .. } => {
            out.push_str("{{");
            out.push_str(text);
            out.push_str("}}");
        }
        Node::Action { pipe, .. } => {
            out.push_str("{{");
            write_pipe(out, pipe);
            out.push_str("}}");
        }
        Node::If(b) => write_branch(out, "if", b, src, q),
        Node::Range(b) => write_branch(out, "range", b, src, q),
        Node::With(b) => write_branch(out, "with", b, src, q),
        Node::Template(t) => {
            out.push_str("{{template ");
            out.push_str(&quote(&t.name));
            if let Some(p) = &t.pipe {
                out.push(' ');
                write_pipe(out, p);
            }
            out.push_str("}}");
        }
        Node::Break { .. } => out.push_str("{{break}}"),
        Node::Continue { .. } => out.push_str("{{continue}}"),
        Node::End { .. } => out.push_str("{{end}}"),
        Node::Else { .. } => out.push_str("{{else}}"),
    }
}

fn write_branch(out: &mut String, name: &str, b: &BranchNode, src: &str, q: bool) {
    out.push_str("{{");
    out.push_str(name);
    out.push(' ');
    write_pipe(out, &b.pipe);
    out.push_str("}}");
    write_list(out, &b.list, src, q);
    if let Some(e) = &b.else_list {
        out.push_str("{{else}}");
        write_list(out, e, src, q);
    }
    out.push_str("{{end}}");
}

pub(crate) fn write_pipe(out: &mut String, p: &PipeNode) {
    if !p.decl.is_empty() {
        for (i, v) in p.decl.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&v.ident.join("."));
        }
        out.push_str(if p.is_assign { " = " } else { " := " });
    }
    for (i, c) in p.cmds.iter().enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        write_command(out, c);
    }
}

pub(crate) fn write_command(out: &mut String, c: &CommandNode) {
    for (i, a) in c.args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if let Arg::Pipe(p) = a {
            out.push('(');
            write_pipe(out, p);
            out.push(')');
            continue;
        }
        write_arg(out, a);
    }
}

pub(crate) fn write_arg(out: &mut String, a: &Arg) {
    match a {
        Arg::Identifier { name, .. } => out.push_str(name),
        Arg::Dot { .. } => out.push('.'),
        Arg::Nil { .. } => out.push_str("nil"),
        Arg::Field { ident, .. } => {
            for id in ident {
                out.push('.');
                out.push_str(id);
            }
        }
        Arg::Variable(v) => out.push_str(&v.ident.join(".")),
        Arg::Chain { node, field, .. } => {
            if let Arg::Pipe(p) = node.as_ref() {
                out.push('(');
                write_pipe(out, p);
                out.push(')');
            } else {
                write_arg(out, node);
            }
            for f in field {
                out.push('.');
                out.push_str(f);
            }
        }
        Arg::Bool { val, .. } => out.push_str(if *val { "true" } else { "false" }),
        Arg::Number(n) => out.push_str(&n.text),
        Arg::String { quoted, .. } => out.push_str(quoted),
        Arg::Pipe(p) => write_pipe(out, p),
    }
}

pub(crate) fn arg_string(a: &Arg) -> String {
    let mut s = String::new();
    write_arg(&mut s, a);
    s
}

/// One parsed template.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub name: String,
    /// The name of the top-level template being parsed (for errors).
    pub parse_name: String,
    pub root: ListNode,
    /// The whole text parsed (shared by the trees of its `define`s): where
    /// its texts lie, and what positions index into.
    pub source: Arc<str>,
}

impl Tree {
    /// Go's `Tree.ErrorContext`: `NAME:LINE:COL` of a byte position.
    pub fn location(&self, pos: usize) -> String {
        let before = &self.source.as_bytes()[..pos.min(self.source.len())];
        let line = memchr::memchr_iter(b'\n', before).count() + 1;
        let col = memchr::memrchr(b'\n', before).map_or(pos, |nl| pos - (nl + 1));
        format!("{}:{}:{}", self.parse_name, line, col)
    }

    /// The text of a [`Node::Text`] of this tree.
    pub fn text(&self, pos: usize, len: usize) -> &str {
        text_at(&self.source, pos, len)
    }
}

/// The text `src[pos..pos + len]` of a [`Node::Text`] parsed from `src`.
fn text_at(src: &str, pos: usize, len: usize) -> &str {
    &src[pos..pos + len]
}

/// Go's `parse.IsEmptyTree`, of a list parsed from `src`.
pub(crate) fn is_empty_list(l: &ListNode, src: &str) -> bool {
    l.nodes.iter().all(|n| match *n {
        Node::Comment { .. } => true,
        Node::Text { pos, len } => text_at(src, pos, len)
            .trim_matches(|c: char| c.is_whitespace())
            .is_empty(),
        _ => false,
    })
}

/// Whether a function name is known to the parser.
pub(crate) trait FuncCheck: Sync {
    fn has_function(&self, name: &str) -> bool;
}

struct Parser<'a, 'f> {
    parse_name: String,
    source: &'a Arc<str>,
    funcs: &'f dyn FuncCheck,
    mode: Mode,
    lex: Lexer<'a>,
    token: [Item<'a>; 3],
    peek_count: usize,
    vars: Vec<String>,
    action_line: usize,
    range_depth: usize,
    paren_depth: usize,
    control_depth: usize,
    tree_set: super::FastMap<String, Tree>,
    /// Insertion order of `tree_set`, so that adding is deterministic.
    order: Vec<String>,
    /// The names used so far in this file, each stored once.
    names: super::FastSet<Name>,
    /// Scratch stacks for the lists being parsed, shared by every level of
    /// nesting: a list's items are pushed above the ones of the lists that
    /// enclose it and moved into an exact-size slice when it ends, so a
    /// list costs one allocation (a `Vec` per list grew two or three times
    /// and was shrunk by `into_boxed_slice`: a tenth of a large chart's
    /// parse went to `realloc`). An error abandons the parse, and with it
    /// whatever a stack holds.
    node_stack: Vec<Node>,
    cmd_stack: Vec<CommandNode>,
    arg_stack: Vec<Arg>,
    name_stack: Vec<Name>,
}

/// The items of `stack` from `base` on, moved into a slice of their size.
fn take_from<T>(stack: &mut Vec<T>, base: usize) -> Box<[T]> {
    // `Drain` knows its length: the collected Vec has exactly that
    // capacity, and the conversion to a boxed slice does not reallocate.
    stack.drain(base..).collect()
}

/// Names of a dotted path (`a.b.c`) in a slice of their size.
fn split_names(path: &str, mut name: impl FnMut(&str) -> Name) -> Box<[Name]> {
    let mut out = Vec::with_capacity(memchr::memchr_iter(b'.', path.as_bytes()).count() + 1);
    out.extend(path.split('.').map(&mut name));
    out.into_boxed_slice()
}

type PResult<T> = Result<T, String>;

fn eof_item() -> Item<'static> {
    Item {
        typ: ItemType::Eof,
        pos: 0,
        val: "".into(),
        line: 0,
    }
}

/// Parser modes (Go's `parse.Mode` and its expression depth bound).
#[derive(Clone, Copy)]
pub(crate) struct Mode {
    pub comments: bool,
    pub skip_func_check: bool,
    pub max_paren: usize,
}

impl Default for Mode {
    fn default() -> Self {
        Mode {
            comments: false,
            skip_func_check: false,
            max_paren: MAX_PAREN_DEPTH,
        }
    }
}

/// Parses `text` as template `name`: the trees defined in it (`name`
/// itself, `define`s and `block`s), in the order they were completed. The
/// trees share `text`.
pub(crate) fn parse(
    name: &str,
    text: &Arc<str>,
    funcs: &dyn FuncCheck,
) -> Result<Vec<Tree>, String> {
    parse_mode(name, text, funcs, Mode::default())
}

pub(crate) fn parse_mode(
    name: &str,
    text: &Arc<str>,
    funcs: &dyn FuncCheck,
    mode: Mode,
) -> Result<Vec<Tree>, String> {
    let mut lex = Lexer::new(text);
    lex.break_ok = !funcs.has_function("break");
    lex.continue_ok = !funcs.has_function("continue");
    lex.emit_comment = mode.comments;
    let mut p = Parser {
        parse_name: name.to_string(),
        source: text,
        funcs,
        mode,
        lex,
        token: [eof_item(), eof_item(), eof_item()],
        peek_count: 0,
        vars: vec!["$".into()],
        action_line: 0,
        range_depth: 0,
        paren_depth: 0,
        control_depth: 0,
        tree_set: Default::default(),
        order: Vec::new(),
        names: Default::default(),
        node_stack: Vec::with_capacity(64),
        cmd_stack: Vec::with_capacity(16),
        arg_stack: Vec::with_capacity(32),
        name_stack: Vec::with_capacity(8),
    };
    let root = p.parse_top()?;
    p.add(name.to_string(), root)?;
    let mut out = Vec::new();
    for n in std::mem::take(&mut p.order) {
        if let Some(t) = p.tree_set.remove(&n) {
            out.push(t);
        }
    }
    Ok(out)
}

impl<'a> Parser<'a, '_> {
    /// `s` as a shared name: the same allocation for every use in the file.
    fn name(&mut self, s: &str) -> Name {
        if let Some(n) = self.names.get(s) {
            return n.clone();
        }
        let n: Name = Arc::from(s);
        self.names.insert(n.clone());
        n
    }

    /// `head` followed by the names on the name stack from `base` on (a
    /// path whose later fields were lexed apart: `.Values.a.b`).
    fn joined(&mut self, head: Box<[Name]>, base: usize) -> Box<[Name]> {
        let mut out = Vec::with_capacity(head.len() + self.name_stack.len() - base);
        out.extend(head.into_vec());
        out.extend(self.name_stack.drain(base..));
        out.into_boxed_slice()
    }

    /// A variable (`$x`, `$x.a.b`) at `pos`.
    fn new_var(&mut self, pos: usize, ident: &str) -> VarNode {
        VarNode {
            pos,
            ident: split_names(ident, |s| self.name(s)),
        }
    }

    fn next(&mut self) -> Item<'a> {
        if self.peek_count > 0 {
            self.peek_count -= 1;
        } else {
            self.token[0] = self.lex.next_item();
        }
        self.token[self.peek_count].clone()
    }
    fn backup(&mut self) {
        self.peek_count += 1;
    }
    fn backup2(&mut self, t1: Item<'a>) {
        self.token[1] = t1;
        self.peek_count = 2;
    }
    fn backup3(&mut self, t2: Item<'a>, t1: Item<'a>) {
        self.token[1] = t1;
        self.token[2] = t2;
        self.peek_count = 3;
    }
    fn peek(&mut self) -> Item<'a> {
        if self.peek_count > 0 {
            return self.token[self.peek_count - 1].clone();
        }
        self.peek_count = 1;
        self.token[0] = self.lex.next_item();
        self.token[0].clone()
    }
    fn next_non_space(&mut self) -> Item<'a> {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }
    fn peek_non_space(&mut self) -> Item<'a> {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn errorf<T>(&self, msg: impl std::fmt::Display) -> PResult<T> {
        Err(format!(
            "template: {}:{}: {}",
            self.parse_name, self.token[0].line, msg
        ))
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> PResult<Item<'a>> {
        let t = self.next_non_space();
        if t.typ != expected {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn expect_one_of(&mut self, e1: ItemType, e2: ItemType, context: &str) -> PResult<Item<'a>> {
        let t = self.next_non_space();
        if t.typ != e1 && t.typ != e2 {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn unexpected<T>(&self, token: &Item<'_>, context: &str) -> PResult<T> {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(
                    " in action started at {}:{}",
                    self.parse_name, self.action_line
                );
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    fn add(&mut self, name: String, root: ListNode) -> PResult<()> {
        if let Some(old) = self.tree_set.get(&name) {
            if !is_empty_list(&old.root, self.source) {
                if !is_empty_list(&root, self.source) {
                    return self.errorf(format!(
                        "template: multiple definition of template {}",
                        quote(&name)
                    ));
                }
                return Ok(());
            }
        } else {
            self.order.push(name.clone());
        }
        self.tree_set.insert(
            name.clone(),
            Tree {
                name,
                parse_name: self.parse_name.clone(),
                root,
                source: self.source.clone(),
            },
        );
        Ok(())
    }

    fn parse_top(&mut self) -> PResult<ListNode> {
        let pos = self.peek().pos;
        let base = self.node_stack.len();
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let delim = self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.backup2(delim);
            }
            let n = self.text_or_action()?;
            match n {
                Node::End { .. } | Node::Else { .. } => {
                    let mut s = String::new();
                    write_node(&mut s, &n, self.source, false);
                    return self.errorf(format!("unexpected {s}"));
                }
                n => self.node_stack.push(n),
            }
        }
        Ok(ListNode {
            pos,
            nodes: take_from(&mut self.node_stack, base),
        })
    }

    /// A `define` clause, after `{{define`: a new tree with fresh
    /// variables.
    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let name = self.expect_one_of(ItemType::String, ItemType::RawString, CONTEXT)?;
        let Some(name) = unquote(&name.val) else {
            return self.errorf("invalid syntax");
        };
        self.expect(ItemType::RightDelim, CONTEXT)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let r = self.item_list();
        self.vars = saved_vars;
        self.range_depth = saved_range;
        let (root, end) = r?;
        if !matches!(end, Node::End { .. }) {
            let mut s = String::new();
            write_node(&mut s, &end, self.source, false);
            return self.errorf(format!("unexpected {s} in {CONTEXT}"));
        }
        self.add(name, root)
    }

    fn item_list(&mut self) -> PResult<(ListNode, Node)> {
        let pos = self.peek_non_space().pos;
        let base = self.node_stack.len();
        while self.peek_non_space().typ != ItemType::Eof {
            let n = self.text_or_action()?;
            match n {
                Node::End { .. } | Node::Else { .. } => {
                    let list = ListNode {
                        pos,
                        nodes: take_from(&mut self.node_stack, base),
                    };
                    return Ok((list, n));
                }
                n => self.node_stack.push(n),
            }
        }
        self.errorf("unexpected EOF")
    }

    fn text_or_action(&mut self) -> PResult<Node> {
        let token = self.next_non_space();
        match token.typ {
            // The lexer's text is a slice of the source at its position.
            ItemType::Text => Ok(Node::Text {
                pos: token.pos,
                len: token.val.len(),
            }),
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            ItemType::Comment => Ok(Node::Comment {
                pos: token.pos,
                text: Box::from(&*token.val),
            }),
            _ => self.unexpected(&token, "input"),
        }
    }

    fn action(&mut self) -> PResult<Node> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => return self.block_control(),
            ItemType::Break => return self.break_control(token.pos, token.line, true),
            ItemType::Continue => return self.break_control(token.pos, token.line, false),
            ItemType::Else => return self.else_control(),
            ItemType::End => return self.end_control(),
            ItemType::If => return self.if_control(),
            ItemType::Range => return self.range_control(),
            ItemType::Template => return self.template_control(),
            ItemType::With => return self.with_control(),
            _ => {}
        }
        self.backup();
        let token = self.peek();
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Node::Action {
            pos: token.pos,
            line: token.line,
            pipe,
        })
    }

    fn break_control(&mut self, pos: usize, line: usize, is_break: bool) -> PResult<Node> {
        let word = if is_break {
            "{{break}}"
        } else {
            "{{continue}}"
        };
        let token = self.next_non_space();
        if token.typ != ItemType::RightDelim {
            return self.unexpected(&token, word);
        }
        if self.range_depth == 0 {
            return self.errorf(format!("{word} outside {{{{range}}}}"));
        }
        Ok(if is_break {
            Node::Break { pos, line }
        } else {
            Node::Continue { pos, line }
        })
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<PipeNode> {
        let token = self.peek_non_space();
        let (pos, line) = (token.pos, token.line);
        let mut is_assign = false;
        let mut decl = vec![];
        let base = self.cmd_stack.len();
        'decls: loop {
            let v = self.peek_non_space();
            if v.typ == ItemType::Variable {
                self.next();
                let after = self.peek();
                let next = self.peek_non_space();
                if next.typ == ItemType::Assign || next.typ == ItemType::Declare {
                    is_assign = next.typ == ItemType::Assign;
                    self.next_non_space();
                    decl.push(self.new_var(v.pos, &v.val));
                    self.vars.push(v.val.to_string());
                } else if next.typ == ItemType::Char && &*next.val == "," {
                    self.next_non_space();
                    decl.push(self.new_var(v.pos, &v.val));
                    self.vars.push(v.val.to_string());
                    if context == "range" && decl.len() < 2 {
                        match self.peek_non_space().typ {
                            ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                                continue 'decls;
                            }
                            _ => return self.errorf("range can only initialize variables"),
                        }
                    }
                    return self.errorf(format!("too many declarations in {context}"));
                } else if after.typ == ItemType::Space {
                    self.backup3(v, after);
                } else {
                    self.backup2(v);
                }
            }
            break;
        }
        loop {
            let token = self.next_non_space();
            if token.typ == end {
                let pipe = PipeNode {
                    pos,
                    line,
                    is_assign,
                    decl: decl.into_boxed_slice(),
                    cmds: take_from(&mut self.cmd_stack, base),
                };
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match token.typ {
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let c = self.command()?;
                    self.cmd_stack.push(c);
                }
                _ => return self.unexpected(&token, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &PipeNode, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.errorf(format!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(
                Arg::Bool { .. }
                | Arg::Dot { .. }
                | Arg::Nil { .. }
                | Arg::Number(_)
                | Arg::String { .. },
            ) = c.args.first()
            {
                return self.errorf(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    fn parse_control(&mut self, context: &str) -> PResult<BranchNode> {
        if self.control_depth >= MAX_CONTROL_DEPTH {
            return self.errorf("max nesting depth exceeded");
        }
        self.control_depth += 1;
        let mark = self.vars.len();
        let r = super::stack::guard(|| self.parse_control_inner(context), |e| e);
        self.vars.truncate(mark);
        self.control_depth -= 1;
        r
    }

    fn parse_control_inner(&mut self, context: &str) -> PResult<BranchNode> {
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let r = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = r?;
        let mut else_list = None;
        if let Node::Else { pos, .. } = next {
            if context == "if" && self.peek().typ == ItemType::If {
                self.next();
                let n = self.if_control()?;
                else_list = Some(ListNode {
                    pos,
                    nodes: Box::new([n]),
                });
            } else if context == "with" && self.peek().typ == ItemType::With {
                self.next();
                let n = self.with_control()?;
                else_list = Some(ListNode {
                    pos,
                    nodes: Box::new([n]),
                });
            } else {
                let (l, next) = self.item_list()?;
                if !matches!(next, Node::End { .. }) {
                    let mut s = String::new();
                    write_node(&mut s, &next, self.source, false);
                    return self.errorf(format!("expected end; found {s}"));
                }
                else_list = Some(l);
            }
        }
        Ok(BranchNode {
            pos: pipe.pos,
            line: pipe.line,
            pipe,
            list,
            else_list,
        })
    }

    fn if_control(&mut self) -> PResult<Node> {
        Ok(Node::If(Box::new(self.parse_control("if")?)))
    }
    fn range_control(&mut self) -> PResult<Node> {
        Ok(Node::Range(Box::new(self.parse_control("range")?)))
    }
    fn with_control(&mut self) -> PResult<Node> {
        Ok(Node::With(Box::new(self.parse_control("with")?)))
    }

    fn end_control(&mut self) -> PResult<Node> {
        let t = self.expect(ItemType::RightDelim, "end")?;
        Ok(Node::End { pos: t.pos })
    }

    fn else_control(&mut self) -> PResult<Node> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            return Ok(Node::Else {
                pos: peek.pos,
                line: peek.line,
            });
        }
        let t = self.expect(ItemType::RightDelim, "else")?;
        Ok(Node::Else {
            pos: t.pos,
            line: t.line,
        })
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        if self.control_depth >= MAX_CONTROL_DEPTH {
            return self.errorf("max nesting depth exceeded");
        }
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemType::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        self.control_depth += 1;
        let r = super::stack::guard(|| self.item_list(), |e| e);
        self.control_depth -= 1;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        let (root, end) = r?;
        if !matches!(end, Node::End { .. }) {
            let mut s = String::new();
            write_node(&mut s, &end, self.source, false);
            return self.errorf(format!("unexpected {s} in {CONTEXT}"));
        }
        self.add(name.clone(), root)?;
        Ok(Node::Template(Box::new(TemplateNode {
            pos: token.pos,
            line: token.line,
            name,
            pipe: Some(pipe),
        })))
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, ItemType::RightDelim)?);
        }
        Ok(Node::Template(Box::new(TemplateNode {
            pos: token.pos,
            line: token.line,
            name,
            pipe,
        })))
    }

    fn parse_template_name(&mut self, token: &Item<'_>, context: &str) -> PResult<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => match unquote(&token.val) {
                Some(s) => Ok(s),
                None => self.errorf("invalid syntax"),
            },
            _ => self.unexpected(token, context),
        }
    }

    fn command(&mut self) -> PResult<CommandNode> {
        let pos = self.peek_non_space().pos;
        let base = self.arg_stack.len();
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                self.arg_stack.push(op);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return self.unexpected(&token, "operand"),
            }
            break;
        }
        if self.arg_stack.len() == base {
            return self.errorf("empty command");
        }
        Ok(CommandNode {
            pos,
            args: take_from(&mut self.arg_stack, base),
        })
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ == ItemType::Field {
            let pos = self.peek().pos;
            let base = self.name_stack.len();
            while self.peek().typ == ItemType::Field {
                let f = self.next().val;
                let f = f.strip_prefix('.').unwrap_or(&f);
                if f.is_empty() {
                    return self.errorf("empty field");
                }
                let n = self.name(f);
                self.name_stack.push(n);
            }
            return match node {
                Arg::Field { ident, .. } => Ok(Some(Arg::Field {
                    pos,
                    ident: self.joined(ident, base),
                })),
                Arg::Variable(v) => Ok(Some(Arg::Variable(VarNode {
                    pos,
                    ident: self.joined(v.ident, base),
                }))),
                Arg::Bool { .. }
                | Arg::String { .. }
                | Arg::Number(_)
                | Arg::Nil { .. }
                | Arg::Dot { .. } => self.errorf(format!(
                    "unexpected . after term {}",
                    quote(&arg_string(&node))
                )),
                node => Ok(Some(Arg::Chain {
                    pos,
                    node: Box::new(node),
                    field: take_from(&mut self.name_stack, base),
                })),
            };
        }
        Ok(Some(node))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.typ {
            ItemType::Identifier => {
                if !self.mode.skip_func_check && !self.funcs.has_function(&token.val) {
                    return self.errorf(format!("function {} not defined", quote(&token.val)));
                }
                Arg::Identifier {
                    pos,
                    name: self.name(&token.val),
                }
            }
            ItemType::Dot => Arg::Dot { pos },
            ItemType::Nil => Arg::Nil { pos },
            ItemType::Variable => {
                let v = self.new_var(pos, &token.val);
                if !self.vars.iter().any(|n| **n == *v.ident[0]) {
                    return self.errorf(format!("undefined variable {}", quote(&v.ident[0])));
                }
                Arg::Variable(v)
            }
            ItemType::Field => Arg::Field {
                pos,
                ident: split_names(&token.val[1..], |f| self.name(f)),
            },
            ItemType::Bool => Arg::Bool {
                pos,
                val: &*token.val == "true",
            },
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                match new_number(pos, &token.val, token.typ) {
                    Ok(n) => Arg::Number(Box::new(n)),
                    Err(e) => return self.errorf(e),
                }
            }
            ItemType::LeftParen => {
                if self.paren_depth >= self.mode.max_paren {
                    return self.errorf("max expression depth exceeded");
                }
                self.paren_depth += 1;
                let r = super::stack::guard(
                    || self.pipeline("parenthesized pipeline", ItemType::RightParen),
                    |e| e,
                );
                self.paren_depth -= 1;
                Arg::Pipe(Box::new(r?))
            }
            ItemType::String | ItemType::RawString => match unquote(&token.val) {
                Some(s) => Arg::String {
                    pos,
                    quoted: Box::from(&*token.val),
                    text: s.into_boxed_str(),
                },
                None => return self.errorf("invalid syntax"),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

/// Go's `newNumber`.
pub(crate) fn new_number(pos: usize, text: &str, typ: ItemType) -> Result<NumberNode, String> {
    let mut n = NumberNode {
        pos,
        is_int: false,
        is_uint: false,
        is_float: false,
        is_complex: false,
        int64: 0,
        uint64: 0,
        float64: 0.0,
        complex: (0.0, 0.0),
        text: text.to_string(),
    };
    match typ {
        ItemType::CharConstant => {
            let inner = &text[1..];
            let Some((c, tail)) = unquote_char(inner, '\'') else {
                return Err("invalid syntax".into());
            };
            if tail != "'" {
                return Err(format!("malformed character constant: {text}"));
            }
            let r = match c {
                UChar::Char(c) => c as u32,
                UChar::Byte(b) => u32::from(b),
            };
            n.int64 = i64::from(r);
            n.is_int = true;
            n.uint64 = u64::from(r);
            n.is_uint = true;
            n.float64 = f64::from(r);
            n.is_float = true;
            return Ok(n);
        }
        ItemType::Complex => {
            // "re+imi" or "re-imi".
            let body = &text[..text.len().saturating_sub(1)];
            let split = body
                .char_indices()
                .skip(1)
                .filter(|(i, c)| {
                    (*c == '+' || *c == '-')
                        && !matches!(body.as_bytes().get(i - 1), Some(b'e' | b'E' | b'p' | b'P'))
                })
                .map(|(i, _)| i)
                .last();
            let parsed =
                split.and_then(|i| Some((parse_float(&body[..i])?, parse_float(&body[i..])?)));
            let Some((re, im)) = parsed else {
                return Err("expected integer".into());
            };
            n.is_complex = true;
            n.complex = (re, im);
            simplify_complex(&mut n);
            return Ok(n);
        }
        _ => {}
    }
    if let Some(body) = text.strip_suffix('i')
        && let Some(f) = parse_float(body)
    {
        n.is_complex = true;
        n.complex = (0.0, f);
        simplify_complex(&mut n);
        return Ok(n);
    }
    let u = parse_uint(text);
    if let Some(u) = u {
        n.is_uint = true;
        n.uint64 = u;
    }
    if let Some(i) = parse_int(text) {
        n.is_int = true;
        n.int64 = i;
        if i == 0 {
            n.is_uint = true;
            n.uint64 = u.unwrap_or(0);
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float64 = n.int64 as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float64 = n.uint64 as f64;
    } else if let Some(f) = parse_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", quote(text)));
        }
        n.is_float = true;
        n.float64 = f;
        if !n.is_int
            && f.fract() == 0.0
            && (-9.223372036854776e18..9.223372036854776e18).contains(&f)
        {
            n.is_int = true;
            n.int64 = f as i64;
        }
        if !n.is_uint && f.fract() == 0.0 && (0.0..1.8446744073709552e19).contains(&f) {
            n.is_uint = true;
            n.uint64 = f as u64;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {}", quote(text)));
    }
    Ok(n)
}

fn simplify_complex(n: &mut NumberNode) {
    n.is_float = n.complex.1 == 0.0;
    if n.is_float {
        let f = n.complex.0;
        n.float64 = f;
        n.is_int = f.fract() == 0.0 && (-9.223372036854776e18..9.223372036854776e18).contains(&f);
        if n.is_int {
            n.int64 = f as i64;
        }
        n.is_uint = f.fract() == 0.0 && (0.0..1.8446744073709552e19).contains(&f);
        if n.is_uint {
            n.uint64 = f as u64;
        }
    }
}

/// Go's underscore rule for base-prefixed literals (`strconv` with base 0):
/// underscores only between digits or after the base prefix.
fn underscore_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = s.as_bytes();
    let mut saw = '^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1] | 0x20, b'b' | b'o' | b'x') {
        hex = (b[1] | 0x20) == b'x';
        i = 2;
        saw = '0';
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = '0';
        } else if c == b'_' {
            if saw != '0' {
                return false;
            }
            saw = '_';
        } else {
            if saw == '_' {
                return false;
            }
            saw = '!';
        }
        i += 1;
    }
    saw != '_'
}

/// `strconv.ParseUint(s, 0, 64)`.
pub(crate) fn parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() || s.starts_with(['+', '-']) {
        return None;
    }
    parse_base0(s)
}

fn parse_base0(s: &str) -> Option<u64> {
    let (radix, digits, prefixed) = if let Some(r) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        (16, r, true)
    } else if let Some(r) = s.strip_prefix("0b").or(s.strip_prefix("0B")) {
        (2, r, true)
    } else if let Some(r) = s.strip_prefix("0o").or(s.strip_prefix("0O")) {
        (8, r, true)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..], true)
    } else {
        (10, s, false)
    };
    let _ = prefixed;
    if digits.contains('_') && !underscore_ok(s) {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() || clean.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(&clean, radix).ok()
}

/// `strconv.ParseInt(s, 0, 64)`.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let u = parse_base0(body)?;
    if neg {
        if u <= 1u64 << 63 {
            Some((u as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

/// `strconv.ParseFloat(s, 64)` for the literals the lexer lets through
/// (decimal and hexadecimal mantissas, underscores after a base prefix).
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    if body.contains('_') && !underscore_ok(body) {
        return None;
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    let v = if let Some(h) = clean.strip_prefix("0x").or(clean.strip_prefix("0X")) {
        parse_hex_float(h)?
    } else {
        if !clean
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        {
            return None;
        }
        let f: f64 = clean.parse().ok()?;
        if f.is_infinite() {
            return None;
        }
        f
    };
    Some(if neg { -v } else { v })
}

fn parse_hex_float(h: &str) -> Option<f64> {
    let (mant, exp) = match h.find(['p', 'P']) {
        Some(i) => (&h[..i], h[i + 1..].parse::<i32>().ok()?),
        None => (h, 0),
    };
    let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
    if ip.is_empty() && fp.is_empty() {
        return None;
    }
    // A hexadecimal mantissa needs a 'p' exponent.
    if !h.contains(['p', 'P']) {
        return None;
    }
    let mut v = 0f64;
    for c in ip.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in fp.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let r = v * 2f64.powi(exp);
    if r.is_infinite() { None } else { Some(r) }
}

/// `String()` of a list with text as Go's tests print it (`%q`).
#[cfg(test)]
pub(crate) fn list_string_quoted(t: &Tree) -> String {
    let mut s = String::new();
    write_list(&mut s, &t.root, &t.source, true);
    s
}
