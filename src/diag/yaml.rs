//! YAML as positioned nodes, and a reader that walks them while collecting
//! every problem with its line and column.
//!
//! Why not serde: a derive stops at the first unknown field or wrong type,
//! but `errbudget check` must report all problems of a file at once. So the
//! file is loaded into `saphyr`'s `MarkedYaml` tree (every node keeps its
//! span) and the format readers pull fields out of it through [`Map`] and
//! [`Field`], which record a [`Diagnostic`] instead of failing. Owns YAML
//! syntax and value types only; no SLO or settings knowledge.

use std::collections::{BTreeMap, HashMap};
use std::panic::{self, AssertUnwindSafe};

use saphyr::{MarkedYaml, ScalarStyle, YamlData, YamlLoader};
use saphyr_parser::{Event, Parser, SpannedEventReceiver};

use super::Diagnostic;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A value together with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub pos: Pos,
}

pub type Node<'i> = MarkedYaml<'i>;

fn pos_of(node: &Node<'_>) -> Pos {
    Pos {
        line: node.span.start.line(),
        // saphyr counts columns from 0; editors and compilers from 1.
        column: node.span.start.col() + 1,
    }
}

/// How deep mappings and lists may nest (aliases count with the depth of
/// what they stand for). Real specs and settings stay under 15 levels.
/// The bound exists because saphyr's `Parser::load` recurses once per
/// level and its tree is dropped recursively: ~7,500 levels overflow the
/// stack, an abort that `catch_unwind` cannot catch.
pub const MAX_DEPTH: usize = 64;

/// Parses all documents of `text`. Scalars are kept as written (no early
/// typing) so that a label value `1.10` stays `1.10` and numbers are typed
/// only where a number is expected.
pub fn load(text: &str) -> Result<Vec<Node<'_>>, (Pos, String)> {
    // saphyr takes a NUL for the end of the input and then reports some
    // unrelated problem further on; name the byte itself.
    if let Some(i) = text.find('\0') {
        let before = &text[..i];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        return Err((Pos { line, column }, "a NUL byte: not a text file".into()));
    }
    // The loader keeps invariants with internal `unwrap`s; a bug there must
    // become a diagnostic, not take down a daemon that is reloading.
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut loader: YamlLoader<'_, Node<'_>> = YamlLoader::default();
        loader.early_parse(false);
        let mut parser = Parser::new_from_str(text);
        let mut depth = Depth::default();
        // Events are pulled one by one (the parser's own state machine has
        // no recursion) so that nesting is bounded before the tree grows.
        while let Some(event) = parser.next_event() {
            let (ev, span) = event.map_err(Failure::Scan)?;
            if !depth.admit(&ev) {
                return Err(Failure::TooDeep(span.start));
            }
            loader.on_event(ev, span);
            if let Some(e) = loader.error() {
                return Err(Failure::Scan(e.clone()));
            }
        }
        Ok(loader.into_documents())
    }));
    match result {
        Ok(Ok(docs)) => Ok(docs),
        // The scanner's own bound on flow nesting (`[[[[`) says the same.
        Ok(Err(Failure::Scan(e))) if e.info() == "recursion limit exceeded" => Err((
            inside(text, e.marker().line(), e.marker().col() + 1),
            format!("nesting deeper than {MAX_DEPTH} levels"),
        )),
        Ok(Err(Failure::Scan(e))) => Err((
            inside(text, e.marker().line(), e.marker().col() + 1),
            format!("invalid YAML: {}", e.info()),
        )),
        Ok(Err(Failure::TooDeep(m))) => Err((
            inside(text, m.line(), m.col() + 1),
            format!("nesting deeper than {MAX_DEPTH} levels"),
        )),
        Err(_) => Err((
            Pos { line: 1, column: 1 },
            "invalid YAML: the parser failed on this file".into(),
        )),
    }
}

enum Failure {
    Scan(saphyr_parser::ScanError),
    TooDeep(saphyr_parser::Marker),
}

/// Tracks the open mappings and lists, and the height of every anchored
/// node, so that an alias counts as deep as the node it repeats.
#[derive(Default)]
struct Depth {
    /// Per open collection: its anchor id (0: none) and the height of its
    /// tallest child so far.
    open: Vec<(usize, usize)>,
    anchors: HashMap<usize, usize>,
}

impl Depth {
    /// False once the nesting passes [`MAX_DEPTH`].
    fn admit(&mut self, ev: &Event<'_>) -> bool {
        match ev {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.open.push((*anchor, 0));
                self.open.len() <= MAX_DEPTH
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, inner)) = self.open.pop() {
                    self.done(anchor, inner + 1);
                }
                true
            }
            Event::Scalar(_, _, anchor, _) => {
                self.done(*anchor, 0);
                true
            }
            Event::Alias(id) => {
                let height = self.anchors.get(id).copied().unwrap_or(0);
                self.done(0, height);
                self.open.len() + height <= MAX_DEPTH
            }
            _ => true,
        }
    }

    fn done(&mut self, anchor: usize, height: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, height);
        }
        if let Some(parent) = self.open.last_mut() {
            parent.1 = parent.1.max(height);
        }
    }
}

/// The scanner reports an unexpected end of input on a line past the last
/// one; a message must point into the file, so that becomes the end of the
/// last line.
fn inside(text: &str, line: usize, column: usize) -> Pos {
    Ends::of(text).clamp(line, column)
}

/// Where a text's lines end, measured once so that each diagnostic is
/// clamped without reading the text again.
#[derive(Clone, Copy)]
struct Ends {
    /// Lines as YAML breaks them (`\r\n`, `\n`, a lone `\r`).
    lines: usize,
    /// The last line is empty (the text ends with a line break).
    trailing_break: bool,
    /// Just after the last character, on the last line with text.
    end: Pos,
}

impl Ends {
    fn of(text: &str) -> Ends {
        let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
        let lines: Vec<&str> = normalized.split('\n').collect();
        let last = lines.len().max(1);
        // A trailing newline leaves an empty last line; point at the text.
        let mut n = last;
        while n > 1 && lines[n - 1].is_empty() {
            n -= 1;
        }
        Ends {
            lines: last,
            trailing_break: last > 1 && lines[last - 1].is_empty(),
            end: Pos {
                line: n,
                column: lines.get(n - 1).map_or(0, |l| l.chars().count()) + 1,
            },
        }
    }

    fn clamp(self, line: usize, column: usize) -> Pos {
        let at_trailing_break = line == self.lines && self.trailing_break;
        if line >= 1 && line <= self.lines && !at_trailing_break {
            Pos { line, column }
        } else {
            self.end
        }
    }
}

/// Collects diagnostics for one file.
pub struct Cx<'f> {
    pub file: &'f str,
    pub diags: Vec<Diagnostic>,
    /// Where the file's text ends, when known: positions are kept inside it.
    ends: Option<Ends>,
}

impl<'f> Cx<'f> {
    pub fn new(file: &'f str) -> Self {
        Cx {
            file,
            diags: Vec::new(),
            ends: None,
        }
    }

    /// Diagnostics of `text`: a node the parser places past the last line
    /// (an empty key at the end of the file) is reported at its end.
    pub fn of_text(file: &'f str, text: &str) -> Self {
        Cx {
            ends: Some(Ends::of(text)),
            ..Cx::new(file)
        }
    }

    pub fn err(&mut self, pos: Pos, message: impl Into<String>) {
        let pos = self.ends.map_or(pos, |e| e.clamp(pos.line, pos.column));
        self.diags
            .push(Diagnostic::new(self.file, pos.line, pos.column, message));
    }

    pub fn has_errors(&self) -> bool {
        !self.diags.is_empty()
    }
}

/// A scalar as written: its text and whether it was quoted (or tagged
/// `!!str`), in which case it is never a number, boolean or null.
fn scalar<'a>(node: &'a Node<'_>) -> Option<(&'a str, bool)> {
    match &node.data {
        YamlData::Representation(text, style, tag) => {
            let is_str_tag = tag.as_ref().is_some_and(|t| t.suffix == "str");
            let quoted = !matches!(style, ScalarStyle::Plain) || is_str_tag;
            Some((text.as_ref(), quoted))
        }
        _ => None,
    }
}

/// `~`, `null`, an empty value, or an empty document.
pub fn is_null(node: &Node<'_>) -> bool {
    match &node.data {
        YamlData::BadValue => true,
        _ => {
            matches!(scalar(node), Some((t, false)) if matches!(t, "" | "~" | "null" | "Null" | "NULL"))
        }
    }
}

/// Describes what a node is, for "expected X, found Y" messages.
fn kind(node: &Node<'_>) -> String {
    if is_null(node) {
        return "null".into();
    }
    match &node.data {
        YamlData::Sequence(_) => "a list".into(),
        YamlData::Mapping(_) => "a mapping".into(),
        YamlData::Tagged(tag, _) => format!("a value tagged {}{}", tag.handle, tag.suffix),
        _ => match scalar(node) {
            Some((t, _)) if t.chars().count() <= MAX_ECHO => format!("{t:?}"),
            Some((t, _)) => format!(
                "{:?}",
                t.chars().take(MAX_ECHO).chain(['…']).collect::<String>()
            ),
            None => "an unsupported value".into(),
        },
    }
}

/// How much of a wrong value a message repeats: enough to recognise a
/// typo, too little to carry a token from a file that was never a spec.
const MAX_ECHO: usize = 40;

/// [`kind`] for a whole document: a text where a mapping belongs is most
/// likely some other file (a token, a key) matched by a glob, so none of
/// it is repeated.
fn kind_of_document(node: &Node<'_>) -> String {
    match &node.data {
        YamlData::Representation(..) if !is_null(node) => "text (not repeated here)".into(),
        _ => kind(node),
    }
}

/// The string of a node if it is one (a non-null scalar).
pub fn as_str<'a>(node: &'a Node<'_>) -> Option<&'a str> {
    if is_null(node) {
        return None;
    }
    scalar(node).map(|(t, _)| t)
}

/// Joins a field path for messages: `slos[0]` + `sli` = `slos[0].sli`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A mapping whose keys have been checked against the known field names.
pub struct Map<'a, 'i> {
    pub node: &'a Node<'i>,
    pub pos: Pos,
    pub path: String,
    entries: Vec<(&'a str, Pos, &'a Node<'i>)>,
}

/// One value inside a mapping or list, with its path for messages.
#[derive(Clone)]
pub struct Field<'a, 'i> {
    pub key_pos: Pos,
    pub path: String,
    pub node: &'a Node<'i>,
}

impl<'a, 'i> Map<'a, 'i> {
    /// Opens `node` as a mapping, reporting a non-mapping and every key
    /// that is not in `known` (with the closest known name as a hint).
    pub fn open<S: AsRef<str>>(
        cx: &mut Cx<'_>,
        node: &'a Node<'i>,
        path: &str,
        known: &[S],
    ) -> Option<Self> {
        let map = Map::open_any(cx, node, path)?;
        for (key, pos, _) in &map.entries {
            if !known.iter().any(|k| k.as_ref() == *key) {
                let mut msg = format!("{}: unknown field {key:?}", map.path_or_top());
                if let Some(s) = closest(key, known.iter().map(AsRef::as_ref)) {
                    msg.push_str(&format!(", did you mean {s:?}?"));
                }
                cx.err(*pos, msg);
            }
        }
        Some(map)
    }

    /// Opens `node` as a mapping whose keys are free (labels, metadata).
    pub fn open_any(cx: &mut Cx<'_>, node: &'a Node<'i>, path: &str) -> Option<Self> {
        let YamlData::Mapping(m) = &node.data else {
            // A document, or an item of a top-level list.
            let top = path.is_empty() || (path.starts_with('[') && !path.contains('.'));
            let found = if top {
                kind_of_document(node)
            } else {
                kind(node)
            };
            cx.err(
                pos_of(node),
                format!("{}: expected a mapping, found {found}", or_top(path)),
            );
            return None;
        };
        let mut entries = Vec::with_capacity(m.len());
        for (k, v) in m.iter() {
            match scalar(k) {
                Some((key, _)) if !is_null(k) => entries.push((key, pos_of(k), v)),
                _ => cx.err(
                    pos_of(k),
                    format!("{}: keys must be strings, found {}", or_top(path), kind(k)),
                ),
            }
        }
        Some(Map {
            node,
            pos: pos_of(node),
            path: path.to_string(),
            entries,
        })
    }

    fn path_or_top(&self) -> &str {
        or_top(&self.path)
    }

    /// The field `key`, or `None` when it is absent or null.
    pub fn get(&self, key: &str) -> Option<Field<'a, 'i>> {
        self.entries
            .iter()
            .find(|(k, _, v)| *k == key && !is_null(v))
            .map(|(k, pos, v)| Field {
                key_pos: *pos,
                path: join(&self.path, k),
                node: v,
            })
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The field `key`, reporting its absence at the mapping.
    pub fn req(&self, cx: &mut Cx<'_>, key: &str) -> Option<Field<'a, 'i>> {
        let f = self.get(key);
        if f.is_none() {
            cx.err(
                self.pos,
                format!("{}: missing required field {key:?}", self.path_or_top()),
            );
        }
        f
    }

    /// All entries in document order (for free-form mappings).
    pub fn entries(&self) -> impl Iterator<Item = (Sp<&'a str>, Field<'a, 'i>)> + '_ {
        self.entries.iter().map(|(k, pos, v)| {
            (
                Sp {
                    value: *k,
                    pos: *pos,
                },
                Field {
                    key_pos: *pos,
                    path: join(&self.path, k),
                    node: v,
                },
            )
        })
    }

    /// Convenience: optional string field.
    pub fn str(&self, cx: &mut Cx<'_>, key: &str) -> Option<Sp<String>> {
        self.get(key).and_then(|f| f.str(cx))
    }

    /// Convenience: required string field.
    pub fn req_str(&self, cx: &mut Cx<'_>, key: &str) -> Option<Sp<String>> {
        self.req(cx, key).and_then(|f| f.str(cx))
    }

    pub fn f64(&self, cx: &mut Cx<'_>, key: &str) -> Option<Sp<f64>> {
        self.get(key).and_then(|f| f.f64(cx))
    }

    pub fn bool(&self, cx: &mut Cx<'_>, key: &str) -> Option<bool> {
        self.get(key).and_then(|f| f.bool(cx))
    }

    /// A mapping of strings (labels, annotations, headers); empty if absent.
    pub fn string_map(&self, cx: &mut Cx<'_>, key: &str) -> Vec<(Sp<String>, Sp<String>)> {
        self.get(key).map(|f| f.string_map(cx)).unwrap_or_default()
    }
}

fn or_top(path: &str) -> &str {
    if path.is_empty() {
        "top level"
    } else {
        path
    }
}

impl<'a, 'i> Field<'a, 'i> {
    /// Where the value starts (for a missing value, where its key is).
    pub fn pos(&self) -> Pos {
        if is_null(self.node) {
            self.key_pos
        } else {
            pos_of(self.node)
        }
    }

    fn expected(&self, cx: &mut Cx<'_>, what: &str) {
        cx.err(
            self.pos(),
            format!("{}: expected {what}, found {}", self.path, kind(self.node)),
        );
    }

    /// Any scalar as text: Sloth (Go) accepts `tier: 2` for a string too.
    pub fn str(&self, cx: &mut Cx<'_>) -> Option<Sp<String>> {
        match as_str(self.node) {
            Some(t) => Some(Sp {
                value: t.to_string(),
                pos: self.pos(),
            }),
            None => {
                self.expected(cx, "a string");
                None
            }
        }
    }

    /// A finite number written unquoted (a quoted `"99.9"` is a string).
    pub fn f64(&self, cx: &mut Cx<'_>) -> Option<Sp<f64>> {
        if let Some((t, false)) = scalar(self.node) {
            // Rust also parses `inf`/`NaN`; neither is a sensible setting.
            if let Ok(v) = t.trim().parse::<f64>() {
                if v.is_finite() {
                    return Some(Sp {
                        value: v,
                        pos: self.pos(),
                    });
                }
            }
        }
        self.expected(cx, "a number");
        None
    }

    pub fn bool(&self, cx: &mut Cx<'_>) -> Option<bool> {
        match scalar(self.node) {
            Some(("true" | "True" | "TRUE", false)) => Some(true),
            Some(("false" | "False" | "FALSE", false)) => Some(false),
            _ => {
                self.expected(cx, "true or false");
                None
            }
        }
    }

    /// A non-negative whole number.
    pub fn usize(&self, cx: &mut Cx<'_>) -> Option<Sp<usize>> {
        if let Some((t, false)) = scalar(self.node) {
            if let Ok(v) = t.trim().parse::<usize>() {
                return Some(Sp {
                    value: v,
                    pos: self.pos(),
                });
            }
        }
        self.expected(cx, "a whole number");
        None
    }

    pub fn map<S: AsRef<str>>(&self, cx: &mut Cx<'_>, known: &[S]) -> Option<Map<'a, 'i>> {
        Map::open(cx, self.node, &self.path, known)
    }

    pub fn map_any(&self, cx: &mut Cx<'_>) -> Option<Map<'a, 'i>> {
        Map::open_any(cx, self.node, &self.path)
    }

    /// The items of a list, each with its `path[i]`.
    pub fn seq(&self, cx: &mut Cx<'_>) -> Option<Vec<Field<'a, 'i>>> {
        match &self.node.data {
            YamlData::Sequence(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Field {
                        key_pos: pos_of(n),
                        path: format!("{}[{i}]", self.path),
                        node: n,
                    })
                    .collect(),
            ),
            _ => {
                self.expected(cx, "a list");
                None
            }
        }
    }

    /// A mapping from string to string, keys in document order.
    pub fn string_map(&self, cx: &mut Cx<'_>) -> Vec<(Sp<String>, Sp<String>)> {
        let Some(map) = self.map_any(cx) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, f) in map.entries() {
            // A null value is an empty string, as Go's YAML decoder makes it.
            let v = if is_null(f.node) {
                Some(Sp {
                    value: String::new(),
                    pos: f.pos(),
                })
            } else {
                f.str(cx)
            };
            if let Some(v) = v {
                out.push((
                    Sp {
                        value: k.value.to_string(),
                        pos: k.pos,
                    },
                    v,
                ));
            }
        }
        out
    }
}

/// Turns pairs into a map (later keys cannot repeat: the loader rejects
/// duplicate keys).
pub fn to_btree(pairs: &[(Sp<String>, Sp<String>)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.value.clone(), v.value.clone()))
        .collect()
}

/// The known name closest to a mistyped one, if it is close enough to be
/// a plausible typo (or the same name in another case style).
pub fn closest<'k>(wrong: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    let squash = |s: &str| s.replace(['_', '-'], "").to_lowercase();
    let w = squash(wrong);
    known
        .map(|k| {
            let d = if squash(k) == w {
                0
            } else {
                levenshtein(wrong, k)
            };
            (d, k)
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let docs = load("a: 1\nlist:\n  - name: x\n").unwrap();
        let mut cx = Cx::new("f.yaml");
        let m = Map::open(&mut cx, &docs[0], "", &["a", "list"]).unwrap();
        let a = m.get("a").unwrap();
        assert_eq!(a.pos(), Pos { line: 1, column: 4 });
        let items = m.get("list").unwrap().seq(&mut cx).unwrap();
        assert_eq!(items[0].pos(), Pos { line: 3, column: 5 });
        assert_eq!(items[0].path, "list[0]");
        assert!(cx.diags.is_empty());
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let (pos, msg) = load("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(pos.line >= 1, "{pos:?}");
        assert!(msg.starts_with("invalid YAML: "), "{msg}");
        let (_, msg) = load("a: 1\na: 2\n").unwrap_err();
        assert!(msg.contains("duplicated key"), "{msg}");
    }

    #[test]
    fn unknown_fields_suggest_the_closest_name() {
        let docs = load("objectve: 1\nzzz: 2\n").unwrap();
        let mut cx = Cx::new("f.yaml");
        Map::open(&mut cx, &docs[0], "slos[0]", &["objective", "name"]);
        let msgs: Vec<String> = cx.diags.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "f.yaml:1:1: slos[0]: unknown field \"objectve\", did you mean \"objective\"?",
                "f.yaml:2:1: slos[0]: unknown field \"zzz\"",
            ]
        );
        assert_eq!(
            closest("error_query", ["errorQuery", "totalQuery"].into_iter()),
            Some("errorQuery")
        );
    }

    #[test]
    fn scalars_are_typed_where_used() {
        let docs = load("n: 99.9\ns: '99.9'\nb: true\nv: 1.10\nz: ~\n").unwrap();
        let mut cx = Cx::new("f.yaml");
        let m = Map::open_any(&mut cx, &docs[0], "").unwrap();
        assert_eq!(m.f64(&mut cx, "n").map(|s| s.value), Some(99.9));
        assert_eq!(m.str(&mut cx, "v").map(|s| s.value), Some("1.10".into()));
        assert_eq!(m.bool(&mut cx, "b"), Some(true));
        assert!(m.get("z").is_none());
        assert!(cx.diags.is_empty());
        assert_eq!(m.f64(&mut cx, "s"), None);
        assert_eq!(
            cx.diags[0].to_string(),
            "f.yaml:2:4: s: expected a number, found \"99.9\""
        );
    }
}
