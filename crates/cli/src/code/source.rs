//! Spec files read into [`Document`]s that know where every value came from.
//!
//! `keyward validate` reports each problem with its file, line and column and the JSON pointer
//! (RFC 6901) of the value. So a file is read here once, into one `serde_json::Value` per
//! document (what the schema and the rules check) and, beside it, where each value in it
//! starts in the text. A later check names a value by its pointer and asks
//! [`Document::position`] (or [`Document::error`]) where to send the reader; a pointer into a
//! value that has no place of its own (below an alias, say) gets its nearest ancestor's.
//!
//! Nothing here is a rule about specs beyond their shape: a file holds documents, and each
//! document is a mapping. Kinds, fields and references are checked by the modules after this.
//!
//! # YAML
//!
//! Read with the event parser of [`saphyr_parser`], and the tree is built here rather than by
//! a serde deserializer, because every event carries its line and column and because the
//! rules must be ours whatever a deserializer's defaults are:
//!
//! - YAML 1.2 core schema for plain scalars: `null`, `~` and nothing are null; `true` and
//!   `false` (also `True`, `TRUE`, ...) are booleans; `yes`, `on` and `2027-06-30T00:00:00Z`
//!   stay strings; `0x` and `0o` integers are read; `.inf` and `.nan` are refused, since JSON
//!   cannot hold them. Quoted scalars are always strings. The core schema's own tags (`!!str`,
//!   `!!int`, ...) are honoured; any other tag is refused. `<<` is an ordinary key (merge keys
//!   are YAML 1.1).
//! - Keys are strings, and a key written twice is an error at the second one (a spec whose
//!   meaning depends on which duplicate wins is not reviewed as it reads).
//! - Anchors and aliases work, but every alias counts as a full copy of what it names, and a
//!   file is limited to [`MAX_VALUES`] values and [`MAX_DEPTH`] levels: a few hundred bytes of
//!   nested aliases (the "billion laughs") must not become gigabytes.
//!
//! `saphyr-parser` is the event parser of the saphyr project, the maintained line of
//! `yaml-rust` (whose other heir, `yaml-rust2`, now takes only basic maintenance and points
//! to saphyr): it passes the YAML test suite, is a state machine rather than recursive, so deep
//! input cannot exhaust the stack, and brings only `arraydeque` and `thiserror` with it.
//! (`granit-parser`, the fork under `serde-saphyr`, adds comments and styles that a loader does
//! not need, at several times the size.)
//!
//! # JSON
//!
//! `serde_json` decides values and syntax errors, so JSON's rules hold exactly (numbers,
//! escapes, surrogate pairs); a small scanner then walks the text, already known to be valid,
//! for where each value starts and for keys written twice. The YAML parser is not used for
//! that: JSON is not quite YAML (it refuses the escaped surrogate pairs of `"\ud83d\ude00"`).
//!
//! Lines and columns are 1-based and count characters, not bytes; a byte order mark at the
//! start of a file is skipped.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, StrInput, Tag};
use serde_json::{Map, Number, Value};

/// The largest spec file read. A key's spec is some 20 lines, so 1 MiB holds a couple of
/// thousand of them; a larger file is split, not read (and `/dev/zero` is not read until
/// memory runs out).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The most values (scalars, sequences and mappings, not counting keys) one YAML file may
/// produce, each alias counting as a full copy of what it names. A 1 MiB file of real specs
/// holds about half as many; nine nested aliases of ten items each would make a billion.
pub const MAX_VALUES: usize = 100_000;

/// The deepest nesting of sequences and mappings in a document. A spec needs a handful of
/// levels (metadata itself stops at 10); 64 leaves room without inviting pathological input.
pub const MAX_DEPTH: usize = 64;

/// The two formats of spec files, told by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// `.yaml` and `.yml` are YAML, `.json` is JSON (in any case); anything else is not a spec
    /// file.
    pub fn of(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?;
        if extension.eq_ignore_ascii_case("yaml") || extension.eq_ignore_ascii_case("yml") {
            Some(Format::Yaml)
        } else if extension.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

/// A place in a file: 1-based line, and 1-based column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    fn of(marker: &Marker) -> Position {
        Position {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where one value was written: the start of the value itself, of its key when it is a member
/// of a mapping, and the places of its own members. A tree shaped like the value, rather than
/// a map from every pointer, so that it grows with the text: a pointer kept for every value
/// would repeat long keys once per value below them.
#[derive(Debug, Clone, PartialEq)]
struct Place {
    value: Position,
    key: Option<Position>,
    members: Members,
}

#[derive(Debug, Clone, PartialEq)]
enum Members {
    /// A scalar, or an alias (what it copies has no places of its own).
    None,
    Items(Vec<Place>),
    Keys(HashMap<String, Place>),
}

impl Place {
    fn leaf(value: Position) -> Place {
        Place {
            value,
            key: None,
            members: Members::None,
        }
    }

    /// The member named by one unescaped pointer token.
    fn member(&self, token: &str) -> Option<&Place> {
        match &self.members {
            Members::Keys(keys) => keys.get(token),
            Members::Items(items) => items.get(token.parse::<usize>().ok()?),
            Members::None => None,
        }
    }
}

/// One spec document: a mapping, with the file it came from and where each value in it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file, as it was given.
    pub file: PathBuf,
    /// 0-based: the document's place among the file's non-empty YAML documents, or its index
    /// in a JSON file's top-level array (0 for a JSON object).
    pub index: usize,
    pub value: Value,
    /// Where the document and everything in it were written; `None` if that is not known.
    places: Option<Place>,
}

impl Document {
    /// Where the value at `pointer` starts; for a pointer to something without a place of its
    /// own (inside an alias, or not in the document at all), where its nearest ancestor that
    /// has one starts. `None` when not even the document has one (JSON whose positions could
    /// not be read) or the pointer is not a JSON pointer.
    pub fn position(&self, pointer: &str) -> Option<Position> {
        self.find(pointer).map(|(place, _)| place.value)
    }

    /// Where the member at `pointer` is named: its key in a mapping, which is where a reader
    /// looks for a misspelt or unexpected field. Otherwise as [`Document::position`].
    #[cfg(test)]
    pub fn key_position(&self, pointer: &str) -> Option<Position> {
        match self.find(pointer)? {
            (place, true) => Some(place.key.unwrap_or(place.value)),
            (place, false) => Some(place.value),
        }
    }

    /// An error about the value at `pointer`, placed as [`Document::position`] places it.
    pub fn error(&self, pointer: &str, message: impl Into<String>) -> SourceError {
        SourceError {
            file: self.file.clone(),
            position: self.position(pointer),
            pointer: Some(pointer.to_owned()),
            message: message.into(),
        }
    }

    /// The place of `pointer`, or of its nearest ancestor that has one, and whether it is the
    /// pointer's own.
    fn find(&self, pointer: &str) -> Option<(&Place, bool)> {
        let mut place = self.places.as_ref()?;
        if pointer.is_empty() {
            return Some((place, true));
        }
        for token in pointer.strip_prefix('/')?.split('/') {
            // RFC 6901: `~1` first, then `~0`, so that `~01` is `~1`.
            match place.member(&token.replace("~1", "/").replace("~0", "~")) {
                Some(member) => place = member,
                None => return Some((place, false)),
            }
        }
        Some((place, true))
    }
}

/// The pointer to the member `token` (a key, or an index written in decimal) of the value at
/// `parent`, with `~` and `/` escaped as RFC 6901 says (`~0`, `~1`).
pub fn child_pointer(parent: &str, token: &str) -> String {
    let mut pointer = String::with_capacity(parent.len() + token.len() + 1);
    pointer.push_str(parent);
    push_token(&mut pointer, token);
    pointer
}

fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// The way from a document's root to the value being read, as unescaped tokens. It becomes a
/// JSON pointer only for an error, for the reason [`Place`] is a tree.
#[derive(Debug, Default)]
struct Trail(Vec<String>);

impl Trail {
    fn pointer(&self) -> String {
        let mut pointer = String::new();
        for token in &self.0 {
            push_token(&mut pointer, token);
        }
        pointer
    }
}

/// A problem with a spec file, placed as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub file: PathBuf,
    pub position: Option<Position>,
    /// The JSON pointer of the value concerned, when there is one.
    pub pointer: Option<String>,
    pub message: String,
}

impl SourceError {
    /// An error about a whole file.
    pub fn new(file: &Path, message: impl Into<String>) -> SourceError {
        SourceError {
            file: file.to_path_buf(),
            position: None,
            pointer: None,
            message: message.into(),
        }
    }

    fn at(
        file: &Path,
        position: Option<Position>,
        pointer: Option<String>,
        message: String,
    ) -> Self {
        SourceError {
            file: file.to_path_buf(),
            position,
            pointer,
            message,
        }
    }
}

/// `file:line:column: message`, the form editors and terminals turn into links; without a
/// position, the pointer says where.
impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match (&self.position, &self.pointer) {
            (Some(position), _) => write!(f, "{file}:{position}: {}", self.message),
            (None, Some(pointer)) if !pointer.is_empty() => {
                write!(f, "{file}: at {pointer}: {}", self.message)
            }
            _ => write!(f, "{file}: {}", self.message),
        }
    }
}

impl std::error::Error for SourceError {}

/// The most problems reported for one file; reading stops there. The first ones are what a
/// person fixes first, and a hostile file must not produce millions.
pub const MAX_PROBLEMS: usize = 50;

/// Reading stopped: the reason is already among the file's problems.
struct Stop;

type Step<T> = Result<T, Stop>;

/// The problems found in one file so far.
struct Problems<'t> {
    file: &'t Path,
    list: Vec<SourceError>,
}

impl<'t> Problems<'t> {
    fn new(file: &'t Path) -> Self {
        Problems {
            file,
            list: Vec::new(),
        }
    }

    /// Notes a problem and goes on, unless that makes too many.
    fn report(&mut self, position: Option<Position>, pointer: String, message: String) -> Step<()> {
        self.list
            .push(SourceError::at(self.file, position, Some(pointer), message));
        if self.list.len() < MAX_PROBLEMS {
            return Ok(());
        }
        self.list.push(SourceError::new(
            self.file,
            format!("stopped after {MAX_PROBLEMS} problems; fix these and run again"),
        ));
        Err(Stop)
    }

    /// Notes a problem after which the file cannot be read further.
    fn fail(&mut self, position: Position, message: String) -> Stop {
        self.list
            .push(SourceError::at(self.file, Some(position), None, message));
        Stop
    }
}

/// The documents of one file's text. Every problem found is returned, not just the first
/// (up to [`MAX_PROBLEMS`]), except that YAML syntax errors and the limits stop the file where
/// they occur.
///
/// A file that holds no document at all (empty, only comments, `[]`) is an error: a file of
/// specs that has been emptied must not read as "these keys are no longer wanted".
pub fn parse(file: &Path, text: &str, format: Format) -> Result<Vec<Document>, Vec<SourceError>> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let documents = match format {
        Format::Yaml => YamlReader::new(file, text).read()?,
        Format::Json => read_json(file, text)?,
    };
    if documents.is_empty() {
        let what = match format {
            Format::Yaml => "it is empty or only comments",
            Format::Json => "it is empty or an empty array",
        };
        return Err(vec![SourceError::new(
            file,
            format!("holds no documents ({what}); a spec file holds at least one"),
        )]);
    }
    Ok(documents)
}

/// The spec files under `paths`: each file as given (whatever its name), and each directory
/// walked recursively for `*.yaml`, `*.yml` and `*.json`, in name order. Hidden entries (`.git`,
/// editors' files) are skipped inside directories, a directory reached twice (through a
/// symbolic link) is read once, and a file named twice is returned once. A path that does not
/// exist is an error, and so is a directory that cannot be read.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<SourceError>> {
    let mut walk = Walk::default();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(metadata) if metadata.is_dir() => walk.directory(path),
            Ok(_) => walk.files.push(path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => walk
                .errors
                .push(SourceError::new(path, "no such file or directory")),
            Err(e) => walk
                .errors
                .push(SourceError::new(path, format!("cannot read: {e}"))),
        }
    }
    if !walk.errors.is_empty() {
        return Err(walk.errors);
    }
    let mut seen = HashSet::new();
    let mut files = walk.files;
    files.retain(|file| seen.insert(file.clone()));
    Ok(files)
}

#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    errors: Vec<SourceError>,
    /// Canonical paths of the directories read so far.
    visited: HashSet<PathBuf>,
}

impl Walk {
    fn directory(&mut self, dir: &Path) {
        let read = std::fs::canonicalize(dir).and_then(|canonical| {
            let first = self.visited.insert(canonical);
            Ok(if first {
                Some(std::fs::read_dir(dir)?)
            } else {
                None
            })
        });
        let entries = match read {
            Ok(Some(entries)) => entries,
            Ok(None) => return,
            Err(e) => {
                self.errors
                    .push(SourceError::new(dir, format!("cannot read: {e}")));
                return;
            }
        };
        let mut entries: Vec<_> = entries
            .filter_map(|entry| {
                entry
                    .map_err(|e| {
                        self.errors
                            .push(SourceError::new(dir, format!("cannot read: {e}")))
                    })
                    .ok()
            })
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            // Follows symbolic links: a linked file or directory is read like any other.
            match std::fs::metadata(&path) {
                Ok(metadata) if metadata.is_dir() => self.directory(&path),
                Ok(metadata) if metadata.is_file() && Format::of(&path).is_some() => {
                    self.files.push(path);
                }
                Ok(_) => {}
                // A broken link named like a spec file is a spec that went missing.
                Err(e) if Format::of(&path).is_some() => {
                    self.errors
                        .push(SourceError::new(&path, format!("cannot read: {e}")));
                }
                Err(_) => {}
            }
        }
    }
}

/// Reads and parses every file (its format from its name), and returns all the documents of
/// the files that read cleanly with all the errors of those that did not.
pub fn read(files: &[PathBuf]) -> (Vec<Document>, Vec<SourceError>) {
    let mut documents = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match read_file(file) {
            Ok(found) => documents.extend(found),
            Err(found) => errors.extend(found),
        }
    }
    (documents, errors)
}

fn read_file(file: &Path) -> Result<Vec<Document>, Vec<SourceError>> {
    let Some(format) = Format::of(file) else {
        return Err(vec![SourceError::new(
            file,
            "not a spec file: its name must end in .yaml, .yml or .json",
        )]);
    };
    let text = read_text(file).map_err(|e| vec![e])?;
    parse(file, &text, format)
}

/// The file's text, refused when larger than [`MAX_FILE_BYTES`] or not UTF-8.
fn read_text(file: &Path) -> Result<String, SourceError> {
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| SourceError::new(file, format!("cannot read: {e}")))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(SourceError::new(
            file,
            format!(
                "larger than {} MiB, the limit for a spec file; split it into several files",
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let valid = bytes
            .get(..e.utf8_error().valid_up_to())
            .and_then(|prefix| std::str::from_utf8(prefix).ok())
            .unwrap_or_default();
        let last_line = valid.rsplit('\n').next().unwrap_or_default();
        let position = Position {
            line: valid.matches('\n').count() + 1,
            column: last_line.chars().count() + 1,
        };
        let message = if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
            "is UTF-16 text; spec files are UTF-8 (save it as UTF-8)"
        } else {
            "is not UTF-8 text (the byte here is not UTF-8); spec files are UTF-8"
        };
        SourceError::at(file, Some(position), None, message.to_owned())
    })
}

/// What a value is, in words for messages.
fn describe(value: &Value, format: Format) -> &'static str {
    match (value, format) {
        (Value::Null, _) => "null",
        (Value::Bool(_), _) => "a boolean",
        (Value::Number(_), _) => "a number",
        (Value::String(_), _) => "a string",
        (Value::Array(_), Format::Yaml) => "a sequence",
        (Value::Array(_), Format::Json) => "an array",
        (Value::Object(_), Format::Yaml) => "a mapping",
        (Value::Object(_), Format::Json) => "an object",
    }
}

fn too_deep() -> String {
    format!("nested more than {MAX_DEPTH} levels deep; a spec needs far fewer")
}

// ------------------------------------------------------------------------------------------
// YAML

/// What an anchor names: its value, and what it cost, so that each alias is charged the same:
/// the values in it, and how many levels deep its collections go (0 for a scalar).
#[derive(Debug, Clone)]
struct Anchored {
    value: Value,
    values: usize,
    height: usize,
}

/// A node built from events: what an anchor keeps, and where it all was written.
#[derive(Debug)]
struct Built {
    node: Anchored,
    place: Place,
}

impl Built {
    fn leaf(value: Value, position: Position) -> Built {
        Built {
            node: Anchored {
                value,
                values: 1,
                height: 0,
            },
            place: Place::leaf(position),
        }
    }
}

/// The tags of the YAML 1.2 core schema, and the non-specific `!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CoreTag {
    Str,
    Int,
    Float,
    Bool,
    Null,
    Map,
    Seq,
    NonSpecific,
}

const CORE_TAG_PREFIX: &str = "tag:yaml.org,2002:";

impl CoreTag {
    /// The core tag `tag` is, or how to show a tag that is not one.
    fn of(tag: &Tag) -> Result<CoreTag, String> {
        if (tag.handle.is_empty() && tag.suffix == "!")
            || (tag.handle == "!" && tag.suffix.is_empty())
        {
            return Ok(CoreTag::NonSpecific);
        }
        let full = format!("{}{}", tag.handle, tag.suffix);
        match full.strip_prefix(CORE_TAG_PREFIX) {
            Some("str") => Ok(CoreTag::Str),
            Some("int") => Ok(CoreTag::Int),
            Some("float") => Ok(CoreTag::Float),
            Some("bool") => Ok(CoreTag::Bool),
            Some("null") => Ok(CoreTag::Null),
            Some("map") => Ok(CoreTag::Map),
            Some("seq") => Ok(CoreTag::Seq),
            Some(other) => Err(format!("!!{other}")),
            None if tag.handle == "!" => Err(format!("!{}", tag.suffix)),
            None => Err(format!("!<{full}>")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            CoreTag::Str => "!!str",
            CoreTag::Int => "!!int",
            CoreTag::Float => "!!float",
            CoreTag::Bool => "!!bool",
            CoreTag::Null => "!!null",
            CoreTag::Map => "!!map",
            CoreTag::Seq => "!!seq",
            CoreTag::NonSpecific => "!",
        }
    }
}

/// Builds documents from the parser's events, one file at a time.
struct YamlReader<'t> {
    text: &'t str,
    events: Parser<'t, StrInput<'t>>,
    problems: Problems<'t>,
    /// Values produced so far in the file, aliases counted in full.
    values: usize,
    /// The current document's anchors, by the parser's anchor id, once their node is complete.
    anchors: HashMap<usize, Anchored>,
    /// The anchors of the collections being read, not complete yet.
    open: HashSet<usize>,
    trail: Trail,
}

impl<'t> YamlReader<'t> {
    fn new(file: &'t Path, text: &'t str) -> Self {
        YamlReader {
            text,
            events: Parser::new_from_str(text),
            problems: Problems::new(file),
            values: 0,
            anchors: HashMap::new(),
            open: HashSet::new(),
            trail: Trail::default(),
        }
    }

    fn read(mut self) -> Result<Vec<Document>, Vec<SourceError>> {
        let mut documents = Vec::new();
        while let Ok((event, span)) = self.next() {
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => break,
                Event::DocumentStart(_) => match self.document(documents.len()) {
                    Ok(Some(document)) => documents.push(document),
                    Ok(None) => {}
                    Err(Stop) => break,
                },
                other => {
                    let position = Position::of(&span.start);
                    self.fail(position, format!("unexpected YAML event {other:?}"));
                    break;
                }
            }
        }
        if self.problems.list.is_empty() {
            Ok(documents)
        } else {
            Err(self.problems.list)
        }
    }

    /// The document after a `DocumentStart`, or `None` for an empty one (or one in error).
    fn document(&mut self, index: usize) -> Step<Option<Document>> {
        self.anchors.clear();
        self.open.clear();
        let (event, span) = self.next()?;
        // What the parser gives for a document with nothing in it (`---` followed by `---`).
        if matches!(&event, Event::Scalar(text, ScalarStyle::Plain, 0, None) if text.is_empty()) {
            return Ok(None);
        }
        let position = Position::of(&span.start);
        let root = self.node(event, span, 0)?;
        if !root.node.value.is_object() {
            let message = format!(
                "a spec document is a mapping (kind: ..., name: ...), and this one is {}",
                describe(&root.node.value, Format::Yaml)
            );
            self.report(position, message)?;
            return Ok(None);
        }
        Ok(Some(Document {
            file: self.problems.file.to_path_buf(),
            index,
            value: root.node.value,
            places: Some(root.place),
        }))
    }

    /// The node that starts with `event`, inside `depth` collections.
    fn node(&mut self, event: Event<'t>, span: Span, depth: usize) -> Step<Built> {
        let position = Position::of(&span.start);
        let built = match event {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, position)?;
                let value = self.scalar(&text, style, tag.as_deref(), position)?;
                let built = Built::leaf(value, position);
                self.anchor(anchor, &built.node);
                built
            }
            Event::Alias(id) => self.alias(id, span, depth)?,
            Event::SequenceStart(anchor, tag) => {
                self.collection_tag(tag.as_deref(), CoreTag::Seq, position)?;
                self.enter(depth, position, anchor)?;
                let built = self.sequence(position, depth)?;
                self.anchor(anchor, &built.node);
                built
            }
            Event::MappingStart(anchor, tag) => {
                self.collection_tag(tag.as_deref(), CoreTag::Map, position)?;
                self.enter(depth, position, anchor)?;
                let built = self.mapping(position, depth)?;
                self.anchor(anchor, &built.node);
                built
            }
            other => return Err(self.fail(position, format!("unexpected YAML event {other:?}"))),
        };
        Ok(built)
    }

    /// The items of a sequence, up to its `SequenceEnd`.
    fn sequence(&mut self, position: Position, depth: usize) -> Step<Built> {
        let (mut items, mut places) = (Vec::new(), Vec::new());
        let (mut values, mut height) = (1, 0);
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::SequenceEnd) {
                break;
            }
            self.trail.0.push(items.len().to_string());
            let item = self.node(event, span, depth + 1)?;
            self.trail.0.pop();
            values += item.node.values;
            height = height.max(item.node.height);
            items.push(item.node.value);
            places.push(item.place);
        }
        Ok(Built {
            node: Anchored {
                value: Value::Array(items),
                values,
                height: height + 1,
            },
            place: Place {
                value: position,
                key: None,
                members: Members::Items(places),
            },
        })
    }

    /// The members of a mapping, up to its `MappingEnd`.
    fn mapping(&mut self, position: Position, depth: usize) -> Step<Built> {
        let mut members = Map::new();
        let mut places: HashMap<String, Place> = HashMap::new();
        let (mut values, mut height) = (1, 0);
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let key_position = Position::of(&span.start);
            let key = self.key(event, span, depth)?;
            // The value under a key in error is read all the same, to go on.
            self.trail.0.push(key.clone().unwrap_or_default());
            let first = key.as_ref().and_then(|key| places.get(key)?.key);
            if let (Some(key), Some(first)) = (&key, first) {
                let message = format!("duplicate key '{key}' (first at line {})", first.line);
                self.report(key_position, message)?;
            }
            let (event, span) = self.next()?;
            let mut member = self.node(event, span, depth + 1)?;
            self.trail.0.pop();
            values += member.node.values;
            height = height.max(member.node.height);
            member.place.key = Some(key_position);
            if let Some(key) = key.filter(|_| first.is_none()) {
                members.insert(key.clone(), member.node.value);
                places.insert(key, member.place);
            }
        }
        Ok(Built {
            node: Anchored {
                value: Value::Object(members),
                values,
                height: height + 1,
            },
            place: Place {
                value: position,
                key: None,
                members: Members::Keys(places),
            },
        })
    }

    /// A mapping key, which must be a string: `None` (and an error) when it is not.
    fn key(&mut self, event: Event<'t>, span: Span, depth: usize) -> Step<Option<String>> {
        let position = Position::of(&span.start);
        let message = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = self.scalar(&text, style, tag.as_deref(), position)?;
                if anchor != 0 {
                    let node = Anchored {
                        value: value.clone(),
                        values: 1,
                        height: 0,
                    };
                    self.anchor(anchor, &node);
                }
                match value {
                    Value::String(key) => return Ok(Some(key)),
                    _ if text.is_empty() => {
                        "a key is missing (an empty key is null); keys must be strings".to_owned()
                    }
                    other => format!(
                        "the key {text} is {}; keys must be strings, so quote it: \"{text}\"",
                        describe(&other, Format::Yaml)
                    ),
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).map(|anchored| &anchored.value) {
                Some(Value::String(key)) => return Ok(Some(key.clone())),
                Some(other) => format!(
                    "the key {} names {}; keys must be strings",
                    self.source(span),
                    describe(other, Format::Yaml)
                ),
                None => self.unresolved(id, span),
            },
            collection => {
                let built = self.node(collection, span, depth + 1)?;
                format!(
                    "a key is {}; keys must be strings",
                    describe(&built.node.value, Format::Yaml)
                )
            }
        };
        self.report(position, message)?;
        Ok(None)
    }

    /// The value of an alias: a copy of what its anchor names, charged in full.
    fn alias(&mut self, id: usize, span: Span, depth: usize) -> Step<Built> {
        let position = Position::of(&span.start);
        let Some((values, height)) = self.anchors.get(&id).map(|a| (a.values, a.height)) else {
            let message = self.unresolved(id, span);
            self.report(position, message)?;
            return Ok(Built::leaf(Value::Null, position));
        };
        if depth + height > MAX_DEPTH {
            return Err(self.fail(position, too_deep()));
        }
        if self.values.saturating_add(values) > MAX_VALUES {
            return Err(self.fail(
                position,
                format!(
                    "aliases expand this file past {MAX_VALUES} values (each alias counts as a \
                     copy of what it names); a spec file needs far fewer"
                ),
            ));
        }
        self.values += values;
        let value = self
            .anchors
            .get(&id)
            .map(|a| a.value.clone())
            .unwrap_or_default();
        Ok(Built {
            node: Anchored {
                value,
                values,
                height,
            },
            place: Place::leaf(position),
        })
    }

    /// Remembers a complete node under its anchor, if it has one (id 0 means none).
    fn anchor(&mut self, anchor: usize, node: &Anchored) {
        if anchor != 0 {
            self.open.remove(&anchor);
            self.anchors.insert(anchor, node.clone());
        }
    }

    /// Why an alias has no value to copy. The parser refuses one whose anchor it has not seen,
    /// but it keeps anchors from one document to the next, where YAML does not.
    fn unresolved(&self, id: usize, span: Span) -> String {
        let name = self.source(span);
        if self.open.contains(&id) {
            format!(
                "the alias {name} is inside the node it names; recursive structures are not \
                 supported"
            )
        } else {
            format!(
                "the alias {name} names an anchor in an earlier document; anchors do not reach \
                 across documents"
            )
        }
    }

    /// Opens a collection inside `depth` others.
    fn enter(&mut self, depth: usize, position: Position, anchor: usize) -> Step<()> {
        if depth >= MAX_DEPTH {
            return Err(self.fail(position, too_deep()));
        }
        if anchor != 0 {
            self.open.insert(anchor);
        }
        self.count(1, position)
    }

    fn count(&mut self, values: usize, position: Position) -> Step<()> {
        self.values = self.values.saturating_add(values);
        if self.values > MAX_VALUES {
            return Err(self.fail(
                position,
                format!("more than {MAX_VALUES} values in this file; split it into several files"),
            ));
        }
        Ok(())
    }

    /// A scalar's value ([`resolve`]); one in error is reported and read as null.
    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        position: Position,
    ) -> Step<Value> {
        match resolve(text, style, tag) {
            Ok(value) => Ok(value),
            Err(message) => self.report(position, message).map(|()| Value::Null),
        }
    }

    /// Reports a tag on a sequence or mapping that is not its own (or not supported).
    fn collection_tag(&mut self, tag: Option<&Tag>, own: CoreTag, position: Position) -> Step<()> {
        let message = match tag.map(CoreTag::of) {
            None | Some(Ok(CoreTag::NonSpecific)) => return Ok(()),
            Some(Ok(tag)) if tag == own => return Ok(()),
            Some(Ok(tag)) => format!(
                "the tag {} does not apply to a {}",
                tag.name(),
                if own == CoreTag::Map {
                    "mapping"
                } else {
                    "sequence"
                }
            ),
            Some(Err(name)) => format!("tags are not supported (found {name})"),
        };
        self.report(position, message)
    }

    /// The next event; a syntax error stops the file.
    fn next(&mut self) -> Step<(Event<'t>, Span)> {
        match self.events.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(e)) => Err(self.syntax(&e)),
            None => {
                let position = Position::of(&self.events_end());
                Err(self.fail(position, "the YAML stream ended unexpectedly".to_owned()))
            }
        }
    }

    fn events_end(&self) -> Marker {
        let last_line = self.text.rsplit('\n').next().unwrap_or_default();
        Marker::new(
            self.text.chars().count(),
            self.text.matches('\n').count() + 1,
            last_line.chars().count(),
        )
    }

    fn syntax(&mut self, e: &ScanError) -> Stop {
        let position = Position::of(e.marker());
        let message = if e.info().contains("unknown anchor") {
            let name: String = self
                .text
                .chars()
                .skip(e.marker().index())
                .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}'))
                .collect();
            format!(
                "invalid YAML: the alias {name} names no anchor defined before it in this document"
            )
        } else {
            format!("invalid YAML: {}", e.info())
        };
        self.fail(position, message)
    }

    /// The text a span covers (its markers count characters). Only for messages, of which
    /// there are at most [`MAX_PROBLEMS`].
    fn source(&self, span: Span) -> String {
        self.text
            .chars()
            .skip(span.start.index())
            .take(span.len())
            .collect()
    }

    /// A problem with the value being read: [`Problems::report`].
    fn report(&mut self, position: Position, message: String) -> Step<()> {
        self.problems
            .report(Some(position), self.trail.pointer(), message)
    }

    fn fail(&mut self, position: Position, message: String) -> Stop {
        self.problems.fail(position, message)
    }
}

/// A scalar's value: what its tag says, or for a plain scalar without one, what the core
/// schema resolves it to; a quoted scalar without a tag is a string.
fn resolve(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let Some(tag) = tag else {
        return if style == ScalarStyle::Plain {
            resolve_plain(text)
        } else {
            Ok(Value::String(text.to_owned()))
        };
    };
    let tag = CoreTag::of(tag).map_err(|name| format!("tags are not supported (found {name})"))?;
    let mismatch = || format!("'{text}' does not match its tag {}", tag.name());
    match tag {
        CoreTag::Str | CoreTag::NonSpecific => Ok(Value::String(text.to_owned())),
        CoreTag::Null if is_null(text) => Ok(Value::Null),
        CoreTag::Null => Err(mismatch()),
        CoreTag::Bool => bool_of(text).map(Value::Bool).ok_or_else(mismatch),
        CoreTag::Int => int_of(text).unwrap_or_else(|| Err(mismatch())),
        CoreTag::Float => float_of(text).unwrap_or_else(|| Err(mismatch())),
        CoreTag::Map => Err("the tag !!map is for mappings, not a scalar".to_owned()),
        CoreTag::Seq => Err("the tag !!seq is for sequences, not a scalar".to_owned()),
    }
}

/// `null`, `Null`, `NULL`, `~` or nothing.
fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn bool_of(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// A plain scalar by the core schema: null, boolean, integer, float, else a string.
fn resolve_plain(text: &str) -> Result<Value, String> {
    if is_null(text) {
        return Ok(Value::Null);
    }
    if let Some(b) = bool_of(text) {
        return Ok(Value::Bool(b));
    }
    if let Some(int) = int_of(text) {
        return int;
    }
    if let Some(float) = float_of(text) {
        return float;
    }
    Ok(Value::String(text.to_owned()))
}

/// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+` as a number; `None` when the text is not
/// one of those, an error when it is but does not fit 64 bits.
fn int_of(text: &str) -> Option<Result<Value, String>> {
    let all = |s: &str, digit: fn(&u8) -> bool| !s.is_empty() && s.bytes().all(|b| digit(&b));
    let parsed = if let Some(hex) = text.strip_prefix("0x") {
        all(hex, u8::is_ascii_hexdigit)
            .then(|| u64::from_str_radix(hex, 16).map(Number::from).ok())?
    } else if let Some(octal) = text.strip_prefix("0o") {
        all(octal, |b| (b'0'..=b'7').contains(b))
            .then(|| u64::from_str_radix(octal, 8).map(Number::from).ok())?
    } else {
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        if !all(digits, u8::is_ascii_digit) {
            return None;
        }
        if text.starts_with('-') {
            text.parse::<i64>().map(Number::from).ok()
        } else {
            digits.parse::<u64>().map(Number::from).ok()
        }
    };
    Some(parsed.map(Value::Number).ok_or_else(|| {
        format!("the integer {text} does not fit in 64 bits; quote it to make it a string")
    }))
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` as a number; `None` when the text is
/// not a float, an error for infinities, NaN and what overflows.
fn float_of(text: &str) -> Option<Result<Value, String>> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some(Err(format!(
            "{text} is not a number JSON can hold (no infinities or NaN); quote it to make it a string"
        )));
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty())
        }
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !(mantissa_ok && exponent_ok) {
        return None;
    }
    Some(
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("the number {text} is too large; quote it to make it a string")),
    )
}

// ------------------------------------------------------------------------------------------
// JSON

/// A JSON file: one object, or an array of objects (one document each).
fn read_json(file: &Path, text: &str) -> Result<Vec<Document>, Vec<SourceError>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| vec![json_syntax(file, text, &e)])?;
    let mut scanner = JsonScanner {
        text,
        at: 0,
        line: 1,
        column: 1,
        problems: Problems::new(file),
        trail: Trail::default(),
    };
    let places = scanner.top();
    let mut problems = scanner.problems;
    let expected = match &value {
        Value::Array(items) => items.len(),
        _ => 1,
    };
    // Positions are a help, not the content: should the scanner ever disagree with serde_json,
    // the documents load without them.
    let places: Vec<Option<Place>> = match places {
        Some(places) if places.len() == expected => places.into_iter().map(Some).collect(),
        _ => vec![None; expected],
    };
    let mut documents = Vec::new();
    match value {
        Value::Object(_) => documents.extend(places.into_iter().map(|places| Document {
            file: file.to_path_buf(),
            index: 0,
            value: value.clone(),
            places,
        })),
        Value::Array(items) => {
            for (index, (item, places)) in items.into_iter().zip(places).enumerate() {
                if item.is_object() {
                    documents.push(Document {
                        file: file.to_path_buf(),
                        index,
                        value: item,
                        places,
                    });
                    continue;
                }
                let message = format!(
                    "item {index} of the array is {}; each must be a spec object (kind: ..., \
                     name: ...)",
                    describe(&item, Format::Json)
                );
                let position = places.map(|place| place.value);
                if problems
                    .report(position, format!("/{index}"), message)
                    .is_err()
                {
                    break;
                }
            }
        }
        other => {
            let position = places.first().and_then(|place| Some(place.as_ref()?.value));
            let message = format!(
                "holds {}; a JSON spec file holds an object or an array of objects",
                describe(&other, Format::Json)
            );
            problems
                .list
                .push(SourceError::at(file, position, None, message));
        }
    }
    if !problems.list.is_empty() {
        return Err(problems.list);
    }
    Ok(documents)
}

/// A serde_json error as a placed error. serde_json counts columns in bytes; people and
/// editors count characters.
fn json_syntax(file: &Path, text: &str, e: &serde_json::Error) -> SourceError {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    let message = if message.starts_with("recursion limit exceeded") {
        too_deep()
    } else {
        format!("invalid JSON: {message}")
    };
    let position = (e.line() > 0).then(|| {
        let line = text.split('\n').nth(e.line() - 1).unwrap_or_default();
        let column = line
            .char_indices()
            .take_while(|(at, _)| *at < e.column())
            .count();
        Position {
            line: e.line(),
            column: column.max(1),
        }
    });
    SourceError::at(file, position, None, message)
}

/// Walks JSON text that serde_json has already accepted, noting where each value starts,
/// keys written twice, and nesting beyond [`MAX_DEPTH`]. On anything unexpected it gives up
/// (`None`): the positions are then missing, never wrong.
struct JsonScanner<'t> {
    text: &'t str,
    /// Byte offset of the next character.
    at: usize,
    line: usize,
    column: usize,
    problems: Problems<'t>,
    trail: Trail,
}

impl JsonScanner<'_> {
    /// The places of each document: one for an object, one per item for an array.
    fn top(&mut self) -> Option<Vec<Place>> {
        self.skip_space();
        if self.peek()? != '[' {
            return Some(vec![self.value(0)?]);
        }
        self.bump();
        let mut documents = Vec::new();
        self.skip_space();
        if self.peek()? == ']' {
            return Some(documents);
        }
        loop {
            documents.push(self.value(0)?);
            self.skip_space();
            match self.bump()? {
                ',' => {}
                ']' => return Some(documents),
                _ => return None,
            }
        }
    }

    /// The value that starts here, inside `depth` objects and arrays.
    fn value(&mut self, depth: usize) -> Option<Place> {
        self.skip_space();
        let position = self.position();
        let open = self.peek()?;
        if matches!(open, '{' | '[') && depth >= MAX_DEPTH {
            self.problems.fail(position, too_deep());
            return None;
        }
        let members = match open {
            '{' => Members::Keys(self.object(depth)?),
            '[' => Members::Items(self.array(depth)?),
            '"' => {
                self.string()?;
                Members::None
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | ']' | '}' | ' ' | '\t' | '\n' | '\r'))
                {
                    self.bump();
                }
                Members::None
            }
        };
        Some(Place {
            value: position,
            key: None,
            members,
        })
    }

    fn object(&mut self, depth: usize) -> Option<HashMap<String, Place>> {
        self.bump();
        let mut members: HashMap<String, Place> = HashMap::new();
        self.skip_space();
        if self.peek()? == '}' {
            self.bump();
            return Some(members);
        }
        loop {
            self.skip_space();
            let key_position = self.position();
            let key = self.string()?;
            self.skip_space();
            (self.bump()? == ':').then_some(())?;
            self.trail.0.push(key.clone());
            let first = members.get(&key).and_then(|place| place.key);
            if let Some(first) = first {
                let message = format!("duplicate key '{key}' (first at line {})", first.line);
                let pointer = self.trail.pointer();
                self.problems
                    .report(Some(key_position), pointer, message)
                    .ok()?;
            }
            let mut member = self.value(depth + 1)?;
            self.trail.0.pop();
            member.key = Some(key_position);
            if first.is_none() {
                members.insert(key, member);
            }
            self.skip_space();
            match self.bump()? {
                ',' => {}
                '}' => return Some(members),
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Vec<Place>> {
        self.bump();
        let mut items = Vec::new();
        self.skip_space();
        if self.peek()? == ']' {
            self.bump();
            return Some(items);
        }
        loop {
            self.trail.0.push(items.len().to_string());
            items.push(self.value(depth + 1)?);
            self.trail.0.pop();
            self.skip_space();
            match self.bump()? {
                ',' => {}
                ']' => return Some(items),
                _ => return None,
            }
        }
    }

    /// A string token, decoded by serde_json (escapes, surrogate pairs).
    fn string(&mut self) -> Option<String> {
        let start = self.at;
        (self.bump()? == '"').then_some(())?;
        loop {
            match self.bump()? {
                '\\' => {
                    self.bump()?;
                }
                '"' => break,
                _ => {}
            }
        }
        serde_json::from_str(self.text.get(start..self.at)?).ok()
    }

    fn skip_space(&mut self) {
        while self
            .peek()
            .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
        {
            self.bump();
        }
    }

    fn peek(&self) -> Option<char> {
        self.text.get(self.at..)?.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn position(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(text: &str) -> Vec<Document> {
        match parse(Path::new("specs/keys.yaml"), text, Format::Yaml) {
            Ok(documents) => documents,
            Err(errors) => panic!("{}", render(&errors)),
        }
    }

    fn json_docs(text: &str) -> Vec<Document> {
        match parse(Path::new("specs/keys.json"), text, Format::Json) {
            Ok(documents) => documents,
            Err(errors) => panic!("{}", render(&errors)),
        }
    }

    fn yaml_errors(text: &str) -> Vec<SourceError> {
        parse(Path::new("specs/keys.yaml"), text, Format::Yaml).expect_err("should be refused")
    }

    fn json_errors(text: &str) -> Vec<SourceError> {
        parse(Path::new("specs/keys.json"), text, Format::Json).expect_err("should be refused")
    }

    /// The one error, as a person sees it.
    fn one(errors: Vec<SourceError>) -> String {
        assert_eq!(errors.len(), 1, "{}", render(&errors));
        errors[0].to_string()
    }

    fn render(errors: &[SourceError]) -> String {
        errors.iter().map(|e| format!("{e}\n")).collect()
    }

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    const DESIGN_EXAMPLE: &str = r#"# yaml-language-server: $schema=../schemas/keyward-spec.schema.json
kind: ApiKey
name: ci-nightly                  # identity: unique per account; renaming = a new key
description: Nightly evals from CI
scopes: [agent:editor, {action: read, resource: "projects/*"}]
allowed_cidrs: [10.0.0.0/8, "2001:db8::/32"]
rate_limit_per_minute: 120
expires_at: 2027-06-30T00:00:00Z
active: true                      # false deactivates
metadata: {team: platform}
secret:                           # where the secret goes
  sink: file                      # stdout | file
  path: secrets/ci-nightly.key
  # secret_id: keyward/ci-nightly (aws-secretsmanager)
---
kind: SharingGroup
name: platform-team
---
kind: RoutePolicy
name: agents-api
routes:
  - {method: GET, path: "/agents/{agent_id}", action: read}
  - method: POST
    path: /agents
"#;

    #[test]
    fn formats_come_from_the_extension() {
        assert_eq!(Format::of(Path::new("a/keys.yaml")), Some(Format::Yaml));
        assert_eq!(Format::of(Path::new("keys.yml")), Some(Format::Yaml));
        assert_eq!(Format::of(Path::new("KEYS.YAML")), Some(Format::Yaml));
        assert_eq!(Format::of(Path::new("keys.json")), Some(Format::Json));
        assert_eq!(Format::of(Path::new("keys.toml")), None);
        assert_eq!(Format::of(Path::new("yaml")), None);
        assert_eq!(Format::of(Path::new(".yaml")), None);
    }

    #[test]
    fn yaml_documents_carry_the_position_of_every_value() {
        let documents = yaml(DESIGN_EXAMPLE);
        assert_eq!(documents.len(), 3);
        let key = &documents[0];
        assert_eq!(key.index, 0);
        assert_eq!(key.file, Path::new("specs/keys.yaml"));
        assert_eq!(
            key.value["scopes"][1],
            json!({"action": "read", "resource": "projects/*"})
        );
        assert_eq!(key.value["metadata"], json!({"team": "platform"}));
        // The comment line above counts: `kind` is on line 2.
        assert_eq!(key.position(""), at(2, 1));
        assert_eq!(key.position("/kind"), at(2, 7));
        assert_eq!(key.key_position("/kind"), at(2, 1));
        assert_eq!(key.position("/name"), at(3, 7));
        assert_eq!(key.position("/scopes"), at(5, 9));
        assert_eq!(key.position("/scopes/0"), at(5, 10));
        assert_eq!(key.position("/scopes/1"), at(5, 24));
        assert_eq!(key.position("/scopes/1/resource"), at(5, 49));
        assert_eq!(key.key_position("/scopes/1/resource"), at(5, 39));
        assert_eq!(key.position("/allowed_cidrs/1"), at(6, 29));
        assert_eq!(key.position("/secret"), at(12, 3));
        assert_eq!(key.position("/secret/path"), at(13, 9));
        assert_eq!(key.key_position("/secret/path"), at(13, 3));

        let group = &documents[1];
        assert_eq!(group.index, 1);
        assert_eq!(
            group.value,
            json!({"kind": "SharingGroup", "name": "platform-team"})
        );
        assert_eq!(group.position("/name"), at(17, 7));

        let policy = &documents[2];
        assert_eq!(policy.index, 2);
        assert_eq!(policy.position("/routes/0/path"), at(22, 25));
        assert_eq!(policy.position("/routes/1"), at(23, 5));
        assert_eq!(policy.position("/routes/1/path"), at(24, 11));
        assert_eq!(
            policy.value["routes"][1],
            json!({"method": "POST", "path": "/agents"})
        );
    }

    #[test]
    fn a_pointer_without_a_place_gets_its_nearest_ancestors() {
        let documents = yaml(DESIGN_EXAMPLE);
        let key = &documents[0];
        assert_eq!(key.position("/scopes/1/nope"), at(5, 24));
        assert_eq!(key.position("/scopes/7/a/b"), at(5, 9));
        assert_eq!(key.position("/missing"), at(2, 1));
        assert_eq!(key.key_position("/missing"), at(2, 1));
        assert_eq!(key.position("not a pointer"), None);
        let error = key.error("/scopes/1/resource", "no such resource");
        assert_eq!(error.to_string(), "specs/keys.yaml:5:49: no such resource");
        assert_eq!(error.pointer.as_deref(), Some("/scopes/1/resource"));
    }

    #[test]
    fn scalars_resolve_by_the_yaml_1_2_core_schema() {
        let documents = yaml(
            "empty:\nlower_null: null\ntilde: ~\ntitle_null: Null\nt: true\nT: True\nF: FALSE\n\
             yes: yes\non: on\nno: No\ny: y\n\
             int: 42\nneg: -17\nplus: +5\nzero_padded: 007\nhex: 0x1F\noctal: 0o17\n\
             big: 18446744073709551615\nsmall: -9223372036854775808\n\
             float: 1.5\nleading_dot: .5\ntrailing_dot: 2.\nexp: 1e3\nneg_exp: -2.5E-3\n\
             date: 2027-06-30T00:00:00Z\nday: 2027-06-30\nversion: 1.2.3\nsigned_hex: -0x1F\n\
             octal_c: 017\nupper_hex: 0X1F\nnan_word: nan\ninf_word: inf\n\
             quoted_true: \"true\"\nquoted_int: '12'\nquoted_null: \"null\"\n\
             cidr: 10.0.0.0/8\nscope: agent:editor\nmultiline: >-\n  folded\n  text\n",
        );
        let value = &documents[0].value;
        let expected = json!({
            "empty": null, "lower_null": null, "tilde": null, "title_null": null,
            "t": true, "T": true, "F": false,
            "yes": "yes", "on": "on", "no": "No", "y": "y",
            "int": 42, "neg": -17, "plus": 5, "zero_padded": 7, "hex": 31, "octal": 15,
            "big": u64::MAX, "small": i64::MIN,
            "float": 1.5, "leading_dot": 0.5, "trailing_dot": 2.0, "exp": 1000.0,
            "neg_exp": -0.0025,
            "date": "2027-06-30T00:00:00Z", "day": "2027-06-30", "version": "1.2.3",
            "signed_hex": "-0x1F", "octal_c": 17, "upper_hex": "0X1F",
            "nan_word": "nan", "inf_word": "inf",
            "quoted_true": "true", "quoted_int": "12", "quoted_null": "null",
            "cidr": "10.0.0.0/8", "scope": "agent:editor", "multiline": "folded text",
        });
        assert_eq!(value, &expected);
        // Key order is the file's.
        let keys: Vec<_> = value.as_object().unwrap().keys().take(3).collect();
        assert_eq!(keys, ["empty", "lower_null", "tilde"]);
    }

    #[test]
    fn core_schema_tags_are_honoured() {
        let documents = yaml(
            "s: !!str 12\nb: !!str true\ni: !!int \"12\"\nf: !!float 1\nn: !!null ~\n\
             t: !!bool TRUE\nm: !!map {a: 1}\nq: !!seq [1]\nv: !<tag:yaml.org,2002:str> 3\n\
             plain: ! 12\n",
        );
        assert_eq!(
            documents[0].value,
            json!({
                "s": "12", "b": "true", "i": 12, "f": 1.0, "n": null, "t": true,
                "m": {"a": 1}, "q": [1], "v": "3", "plain": "12",
            })
        );
    }

    #[test]
    fn other_tags_are_refused() {
        let errors = yaml_errors("kind: !ApiKey x\ndata: !!binary aGVsbG8=\nset: !!set {a}\n");
        assert_eq!(
            render(&errors),
            "specs/keys.yaml:1:7: tags are not supported (found !ApiKey)\n\
             specs/keys.yaml:2:7: tags are not supported (found !!binary)\n\
             specs/keys.yaml:3:6: tags are not supported (found !!set)\n"
        );
        assert_eq!(errors[1].pointer.as_deref(), Some("/data"));
        let errors = yaml_errors("a: !!int twelve\nb: !!map x\nc: !!str [1]\n");
        assert_eq!(
            render(&errors),
            "specs/keys.yaml:1:4: 'twelve' does not match its tag !!int\n\
             specs/keys.yaml:2:4: the tag !!map is for mappings, not a scalar\n\
             specs/keys.yaml:3:4: the tag !!str does not apply to a sequence\n"
        );
    }

    #[test]
    fn infinities_nan_and_overflow_are_refused() {
        let errors = yaml_errors(
            "a: .inf\nb: -.Inf\nc: .NaN\nd: 1e999\ne: 18446744073709551616\nf: 0x1FFFFFFFFFFFFFFFF\n",
        );
        assert_eq!(
            render(&errors),
            "specs/keys.yaml:1:4: .inf is not a number JSON can hold (no infinities or NaN); quote it to make it a string\n\
             specs/keys.yaml:2:4: -.Inf is not a number JSON can hold (no infinities or NaN); quote it to make it a string\n\
             specs/keys.yaml:3:4: .NaN is not a number JSON can hold (no infinities or NaN); quote it to make it a string\n\
             specs/keys.yaml:4:4: the number 1e999 is too large; quote it to make it a string\n\
             specs/keys.yaml:5:4: the integer 18446744073709551616 does not fit in 64 bits; quote it to make it a string\n\
             specs/keys.yaml:6:4: the integer 0x1FFFFFFFFFFFFFFFF does not fit in 64 bits; quote it to make it a string\n"
        );
        // Quoted, they are strings.
        assert_eq!(yaml("a: '.nan'\n")[0].value, json!({"a": ".nan"}));
    }

    #[test]
    fn empty_documents_are_skipped() {
        let documents = yaml("---\nname: a\n---\n---\n# only a comment\n---\nname: b\n---\n");
        assert_eq!(documents.len(), 2);
        assert_eq!(
            (documents[0].index, &documents[0].value),
            (0, &json!({"name": "a"}))
        );
        assert_eq!(
            (documents[1].index, &documents[1].value),
            (1, &json!({"name": "b"}))
        );
        assert_eq!(documents[1].position("/name"), at(7, 7));
        let documents = yaml("name: a\n...\n---\nname: b\n...\n");
        assert_eq!(documents.len(), 2);
    }

    #[test]
    fn files_without_documents_are_refused() {
        let expected = "specs/keys.yaml: holds no documents (it is empty or only comments); a spec file holds at least one";
        assert_eq!(one(yaml_errors("")), expected);
        assert_eq!(one(yaml_errors("\n\n")), expected);
        assert_eq!(
            one(yaml_errors("# yaml-language-server: $schema=x.json\n")),
            expected
        );
        assert_eq!(one(yaml_errors("---\n---\n")), expected);
        assert_eq!(one(yaml_errors("\u{FEFF}")), expected);
        let expected = "specs/keys.json: holds no documents (it is empty or an empty array); a spec file holds at least one";
        assert_eq!(one(json_errors("")), expected);
        assert_eq!(one(json_errors(" \n")), expected);
        assert_eq!(one(json_errors("[ ]")), expected);
    }

    #[test]
    fn documents_must_be_mappings() {
        let errors = yaml_errors("name: a\n---\n- a\n- b\n---\njust text\n---\n~\n");
        assert_eq!(
            render(&errors),
            "specs/keys.yaml:3:1: a spec document is a mapping (kind: ..., name: ...), and this one is a sequence\n\
             specs/keys.yaml:6:1: a spec document is a mapping (kind: ..., name: ...), and this one is a string\n\
             specs/keys.yaml:8:1: a spec document is a mapping (kind: ..., name: ...), and this one is null\n"
        );
    }

    #[test]
    fn flow_and_block_styles_and_comments_place_values_alike() {
        let documents = yaml(
            "# head comment\n\
             kind: ApiKey # trailing\n\
             scopes:\n\
             \x20 # a comment in a list\n\
             \x20 - agent:editor\n\
             \x20 - action: read   # block mapping in a block list\n\
             \x20   resource: projects/*\n\
             \x20 - {action: write,\n\
             \x20    resource: \"agents/*\"}\n\
             workspaces: [\n\
             \x20 ws_1, # flow across lines\n\
             \x20 ws_2\n\
             ]\n\
             description: |\n\
             \x20 two\n\
             \x20 lines\n\
             empty_map: {}\n\
             empty_list: []\n",
        );
        let document = &documents[0];
        assert_eq!(
            document.value,
            json!({
                "kind": "ApiKey",
                "scopes": ["agent:editor", {"action": "read", "resource": "projects/*"},
                           {"action": "write", "resource": "agents/*"}],
                "workspaces": ["ws_1", "ws_2"],
                "description": "two\nlines\n",
                "empty_map": {}, "empty_list": [],
            })
        );
        assert_eq!(document.position("/scopes/0"), at(5, 5));
        assert_eq!(document.position("/scopes/1"), at(6, 5));
        assert_eq!(document.position("/scopes/1/resource"), at(7, 15));
        assert_eq!(document.position("/scopes/2"), at(8, 5));
        assert_eq!(document.position("/scopes/2/resource"), at(9, 16));
        assert_eq!(document.position("/workspaces/1"), at(12, 3));
        // A block scalar starts where its text does.
        assert_eq!(document.position("/description"), at(15, 3));
        assert_eq!(document.position("/empty_list"), at(18, 13));
    }

    #[test]
    fn crlf_line_ends_and_a_byte_order_mark_are_tolerated() {
        let documents = yaml("\u{FEFF}kind: ApiKey\r\nname: ci\r\n---\r\nname: b\r\n");
        assert_eq!(documents[0].value, json!({"kind": "ApiKey", "name": "ci"}));
        assert_eq!(documents[0].position("/kind"), at(1, 7));
        assert_eq!(documents[1].position("/name"), at(4, 7));
        let documents =
            json_docs("\u{FEFF}{\r\n  \"kind\": \"ApiKey\",\r\n\t\"name\": \"ci\"\r\n}");
        assert_eq!(documents[0].value, json!({"kind": "ApiKey", "name": "ci"}));
        assert_eq!(documents[0].position("/kind"), at(2, 11));
        assert_eq!(documents[0].position("/name"), at(3, 10));
    }

    #[test]
    fn yaml_syntax_errors_carry_line_and_column() {
        let errors = yaml_errors("kind: ApiKey\nname: a\n  scopes: [x]\n");
        assert_eq!(
            one(errors),
            "specs/keys.yaml:3:9: invalid YAML: mapping values are not allowed in this context"
        );
        let errors = yaml_errors("kind: ApiKey\nscopes: [a, b\n");
        assert!(one(errors).starts_with("specs/keys.yaml:3:1: invalid YAML: "));
        let errors = yaml_errors("a: 1\n---\nb: \"unterminated\n");
        let error = one(errors);
        assert!(
            error.starts_with("specs/keys.yaml:3:4: invalid YAML: "),
            "{error}"
        );
        let errors = yaml_errors("a: *nowhere\n");
        assert_eq!(
            one(errors),
            "specs/keys.yaml:1:4: invalid YAML: the alias *nowhere names no anchor defined before it in this document"
        );
        // Columns count characters, not bytes.
        let errors = yaml_errors("name: é\n  é: x\n");
        assert_eq!(
            one(errors),
            "specs/keys.yaml:2:4: invalid YAML: mapping values are not allowed in this context"
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_the_second() {
        let errors = yaml_errors(
            "kind: ApiKey\nname: a\nscopes: [x]\nname: b\nmetadata: {team: x, team: y}\n",
        );
        assert_eq!(
            render(&errors),
            "specs/keys.yaml:4:1: duplicate key 'name' (first at line 2)\n\
             specs/keys.yaml:5:21: duplicate key 'team' (first at line 5)\n"
        );
        assert_eq!(errors[0].pointer.as_deref(), Some("/name"));
        assert_eq!(errors[1].pointer.as_deref(), Some("/metadata/team"));
        // A quoted key is the same key.
        let errors = yaml_errors("name: a\n\"name\": b\n");
        assert_eq!(
            one(errors),
            "specs/keys.yaml:2:1: duplicate key 'name' (first at line 1)"
        );
    }

    #[test]
    fn keys_must_be_strings() {
        let errors = yaml_errors("kind: ApiKey\n1: one\ntrue: yes\n? [a, b]\n: list\n: empty\n");
        assert_eq!(
            render(&errors),
            "specs/keys.yaml:2:1: the key 1 is a number; keys must be strings, so quote it: \"1\"\n\
             specs/keys.yaml:3:1: the key true is a boolean; keys must be strings, so quote it: \"true\"\n\
             specs/keys.yaml:4:3: a key is a sequence; keys must be strings\n\
             specs/keys.yaml:6:1: a key is missing (an empty key is null); keys must be strings\n"
        );
        // Quoted, such keys are strings.
        assert_eq!(
            yaml("'1': one\n\"true\": yes\n")[0].value,
            json!({"1": "one", "true": "yes"})
        );
        let errors = yaml_errors("list: &l [1]\n*l : x\n");
        assert_eq!(
            one(errors),
            "specs/keys.yaml:2:1: the key *l names a sequence; keys must be strings"
        );
    }

    #[test]
    fn aliases_copy_what_their_anchor_names() {
        let documents = yaml(
            "defaults: &d {action: read, resource: \"projects/*\"}\n\
             name: &n ci\n\
             scopes: [*d, {action: write}]\n\
             owner: *n\n\
             *n : aliased key\n",
        );
        let document = &documents[0];
        assert_eq!(
            document.value["scopes"][0],
            json!({"action": "read", "resource": "projects/*"})
        );
        assert_eq!(document.value["owner"], "ci");
        assert_eq!(document.value["ci"], "aliased key");
        // Inside an alias, a pointer is placed at the alias.
        assert_eq!(document.position("/scopes/0"), at(3, 10));
        assert_eq!(document.position("/scopes/0/resource"), at(3, 10));
        assert_eq!(document.position("/scopes/1/action"), at(3, 23));
        // Anchors do not outlive their document.
        let errors = yaml_errors("a: &x 1\n---\nb: *x\n");
        assert_eq!(
            one(errors),
            "specs/keys.yaml:3:4: the alias *x names an anchor in an earlier document; \
             anchors do not reach across documents"
        );
    }

    #[test]
    fn an_alias_inside_what_it_names_is_refused() {
        let errors = yaml_errors("a: &x [1, *x]\n");
        assert_eq!(
            one(errors),
            "specs/keys.yaml:1:11: the alias *x is inside the node it names; recursive structures are not supported"
        );
    }

    #[test]
    fn an_alias_bomb_is_refused_quickly() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let started = std::time::Instant::now();
        let error = one(yaml_errors(&text));
        assert!(
            error.contains(&format!(
                "aliases expand this file past {MAX_VALUES} values"
            )),
            "{error}"
        );
        assert!(error.starts_with("specs/keys.yaml:5:"), "{error}");
        // Not a timing test: a bomb that went off would take minutes and gigabytes.
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        // Many values without aliases count too.
        let text = format!("a: [{}]\n", vec!["1"; MAX_VALUES].join(","));
        let error = one(yaml_errors(&text));
        assert!(
            error.contains(&format!("more than {MAX_VALUES} values in this file")),
            "{error}"
        );
    }

    #[test]
    fn nesting_is_limited() {
        let nested = |levels: usize| format!("a: {}{}\n", "[".repeat(levels), "]".repeat(levels));
        // The root mapping is one level.
        assert_eq!(yaml(&nested(MAX_DEPTH - 1)).len(), 1);
        let error = one(yaml_errors(&nested(MAX_DEPTH)));
        assert_eq!(
            error,
            format!(
                "specs/keys.yaml:1:{}: nested more than {MAX_DEPTH} levels deep; a spec needs far fewer",
                MAX_DEPTH + 3
            )
        );
        // Through an alias as well.
        let deep = |levels: usize, inner: &str| {
            format!("{}{inner}{}", "[".repeat(levels), "]".repeat(levels))
        };
        let error = one(yaml_errors(&format!(
            "a: &x {}\nb: {}\n",
            deep(40, ""),
            deep(25, "*x")
        )));
        assert!(error.contains("nested more than"), "{error}");
        let errors = json_errors(&format!(
            "{{\"a\": {}{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        ));
        assert_eq!(
            one(errors),
            format!(
                "specs/keys.json:1:{}: nested more than {MAX_DEPTH} levels deep; a spec needs far fewer",
                MAX_DEPTH + 6
            )
        );
        // Beyond serde_json's own limit, the same message.
        let errors = json_errors(&format!(
            "{{\"a\": {}{}}}",
            "[".repeat(200),
            "]".repeat(200)
        ));
        assert!(one(errors).contains("nested more than"));
    }

    #[test]
    fn pointers_escape_tilde_and_slash() {
        assert_eq!(child_pointer("", "a/b"), "/a~1b");
        assert_eq!(child_pointer("/x", "c~d"), "/x/c~0d");
        assert_eq!(child_pointer("", "~1"), "/~01");
        let documents = yaml("\"~1\": tilde-one\n\"/\": slash\n");
        assert_eq!(documents[0].position("/~01"), at(1, 7));
        assert_eq!(documents[0].position("/~1"), at(2, 6));
        let documents = yaml("routes:\n  \"/agents/{id}\": x\n  a~b: {c/d: 1}\n");
        let document = &documents[0];
        assert_eq!(document.position("/routes/~1agents~1{id}"), at(2, 19));
        assert_eq!(document.position("/routes/a~0b/c~1d"), at(3, 14));
        let documents = json_docs("{\"a/b\": {\"~\": 1, \"\\u00e9\\/\": 2}}");
        let document = &documents[0];
        assert_eq!(document.position("/a~1b/~0"), at(1, 15));
        assert_eq!(document.position("/a~1b/é~1"), at(1, 30));
    }

    #[test]
    fn json_objects_carry_positions() {
        let text = "{\n  \"kind\": \"ApiKey\",\n  \"name\": \"ci-nightly\",\n  \"scopes\": [\"agent:editor\", {\"action\": \"read\", \"resource\": \"projects/*\"}],\n  \"note\": \"naïve \\\"quoted\\\" \\ud83d\\ude00\", \"rate_limit_per_minute\": 120, \"active\": true, \"x\": null\n}\n";
        let documents = json_docs(text);
        assert_eq!(documents.len(), 1);
        let document = &documents[0];
        assert_eq!(document.index, 0);
        assert_eq!(document.value["note"], "naïve \"quoted\" 😀");
        assert_eq!(document.position(""), at(1, 1));
        assert_eq!(document.position("/kind"), at(2, 11));
        assert_eq!(document.key_position("/kind"), at(2, 3));
        assert_eq!(document.position("/scopes/0"), at(4, 14));
        assert_eq!(document.position("/scopes/1"), at(4, 30));
        assert_eq!(document.position("/scopes/1/resource"), at(4, 61));
        assert_eq!(document.position("/rate_limit_per_minute"), at(5, 69));
        assert_eq!(document.position("/active"), at(5, 84));
        assert_eq!(document.position("/x"), at(5, 95));
    }

    #[test]
    fn json_arrays_hold_one_document_per_item() {
        let documents = json_docs(
            "[\n  {\"kind\": \"ApiKey\", \"name\": \"a\"},\n  {\"kind\": \"SharingGroup\",\n   \"name\": \"b\"}\n]",
        );
        assert_eq!(documents.len(), 2);
        assert_eq!((documents[0].index, documents[1].index), (0, 1));
        assert_eq!(
            documents[1].value,
            json!({"kind": "SharingGroup", "name": "b"})
        );
        assert_eq!(documents[0].position("/name"), at(2, 30));
        assert_eq!(documents[1].position(""), at(3, 3));
        assert_eq!(documents[1].position("/name"), at(4, 12));
    }

    #[test]
    fn json_of_the_wrong_shape_is_refused() {
        let errors = json_errors("[{\"name\": \"a\"}, \"b\", [1]]");
        assert_eq!(
            render(&errors),
            "specs/keys.json:1:17: item 1 of the array is a string; each must be a spec object (kind: ..., name: ...)\n\
             specs/keys.json:1:22: item 2 of the array is an array; each must be a spec object (kind: ..., name: ...)\n"
        );
        assert_eq!(errors[0].pointer.as_deref(), Some("/1"));
        assert_eq!(
            one(json_errors(" \"just a string\"")),
            "specs/keys.json:1:2: holds a string; a JSON spec file holds an object or an array of objects"
        );
    }

    #[test]
    fn json_syntax_errors_carry_line_and_column() {
        let errors = json_errors("{\n  \"kind\": \"ApiKey\",\n  \"name\": ci\n}");
        assert_eq!(
            one(errors),
            "specs/keys.json:3:11: invalid JSON: expected value"
        );
        // Columns count characters, not bytes.
        let errors = json_errors("{\"é\": \"é\" x}");
        assert_eq!(
            one(errors),
            "specs/keys.json:1:11: invalid JSON: expected `,` or `}`"
        );
        let errors = json_errors("{\"a\": 1,}");
        assert_eq!(
            one(errors),
            "specs/keys.json:1:9: invalid JSON: trailing comma"
        );
        let errors = json_errors("{\"a\": NaN}");
        assert_eq!(
            one(errors),
            "specs/keys.json:1:7: invalid JSON: expected value"
        );
        let errors = json_errors("{\"a\": [1, 2");
        assert_eq!(
            one(errors),
            "specs/keys.json:1:11: invalid JSON: EOF while parsing a list"
        );
    }

    #[test]
    fn json_duplicate_keys_are_refused() {
        let errors = json_errors(
            "{\"name\": \"a\",\n \"metadata\": {\"t\": 1, \"t\": 2},\n \"name\": \"b\"}",
        );
        assert_eq!(
            render(&errors),
            "specs/keys.json:2:23: duplicate key 't' (first at line 2)\n\
             specs/keys.json:3:2: duplicate key 'name' (first at line 1)\n"
        );
        assert_eq!(errors[1].pointer.as_deref(), Some("/name"));
        // Spelt differently, the same key.
        let errors = json_errors("{\"name\": 1, \"n\\u0061me\": 2}");
        assert_eq!(
            one(errors),
            "specs/keys.json:1:13: duplicate key 'name' (first at line 1)"
        );
    }

    #[test]
    fn errors_read_as_file_line_column_message() {
        let file = Path::new("specs/a.yaml");
        let placed = SourceError::at(file, at(3, 7), Some("/name".to_owned()), "bad".to_owned());
        assert_eq!(placed.to_string(), "specs/a.yaml:3:7: bad");
        let pointed = SourceError::at(file, None, Some("/scopes/1".to_owned()), "bad".to_owned());
        assert_eq!(pointed.to_string(), "specs/a.yaml: at /scopes/1: bad");
        assert_eq!(
            SourceError::new(file, "bad").to_string(),
            "specs/a.yaml: bad"
        );
        assert_eq!(Position { line: 2, column: 5 }.to_string(), "2:5");
    }

    #[test]
    fn problems_stop_at_a_limit() {
        let text: String = (0..2 * MAX_PROBLEMS).map(|i| format!("a: {i}\n")).collect();
        let errors = yaml_errors(&text);
        assert_eq!(errors.len(), MAX_PROBLEMS + 1);
        assert_eq!(
            errors[0].to_string(),
            "specs/keys.yaml:2:1: duplicate key 'a' (first at line 1)"
        );
        assert_eq!(
            errors[MAX_PROBLEMS].to_string(),
            format!(
                "specs/keys.yaml: stopped after {MAX_PROBLEMS} problems; fix these and run again"
            )
        );
        let text = format!(
            "{{{}}}",
            (0..2 * MAX_PROBLEMS)
                .map(|i| format!("\"a\": {i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(json_errors(&text).len(), MAX_PROBLEMS + 1);
    }

    #[test]
    fn long_keys_deep_down_cost_no_more_than_their_text() {
        // Pointers are built for errors only: kept for every value, these 20,000 items would
        // each repeat the 50 KB of keys above them (a gigabyte).
        let key = "k".repeat(1000);
        let mut yaml_text = String::new();
        let mut json_text = String::new();
        for level in 0..50 {
            yaml_text.push_str(&format!("{}{key}{level}:\n", " ".repeat(level)));
            json_text.push_str(&format!("{{\"{key}{level}\": "));
        }
        let items = vec!["1"; 20_000].join(",");
        yaml_text.push_str(&format!("{}list: [{items}]\n", " ".repeat(50)));
        json_text.push_str(&format!("{{\"list\": [{items}]}}{}", "}".repeat(50)));
        let pointer: String = (0..50).map(|level| format!("/{key}{level}")).collect();
        let last = format!("{pointer}/list/19999");
        let documents = yaml(&yaml_text);
        assert_eq!(documents[0].position(&last), at(51, 58 + 2 * 19_999));
        let documents = json_docs(&json_text);
        let first_item = json_text.find("[1").unwrap() + 2;
        assert_eq!(documents[0].position(&last), at(1, first_item + 2 * 19_999));
    }

    fn write(path: &Path, text: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn directories_are_walked_for_spec_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "b.yaml",
            "a.json",
            "sub/c.yml",
            "sub/deeper/d.YAML",
            "a/z.yaml",
            "notes.md",
            "schema.toml",
            ".hidden.yaml",
            ".git/config.yaml",
            "sub/.cache/e.yaml",
        ] {
            write(&root.join(name), b"kind: x\n");
        }
        write(&root.join("elsewhere/x.txt"), b"kind: x\n");
        let files = collect_files(&[root.to_path_buf()]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "a/z.yaml",
                "a.json",
                "b.yaml",
                "sub/c.yml",
                "sub/deeper/d.YAML"
            ]
        );
        // Given paths stay as given, files are kept whatever their name, and each file once.
        let files = collect_files(&[
            root.join("notes.md"),
            root.join("sub"),
            root.join("sub/c.yml"),
            root.join(".hidden.yaml"),
        ])
        .unwrap();
        assert_eq!(
            files,
            [
                root.join("notes.md"),
                root.join("sub/c.yml"),
                root.join("sub/deeper/d.YAML"),
                root.join(".hidden.yaml"),
            ]
        );
        // A given hidden directory is read.
        let files = collect_files(&[root.join("sub/.cache")]).unwrap();
        assert_eq!(files, [root.join("sub/.cache/e.yaml")]);
    }

    #[test]
    fn missing_paths_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a.yaml"), b"kind: x\n");
        let missing = dir.path().join("nope");
        let errors = collect_files(&[
            dir.path().join("a.yaml"),
            missing.clone(),
            dir.path().join("gone.yaml"),
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(
            errors[0].to_string(),
            format!("{}: no such file or directory", missing.display())
        );
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_followed_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("specs/a.yaml"), b"kind: x\n");
        std::os::unix::fs::symlink(root.join("specs"), root.join("specs/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("specs/a.yaml"), root.join("specs/b.yaml")).unwrap();
        std::os::unix::fs::symlink(root.join("nowhere.yaml"), root.join("specs/c.yaml")).unwrap();
        let errors = collect_files(&[root.join("specs")]).unwrap_err();
        assert_eq!(errors.len(), 1, "{}", render(&errors));
        assert_eq!(errors[0].file, root.join("specs/c.yaml"));
        std::fs::remove_file(root.join("specs/c.yaml")).unwrap();
        let files = collect_files(&[root.join("specs")]).unwrap();
        assert_eq!(
            files,
            [root.join("specs/a.yaml"), root.join("specs/b.yaml")]
        );
    }

    #[test]
    fn read_collects_documents_and_every_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            &root.join("a.yaml"),
            b"kind: ApiKey\nname: a\n---\nkind: Preset\nname: p\n",
        );
        write(
            &root.join("b.json"),
            b"[{\"kind\": \"ApiKey\", \"name\": \"b\"}]",
        );
        write(&root.join("bad.yaml"), b"name: a\nname: b\n");
        write(&root.join("latin1.yaml"), b"name: caf\xe9\n");
        write(&root.join("utf16.json"), b"\xff\xfe{\x00}\x00");
        write(&root.join("notes.txt"), b"kind: x\n");
        let mut big = b"kind: ApiKey\nname: big\nmetadata: {pad: \"".to_vec();
        big.resize(usize::try_from(MAX_FILE_BYTES).unwrap() + 1, b'x');
        write(&root.join("big.yaml"), &big);
        let files: Vec<_> = [
            "a.yaml",
            "b.json",
            "bad.yaml",
            "latin1.yaml",
            "utf16.json",
            "notes.txt",
            "big.yaml",
            "gone.yaml",
        ]
        .iter()
        .map(|name| root.join(name))
        .collect();
        let (documents, errors) = read(&files);
        let names: Vec<_> = documents
            .iter()
            .map(|d| (d.index, d.value["name"].clone()))
            .collect();
        assert_eq!(names, [(0, json!("a")), (1, json!("p")), (0, json!("b"))]);
        assert_eq!(documents[2].file, root.join("b.json"));
        let shown: Vec<_> = errors
            .iter()
            .map(|e| e.to_string().replace(&format!("{}/", root.display()), ""))
            .collect();
        assert_eq!(shown.len(), 6, "{shown:#?}");
        assert_eq!(
            shown[0],
            "bad.yaml:2:1: duplicate key 'name' (first at line 1)"
        );
        assert_eq!(
            shown[1],
            "latin1.yaml:1:10: is not UTF-8 text (the byte here is not UTF-8); spec files are UTF-8"
        );
        assert_eq!(
            shown[2],
            "utf16.json:1:1: is UTF-16 text; spec files are UTF-8 (save it as UTF-8)"
        );
        assert_eq!(
            shown[3],
            "notes.txt: not a spec file: its name must end in .yaml, .yml or .json"
        );
        assert_eq!(
            shown[4],
            "big.yaml: larger than 1 MiB, the limit for a spec file; split it into several files"
        );
        assert!(
            shown[5].starts_with("gone.yaml: cannot read: "),
            "{}",
            shown[5]
        );
        // Just at the limit is fine.
        let mut fits = b"kind: ApiKey\nname: fits\nmetadata: {pad: \"".to_vec();
        fits.resize(usize::try_from(MAX_FILE_BYTES).unwrap() - 3, b'x');
        fits.extend_from_slice(b"\"}\n");
        write(&root.join("fits.yaml"), &fits);
        let (documents, errors) = read(&[root.join("fits.yaml")]);
        assert_eq!(
            (documents.len(), errors.len()),
            (1, 0),
            "{}",
            render(&errors)
        );
    }
}
