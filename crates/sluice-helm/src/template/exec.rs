//! The executor of Go's `text/template`: walks a parsed tree over a
//! [`Value`] with Go's rules for fields, maps, methods, variables, `range`,
//! `with`, `template`, function calls and printing, and Go's error texts
//! (`template: NAME:LINE:COL: executing "NAME" at <NODE>: MESSAGE`).

use std::any::{Any, TypeId};
use std::sync::Arc;

use super::parse::{
    Arg, BranchNode, CommandNode, FuncCheck, ListNode, Name, Node, NumberNode, PipeNode, Tree,
    VarNode, arg_string, is_empty_list, write_command, write_node, write_pipe,
};
use super::quote::quote;
use super::value::Value;
use super::{CallCtx, Error, FuncError, FuncMap, Host, MissingKey, Options, builtins};

/// A set of templates sharing functions and options (Go's `common`).
#[derive(Clone)]
pub(crate) struct Set {
    pub root: String,
    /// The templates, shared with clones until changed.
    pub trees: Arc<super::FastMap<String, Arc<Tree>>>,
    /// Templates added to a clone made for `tpl`: looked up first, so that a
    /// clone costs nothing however many templates the set has.
    pub overlay: super::FastMap<String, Arc<Tree>>,
    /// Whether additions go to `overlay` (a `tpl` clone).
    pub layered: bool,
    pub funcs: Arc<FuncMap>,
    pub options: Options,
}

impl FuncCheck for Set {
    fn has_function(&self, name: &str) -> bool {
        self.funcs.contains(name) || builtins::is_builtin(name)
    }
}

impl Set {
    pub fn new(root: &str, funcs: Arc<FuncMap>, options: Options) -> Self {
        Set {
            root: root.to_string(),
            trees: Default::default(),
            overlay: Default::default(),
            layered: false,
            funcs,
            options,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Tree>> {
        self.overlay.get(name).or_else(|| self.trees.get(name))
    }

    /// A copy whose additions stay its own (Go's `Clone` for `tpl`).
    pub fn layered_clone(&self) -> Set {
        Set {
            root: self.root.clone(),
            trees: self.trees.clone(),
            overlay: self.overlay.clone(),
            layered: true,
            funcs: self.funcs.clone(),
            options: self.options,
        }
    }

    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .trees
            .keys()
            .chain(self.overlay.keys())
            .cloned()
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Parses `text` as template `name` and adds its trees as Go's
    /// `Template.Parse` does (an empty body does not replace a template).
    /// Returns the top-level tree of `text`.
    pub fn parse(&mut self, name: &str, text: &Arc<str>) -> Result<Arc<Tree>, Error> {
        let trees = super::parse::parse(name, text, self).map_err(Error::Parse)?;
        self.add_parsed(name, trees)
    }

    /// Parses each `(name, text)` as [`Set::parse`] would, one after the
    /// other, but on up to `threads` threads: parsing one text does not
    /// depend on the others, only adding the trees does, and that is done
    /// in order. On failure, the index of the first text (in order) that
    /// failed and its error; the texts before it are added, as they would
    /// have been one by one.
    pub fn parse_all(
        &mut self,
        texts: &[(&str, Arc<str>)],
        threads: usize,
    ) -> Result<(), (usize, Error)> {
        let parsed = {
            let this: &Set = self;
            crate::par::map(texts, threads, |(name, text)| {
                super::stack::enter(|| super::parse::parse(name, text, this))
            })
        };
        for (i, (r, (name, _))) in parsed.into_iter().zip(texts).enumerate() {
            let trees = r.map_err(|e| (i, Error::Parse(e)))?;
            self.add_parsed(name, trees).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    fn add_parsed(&mut self, name: &str, trees: Vec<Tree>) -> Result<Arc<Tree>, Error> {
        let mut top = None;
        for t in trees {
            let t = Arc::new(t);
            if t.name == name {
                top = Some(t.clone());
            }
            let keep_old = self.get(&t.name).is_some() && is_empty_list(&t.root, &t.source);
            if !keep_old {
                if self.layered {
                    self.overlay.insert(t.name.clone(), t);
                } else {
                    Arc::make_mut(&mut self.trees).insert(t.name.clone(), t);
                }
            }
        }
        match top {
            Some(t) => Ok(t),
            None => Err(Error::Parse(format!("template: {name}: no tree"))),
        }
    }
}

/// A value during evaluation: Go's `reflect.Value` as far as templates can
/// tell kinds apart.
#[derive(Clone, Debug)]
pub(crate) enum EV {
    /// The invalid (zero) `reflect.Value`: "no value".
    Invalid,
    /// A value read out of an `interface{}` slot (a map element, a list
    /// element): Go's type for it is `interface {}`; `Iface(Nil)` is a nil
    /// interface.
    Iface(Value),
    /// A value of its own concrete type.
    Val(Value),
}

impl EV {
    /// The value as a function argument of type `interface{}`.
    pub fn to_value(&self) -> Value {
        match self {
            EV::Invalid => Value::Nil,
            EV::Iface(v) | EV::Val(v) => v.clone(),
        }
    }
    /// Go's `indirectInterface`: a nil interface becomes invalid.
    pub fn concrete(&self) -> Option<&Value> {
        match self {
            EV::Invalid => None,
            EV::Iface(Value::Nil) | EV::Val(Value::Nil) => None,
            EV::Iface(v) | EV::Val(v) => Some(v),
        }
    }
    /// Go's `%T` of the reflect.Value.
    fn type_name(&self) -> &str {
        match self {
            EV::Invalid => "<nil>",
            EV::Iface(_) => "interface {}",
            EV::Val(v) => v.type_name(),
        }
    }
}

#[derive(Clone, Copy)]
enum At<'t> {
    None,
    Node(&'t Node),
    Pipe(&'t PipeNode),
    Cmd(&'t CommandNode),
    Arg(&'t Arg),
    Var(&'t VarNode),
}

impl At<'_> {
    fn pos(&self) -> usize {
        match self {
            At::None => 0,
            At::Node(n) => n.pos(),
            At::Pipe(p) => p.pos,
            At::Cmd(c) => c.pos,
            At::Arg(a) => a.pos(),
            At::Var(v) => v.pos,
        }
    }
    fn context(&self, src: &str) -> String {
        let mut s = String::new();
        match self {
            At::None => {}
            At::Node(n) => write_node(&mut s, n, src, false),
            At::Pipe(p) => write_pipe(&mut s, p),
            At::Cmd(c) => write_command(&mut s, c),
            At::Arg(a) => s = arg_string(a),
            At::Var(v) => s = v.ident.join("."),
        }
        s
    }
}

#[derive(PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

struct Frame<'t> {
    tree: &'t Tree,
    vars: Vec<(&'t str, EV)>,
    at: At<'t>,
}

type R<T> = Result<T, Error>;

pub(crate) struct Engine {
    set: Arc<Set>,
    depth: usize,
    written: usize,
    steps: u64,
    state: super::FastMap<TypeId, Box<dyn Any + Send>>,
}

impl Host for Engine {
    fn execute_template(&mut self, name: &str, data: Value) -> Result<String, Error> {
        let Some(tree) = self.set.get(name).cloned() else {
            return Err(Error::Exec(format!(
                "template: no template {} associated with template {}",
                quote(name),
                quote(&self.set.root)
            )));
        };
        self.run_nested(&tree, data)
    }

    fn parse_and_execute(&mut self, name: &str, text: &str, data: Value) -> Result<String, Error> {
        let mut clone = self.set.layered_clone();
        let tree = clone.parse(name, &Arc::from(text))?;
        let saved = std::mem::replace(&mut self.set, Arc::new(clone));
        let r = self.run_nested(&tree, data);
        self.set = saved;
        r
    }

    fn depth(&self) -> usize {
        self.depth
    }

    fn root_name(&self) -> &str {
        &self.set.root
    }

    fn options(&self) -> Options {
        self.set.options
    }

    fn state_map(&mut self) -> &mut super::FastMap<TypeId, Box<dyn Any + Send>> {
        &mut self.state
    }
}

fn data_ev(data: Value) -> EV {
    match data {
        Value::Nil => EV::Invalid,
        v => EV::Val(v),
    }
}

impl Engine {
    pub fn new(set: Arc<Set>) -> Self {
        Engine {
            set,
            depth: 0,
            written: 0,
            steps: 0,
            state: Default::default(),
        }
    }

    /// Executes `tree` with `data` as Go's `Template.Execute`.
    pub fn run(&mut self, tree: &Tree, data: Value) -> R<String> {
        let dot = data_ev(data);
        let mut fr = Frame {
            tree,
            vars: vec![("$", dot.clone())],
            at: At::None,
        };
        let mut out = String::new();
        self.walk_list(&mut fr, &dot, &tree.root, &mut out)?;
        Ok(out)
    }

    fn run_nested(&mut self, tree: &Tree, data: Value) -> R<String> {
        if self.depth >= self.set.options.max_depth {
            return Err(Error::Exec(format!(
                "template: {}: exceeded maximum template depth ({})",
                tree.name, self.set.options.max_depth
            )));
        }
        self.depth += 1;
        let r = self.run(tree, data);
        self.depth -= 1;
        r
    }

    fn errorf(&self, fr: &Frame<'_>, msg: impl std::fmt::Display) -> Error {
        let name = &fr.tree.name;
        match fr.at {
            At::None => Error::Exec(format!("template: {name}: {msg}")),
            at => Error::Exec(format!(
                "template: {}: executing {} at <{}>: {msg}",
                fr.tree.location(at.pos()),
                quote(name),
                at.context(&fr.tree.source)
            )),
        }
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.set.options.max_steps {
            return Err(Error::Exec(format!(
                "template: execution exceeds the limit of {} steps",
                self.set.options.max_steps
            )));
        }
        Ok(())
    }

    fn write(&mut self, out: &mut String, s: &str) -> R<()> {
        self.written = self.written.saturating_add(s.len());
        if self.written > self.set.options.max_output {
            return Err(Error::Exec(format!(
                "template: output exceeds the limit of {} bytes",
                self.set.options.max_output
            )));
        }
        out.push_str(s);
        Ok(())
    }

    fn walk_list<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        list: &'t ListNode,
        out: &mut String,
    ) -> R<Flow> {
        for n in &list.nodes {
            let f = self.walk(fr, dot, n, out)?;
            if f != Flow::Normal {
                return Ok(f);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        node: &'t Node,
        out: &mut String,
    ) -> R<Flow> {
        super::stack::guard(|| self.walk_inner(fr, dot, node, out), Error::Exec)
    }

    fn walk_inner<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        node: &'t Node,
        out: &mut String,
    ) -> R<Flow> {
        self.step()?;
        fr.at = At::Node(node);
        match node {
            Node::Action { pipe, .. } => {
                let v = self.eval_pipeline(fr, dot, pipe)?;
                if pipe.decl.is_empty() {
                    fr.at = At::Node(node);
                    match v.concrete() {
                        Some(Value::String(s)) => self.write(out, s)?,
                        _ => {
                            let s = print_value(&v);
                            self.write(out, &s)?;
                        }
                    }
                }
                Ok(Flow::Normal)
            }
            Node::Break { .. } => Ok(Flow::Break),
            Node::Continue { .. } => Ok(Flow::Continue),
            Node::Comment { .. } => Ok(Flow::Normal),
            Node::If(b) => self.walk_if_or_with(fr, dot, b, false, out),
            Node::With(b) => self.walk_if_or_with(fr, dot, b, true, out),
            Node::Range(b) => self.walk_range(fr, dot, node, b, out),
            Node::Template(t) => {
                self.walk_template(fr, dot, &t.name, t.pipe.as_ref(), out)?;
                Ok(Flow::Normal)
            }
            &Node::Text { pos, len } => {
                self.write(out, fr.tree.text(pos, len))?;
                Ok(Flow::Normal)
            }
            Node::End { .. } | Node::Else { .. } => Err(self.errorf(fr, "unknown node")),
        }
    }

    fn walk_if_or_with<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        b: &'t BranchNode,
        with: bool,
        out: &mut String,
    ) -> R<Flow> {
        let mark = fr.vars.len();
        let r = (|| {
            let val = self.eval_pipeline(fr, dot, &b.pipe)?;
            if truth(&val) {
                if with {
                    self.walk_list(fr, &val, &b.list, out)
                } else {
                    self.walk_list(fr, dot, &b.list, out)
                }
            } else if let Some(e) = &b.else_list {
                self.walk_list(fr, dot, e, out)
            } else {
                Ok(Flow::Normal)
            }
        })();
        fr.vars.truncate(mark);
        r
    }

    fn walk_range<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        node: &'t Node,
        r: &'t BranchNode,
        out: &mut String,
    ) -> R<Flow> {
        fr.at = At::Node(node);
        let mark0 = fr.vars.len();
        let res = self.walk_range_inner(fr, dot, r, out);
        fr.vars.truncate(mark0);
        res.map(|()| Flow::Normal)
    }

    fn set_top_var(fr: &mut Frame<'_>, n: usize, v: EV) {
        let len = fr.vars.len();
        if let Some(slot) = len.checked_sub(n).and_then(|i| fr.vars.get_mut(i)) {
            slot.1 = v;
        }
    }

    fn set_var(&self, fr: &mut Frame<'_>, name: &str, v: EV) -> R<()> {
        for slot in fr.vars.iter_mut().rev() {
            if slot.0 == name {
                slot.1 = v;
                return Ok(());
            }
        }
        Err(self.errorf(fr, format!("undefined variable: {name}")))
    }

    /// One iteration of `range`; `Ok(false)` on `{{break}}`.
    fn one_iteration<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        r: &'t BranchNode,
        mark: usize,
        index: EV,
        elem: EV,
        out: &mut String,
    ) -> R<bool> {
        self.step()?;
        let decl = &r.pipe.decl;
        if !decl.is_empty() {
            if r.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(fr, &decl[0].ident[0], index.clone())?;
                } else {
                    self.set_var(fr, &decl[0].ident[0], elem.clone())?;
                }
            } else {
                Self::set_top_var(fr, 1, elem.clone());
            }
        }
        if decl.len() > 1 {
            if r.pipe.is_assign {
                self.set_var(fr, &decl[1].ident[0], elem.clone())?;
            } else {
                Self::set_top_var(fr, 2, index);
            }
        }
        let f = self.walk_list(fr, &elem, &r.list, out);
        fr.vars.truncate(mark);
        Ok(f? != Flow::Break)
    }

    fn walk_range_inner<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        r: &'t BranchNode,
        out: &mut String,
    ) -> R<()> {
        let val = self.eval_pipeline(fr, dot, &r.pipe)?;
        let mark = fr.vars.len();
        let ran = match val.concrete() {
            None => false,
            Some(Value::Int(n)) => {
                if r.pipe.decl.len() > 1 {
                    return Err(self.errorf(
                        fr,
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                let n = *n;
                let mut i = 0;
                while i < n {
                    if !self.one_iteration(fr, r, mark, EV::Invalid, EV::Val(Value::Int(i)), out)? {
                        break;
                    }
                    i += 1;
                }
                n > 0
            }
            Some(Value::Uint(n)) => {
                if r.pipe.decl.len() > 1 {
                    return Err(self.errorf(
                        fr,
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                let n = *n;
                let mut i = 0;
                while i < n {
                    if !self.one_iteration(
                        fr,
                        r,
                        mark,
                        EV::Invalid,
                        EV::Val(Value::Uint(i)),
                        out,
                    )? {
                        break;
                    }
                    i += 1;
                }
                n > 0
            }
            Some(Value::List(l)) => {
                let l = l.clone();
                for (i, e) in l.iter().enumerate() {
                    if !self.one_iteration(
                        fr,
                        r,
                        mark,
                        EV::Val(Value::Int(i as i64)),
                        EV::Iface(e.clone()),
                        out,
                    )? {
                        break;
                    }
                }
                !l.is_empty()
            }
            Some(Value::Bytes(b)) => {
                let b = b.clone();
                for (i, e) in b.iter().enumerate() {
                    if !self.one_iteration(
                        fr,
                        r,
                        mark,
                        EV::Val(Value::Int(i as i64)),
                        EV::Val(Value::Uint(u64::from(*e))),
                        out,
                    )? {
                        break;
                    }
                }
                !b.is_empty()
            }
            Some(Value::Map(m)) => {
                let entries = m.entries();
                for (k, v) in &entries {
                    if !self.one_iteration(
                        fr,
                        r,
                        mark,
                        EV::Val(Value::String(k.clone())),
                        EV::Iface(v.clone()),
                        out,
                    )? {
                        break;
                    }
                }
                !entries.is_empty()
            }
            Some(Value::Object(o)) => match o.range_entries() {
                Some(entries) => {
                    for (k, v) in &entries {
                        if !self.one_iteration(
                            fr,
                            r,
                            mark,
                            EV::Val(k.clone()),
                            EV::Val(v.clone()),
                            out,
                        )? {
                            break;
                        }
                    }
                    !entries.is_empty()
                }
                None => {
                    return Err(
                        self.errorf(fr, format!("range can't iterate over {}", o.display()))
                    );
                }
            },
            Some(v) => {
                return Err(self.errorf(fr, format!("range can't iterate over {}", v.go_string())));
            }
        };
        if !ran && let Some(e) = &r.else_list {
            self.walk_list(fr, dot, e, out)?;
        }
        Ok(())
    }

    fn walk_template<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        name: &str,
        pipe: Option<&'t PipeNode>,
        out: &mut String,
    ) -> R<()> {
        let Some(tree) = self.set.get(name).cloned() else {
            return Err(self.errorf(fr, format!("template {} not defined", quote(name))));
        };
        if self.depth >= self.set.options.max_depth {
            return Err(self.errorf(
                fr,
                format!(
                    "exceeded maximum template depth ({})",
                    self.set.options.max_depth
                ),
            ));
        }
        let dot = match pipe {
            Some(p) => self.eval_pipeline(fr, dot, p)?,
            None => EV::Invalid,
        };
        self.depth += 1;
        let mut nf = Frame {
            tree: &tree,
            vars: vec![("$", dot.clone())],
            at: At::None,
        };
        let r = self.walk_list(&mut nf, &dot, &tree.root, out);
        self.depth -= 1;
        r.map(|_| ())
    }

    fn eval_pipeline<'t>(&mut self, fr: &mut Frame<'t>, dot: &EV, pipe: &'t PipeNode) -> R<EV> {
        super::stack::guard(|| self.eval_pipeline_inner(fr, dot, pipe), Error::Exec)
    }

    fn eval_pipeline_inner<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        pipe: &'t PipeNode,
    ) -> R<EV> {
        fr.at = At::Pipe(pipe);
        let mut value: Option<EV> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(fr, dot, cmd, value.take())?;
            // A value held in an interface{} is dug out of it.
            value = Some(match v {
                EV::Iface(Value::Nil) | EV::Val(Value::Nil) => EV::Invalid,
                EV::Iface(v) => EV::Val(v),
                v => v,
            });
        }
        let value = value.unwrap_or(EV::Invalid);
        for v in &pipe.decl {
            if pipe.is_assign {
                self.set_var(fr, &v.ident[0], value.clone())?;
            } else {
                fr.vars.push((&v.ident[0], value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, fr: &Frame<'_>, args: &[Arg], fin: &Option<EV>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            let first = args.first().map(arg_string).unwrap_or_default();
            return Err(self.errorf(fr, format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_command<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        cmd: &'t CommandNode,
        fin: Option<EV>,
    ) -> R<EV> {
        let Some(first) = cmd.args.first() else {
            return Err(self.errorf(fr, "empty command"));
        };
        match first {
            Arg::Field { ident, .. } => {
                return self.eval_field_node(fr, dot, first, ident, Some(&cmd.args), fin);
            }
            Arg::Chain { node, field, .. } => {
                return self.eval_chain_node(fr, dot, first, node, field, Some(&cmd.args), fin);
            }
            Arg::Identifier { name, .. } => {
                return self.eval_function(
                    fr,
                    dot,
                    first,
                    At::Cmd(cmd),
                    name,
                    Some(&cmd.args),
                    fin,
                );
            }
            Arg::Pipe(p) => {
                self.not_a_function(fr, &cmd.args, &fin)?;
                return self.eval_pipeline(fr, dot, p);
            }
            Arg::Variable(v) => return self.eval_variable_node(fr, dot, v, Some(&cmd.args), fin),
            _ => {}
        }
        fr.at = At::Arg(first);
        self.not_a_function(fr, &cmd.args, &fin)?;
        match first {
            Arg::Bool { val, .. } => Ok(EV::Val(Value::Bool(*val))),
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Err(self.errorf(fr, "nil is not a command")),
            Arg::Number(n) => self.ideal_constant(fr, first, n),
            Arg::String { text, .. } => Ok(EV::Val(Value::String(text.to_string()))),
            _ => Err(self.errorf(
                fr,
                format!("can't evaluate command {}", quote(&arg_string(first))),
            )),
        }
    }

    fn ideal_constant<'t>(&mut self, fr: &mut Frame<'t>, at: &'t Arg, n: &NumberNode) -> R<EV> {
        fr.at = At::Arg(at);
        let t = &n.text;
        let is_hex_int = t.len() > 2
            && t.starts_with('0')
            && (t.as_bytes()[1] | 0x20) == b'x'
            && !t.contains(['p', 'P']);
        let is_rune = t.starts_with('\'');
        if n.is_complex {
            return Err(self.errorf(fr, format!("complex constant {t} is not supported")));
        }
        if n.is_float && !is_hex_int && !is_rune && t.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(EV::Val(Value::Float(n.float64)));
        }
        if n.is_int {
            return Ok(EV::Val(Value::Int(n.int64)));
        }
        if n.is_uint {
            return Err(self.errorf(fr, format!("{t} overflows int")));
        }
        Ok(EV::Invalid)
    }

    fn eval_field_node<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        node: &'t Arg,
        ident: &'t [Name],
        args: Option<&'t [Arg]>,
        fin: Option<EV>,
    ) -> R<EV> {
        fr.at = At::Arg(node);
        self.eval_field_chain(fr, dot, dot.clone(), At::Arg(node), ident, args, fin)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_chain_node<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        chain: &'t Arg,
        node: &'t Arg,
        field: &'t [Name],
        args: Option<&'t [Arg]>,
        fin: Option<EV>,
    ) -> R<EV> {
        fr.at = At::Arg(chain);
        if field.is_empty() {
            return Err(self.errorf(fr, "internal error: no fields in evalChainNode"));
        }
        if let Arg::Nil { .. } = node {
            return Err(self.errorf(
                fr,
                format!("indirection through explicit nil in {}", arg_string(chain)),
            ));
        }
        let pipe = self.eval_arg(fr, dot, node)?;
        self.eval_field_chain(fr, dot, pipe, At::Arg(chain), field, args, fin)
    }

    fn eval_variable_node<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        var: &'t VarNode,
        args: Option<&'t [Arg]>,
        fin: Option<EV>,
    ) -> R<EV> {
        fr.at = At::Var(var);
        let name = &var.ident[0];
        let Some(value) = fr
            .vars
            .iter()
            .rev()
            .find(|(n, _)| *n == &**name)
            .map(|(_, v)| v.clone())
        else {
            return Err(self.errorf(fr, format!("undefined variable: {name}")));
        };
        if var.ident.len() == 1 {
            self.not_a_function(fr, args.unwrap_or(&[]), &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(fr, dot, value, At::Var(var), &var.ident[1..], args, fin)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field_chain<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        mut receiver: EV,
        node: At<'t>,
        ident: &'t [Name],
        args: Option<&'t [Arg]>,
        fin: Option<EV>,
    ) -> R<EV> {
        let n = ident.len();
        for id in &ident[..n.saturating_sub(1)] {
            receiver = self.eval_field(fr, dot, id, node, None, None, receiver)?;
        }
        match ident.last() {
            Some(last) => self.eval_field(fr, dot, last, node, args, fin, receiver),
            None => Ok(receiver),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_field<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        name: &str,
        node: At<'t>,
        args: Option<&'t [Arg]>,
        fin: Option<EV>,
        receiver: EV,
    ) -> R<EV> {
        let v = match &receiver {
            EV::Invalid => {
                if self.set.options.missing_key == MissingKey::Error {
                    return Err(
                        self.errorf(fr, format!("nil data; no entry for key {}", quote(name)))
                    );
                }
                return Ok(EV::Invalid);
            }
            EV::Iface(v) | EV::Val(v) => v,
        };
        let typ = || receiver.type_name().to_string();
        let has_args = args.is_some_and(|a| a.len() > 1) || fin.is_some();
        match v {
            Value::Nil => Err(self.errorf(fr, format!("nil pointer evaluating {}.{name}", typ()))),
            Value::Object(o) => {
                let o = o.clone();
                if o.has_method(name) {
                    return self.eval_call(fr, dot, Callee::Method(&o), node, name, args, fin);
                }
                if let Some(f) = o.field(name) {
                    if has_args {
                        return Err(self.errorf(
                            fr,
                            format!("{name} has arguments but cannot be invoked as function"),
                        ));
                    }
                    return Ok(EV::Val(f));
                }
                // A method the object did not declare with has_method.
                if o.call(name, &[]).is_some() || has_args {
                    return self.eval_call(fr, dot, Callee::Method(&o), node, name, args, fin);
                }
                Err(self.errorf(fr, format!("can't evaluate field {name} in type {}", typ())))
            }
            Value::Map(m) => {
                if has_args {
                    return Err(
                        self.errorf(fr, format!("{name} is not a method but has arguments"))
                    );
                }
                match m.get(name) {
                    Some(x) => Ok(EV::Iface(x)),
                    None => {
                        match self.set.options.missing_key {
                            MissingKey::Default => Ok(EV::Invalid),
                            MissingKey::Zero => Ok(EV::Iface(Value::Nil)),
                            MissingKey::Error => Err(self
                                .errorf(fr, format!("map has no entry for key {}", quote(name)))),
                        }
                    }
                }
            }
            _ => Err(self.errorf(fr, format!("can't evaluate field {name} in type {}", typ()))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_function<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        ident: &'t Arg,
        cmd: At<'t>,
        name: &str,
        args: Option<&'t [Arg]>,
        fin: Option<EV>,
    ) -> R<EV> {
        fr.at = At::Arg(ident);
        if let Some(f) = self.set.funcs.get(name).cloned() {
            return self.eval_call(fr, dot, Callee::Func(&f), cmd, name, args, fin);
        }
        if builtins::is_builtin(name) {
            return self.eval_call(fr, dot, Callee::Builtin, cmd, name, args, fin);
        }
        Err(self.errorf(fr, format!("{} is not a defined function", quote(name))))
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_call<'t>(
        &mut self,
        fr: &mut Frame<'t>,
        dot: &EV,
        callee: Callee<'_>,
        node: At<'t>,
        name: &str,
        args: Option<&'t [Arg]>,
        fin: Option<EV>,
    ) -> R<EV> {
        let args: &[Arg] = match args {
            Some(a) if !a.is_empty() => &a[1..],
            _ => &[],
        };
        let num_in = args.len() + usize::from(fin.is_some());
        let arity_at = fr.at;
        if let Callee::Builtin = callee {
            if let Some(msg) = builtins::check_arity(name, num_in) {
                return Err(self.errorf(fr, msg));
            }
            if name == "and" || name == "or" {
                let want = name == "or";
                let mut v = EV::Invalid;
                for a in args {
                    v = self.eval_arg(fr, dot, a)?;
                    if truth(&v) == want {
                        return Ok(v);
                    }
                }
                if let Some(f) = fin {
                    v = f;
                }
                return Ok(v);
            }
        }
        let mut argv = Vec::with_capacity(num_in);
        for a in args {
            argv.push(self.eval_arg(fr, dot, a)?);
        }
        if let Some(f) = fin {
            argv.push(f);
        }
        self.step()?;
        let result = match callee {
            Callee::Builtin => {
                if name == "printf" {
                    // printf's format is a Go string parameter.
                    let bad = argv
                        .first()
                        .is_some_and(|x| !matches!(x.concrete(), Some(Value::String(_))));
                    if bad {
                        if let Some(a) = args.first() {
                            fr.at = At::Arg(a);
                        }
                        let msg = arg_type_message(args.first(), argv.first(), "string");
                        return Err(self.errorf(fr, msg));
                    }
                }
                if name == "call" {
                    let callee_name = args.first().map(arg_string).unwrap_or_default();
                    builtins::call(&callee_name, &argv)
                } else {
                    builtins::call_builtin(name, &argv)
                }
            }
            Callee::Func(f) => {
                let mut vals: Vec<Value> = argv.iter().map(EV::to_value).collect();
                loop {
                    let mut ctx = CallCtx { host: self };
                    let r = f(&mut ctx, &vals);
                    // Go passes no value (a missing key dug out of a pipeline or a variable)
                    // or the literal `nil` to a map or slice parameter as that type's nil:
                    // the function runs, reading an empty map or slice.
                    if let Err(FuncError::ArgType { index, want }) = &r
                        && (matches!(argv.get(*index), Some(EV::Invalid))
                            || matches!(args.get(*index), Some(Arg::Nil { .. })))
                        && let Some(zero) = typed_nil(want)
                        && matches!(vals.get(*index), Some(Value::Nil))
                    {
                        if name == "set" && *index == 0 {
                            fr.at = node;
                            return Err(self
                                .errorf(fr, "error calling set: assignment to entry in nil map"));
                        }
                        vals[*index] = zero;
                        continue;
                    }
                    break r.map(EV::Val);
                }
            }
            Callee::Method(o) => {
                let vals: Vec<Value> = argv.iter().map(EV::to_value).collect();
                match o.call(name, &vals) {
                    Some(r) => r.map(EV::Val),
                    None => {
                        return Err(self.errorf(
                            fr,
                            format!("can't evaluate field {name} in type {}", o.type_name()),
                        ));
                    }
                }
            }
        };
        match result {
            Ok(v) => Ok(v),
            Err(FuncError::Failed(msg)) => {
                fr.at = node;
                Err(self.errorf(fr, format!("error calling {name}: {msg}")))
            }
            Err(FuncError::Args(msg)) => Err(self.errorf(fr, msg)),
            Err(FuncError::Arity { want, variadic }) => {
                fr.at = arity_at;
                let least = if variadic { "at least " } else { "" };
                Err(self.errorf(
                    fr,
                    format!("wrong number of args for {name}: want {least}{want} got {num_in}"),
                ))
            }
            Err(FuncError::ArgType { index, want }) => {
                if let Some(a) = args.get(index) {
                    fr.at = At::Arg(a);
                }
                let msg = arg_type_message(args.get(index), argv.get(index), &want);
                Err(self.errorf(fr, msg))
            }
        }
    }

    fn eval_arg<'t>(&mut self, fr: &mut Frame<'t>, dot: &EV, n: &'t Arg) -> R<EV> {
        fr.at = At::Arg(n);
        match n {
            Arg::Dot { .. } => Ok(dot.clone()),
            Arg::Nil { .. } => Ok(EV::Iface(Value::Nil)),
            Arg::Field { ident, .. } => {
                self.eval_field_node(fr, dot, n, ident, Some(std::slice::from_ref(n)), None)
            }
            Arg::Variable(v) => self.eval_variable_node(fr, dot, v, None, None),
            Arg::Pipe(p) => self.eval_pipeline(fr, dot, p),
            Arg::Identifier { name, .. } => {
                self.eval_function(fr, dot, n, At::Arg(n), name, None, None)
            }
            Arg::Chain { node, field, .. } => {
                self.eval_chain_node(fr, dot, n, node, field, None, None)
            }
            Arg::Bool { val, .. } => Ok(EV::Val(Value::Bool(*val))),
            Arg::Number(num) => self.ideal_constant(fr, n, num),
            Arg::String { text, .. } => Ok(EV::Val(Value::String(text.to_string()))),
        }
    }
}

enum Callee<'a> {
    Builtin,
    Func(&'a super::Func),
    Method(&'a Arc<dyn super::Object>),
}

/// What Go passes for no value (or `nil`) given to a parameter of type `want` that can be
/// nil: a nil map or slice, read as an empty one; `None` for the types that cannot be nil.
fn typed_nil(want: &str) -> Option<Value> {
    if want.starts_with("map[") {
        Some(Value::Map(super::Map::new()))
    } else if want.starts_with("[]") {
        Some(Value::list(Vec::new()))
    } else {
        None
    }
}

/// Go's message for an argument that does not fit its parameter type
/// (`evalArg` for literals, `validateType` for values).
fn arg_type_message(node: Option<&Arg>, v: Option<&EV>, want: &str) -> String {
    match node {
        Some(Arg::Nil { .. }) => return format!("cannot assign nil to {want}"),
        Some(n @ (Arg::Bool { .. } | Arg::Number(_) | Arg::String { .. })) => {
            let found = arg_string(n);
            return match want {
                "bool" => format!("expected bool; found {found}"),
                "string" => format!("expected string; found {found}"),
                "float64" | "float32" => format!("expected float; found {found}"),
                "int" | "int8" | "int16" | "int32" | "int64" => {
                    format!("expected integer; found {found}")
                }
                "uint" | "uint8" | "uint16" | "uint32" | "uint64" | "uintptr" => {
                    format!("expected unsigned integer; found {found}")
                }
                _ => format!("can't handle {found} for arg of type {want}"),
            };
        }
        _ => {}
    }
    match v {
        None | Some(EV::Invalid) => format!("invalid value; expected {want}"),
        Some(EV::Iface(Value::Nil) | EV::Val(Value::Nil)) => {
            format!("wrong type for value; expected {want}; got interface {{}}")
        }
        Some(EV::Iface(x) | EV::Val(x)) => {
            format!(
                "wrong type for value; expected {want}; got {}",
                x.type_name()
            )
        }
    }
}

/// Go's `truth`: `isTrue(indirectInterface(v))`.
pub(crate) fn truth(v: &EV) -> bool {
    v.concrete().is_some_and(Value::truthy)
}

/// What `{{ pipeline }}` prints.
fn print_value(v: &EV) -> String {
    match v.concrete() {
        None => "<no value>".into(),
        Some(v) => v.go_string(),
    }
}
