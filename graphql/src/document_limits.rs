//! Bounds on what one GraphQL document may cost, checked before the engine parses, validates
//! or executes it, so that no request (over HTTP or the WebSocket) can overflow the stack or
//! make validation exponential.
//!
//! Three passes, each linear in the size of its input and each run before the work it bounds:
//! 1. [`DocumentLimits::check_text`] scans the raw text once (strings, block strings and
//!    comments skipped) and refuses bracket nesting (`{`, `[`, `(`) deeper than
//!    `max_nesting`: the parser is recursive descent, so this bounds its recursion.
//!    [`DocumentLimits::check_variables`] bounds the nesting of the variables likewise.
//! 2. The document is parsed (once; the engine reuses it).
//! 3. [`DocumentLimits::check_document`] measures every operation with fragments expanded,
//!    memoising each fragment's cost, so `fragment F2 { ...F1 ...F1 }` chains cost their
//!    length, not two to the power of it: fields (`max_fields`), root fields
//!    (`max_root_fields`), aliases (`max_aliases`), field depth (`max_depth`) and, apart,
//!    the depth of introspection (`__schema`, `__type`: `max_introspection_depth`), so that the
//!    standard introspection query works at the default limits while a hostile deep query
//!    does not. A subscription's request is bounded in bytes (`max_subscription_bytes`),
//!    because it is kept for the subscription's life. A fragment that spreads itself is
//!    refused here (the engine's own depth check
//!    would otherwise walk it exponentially before validation rejects it).
//!
//! It is not the complexity limit (the engine's `limit_complexity`, which weighs lists by their
//! page size); it bounds the shape of the document itself.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{ErrorExtensions, Name, Request, ServerError, ServerResult, Value, Variables};

/// The limits, each a flag of the gateway (see `taskstream --help`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Deepest bracket nesting in the document text or the variables (`MAX_QUERY_NESTING`).
    pub max_nesting: usize,
    /// Deepest field nesting, introspection excluded (`MAX_QUERY_DEPTH`).
    pub max_depth: usize,
    /// Deepest field nesting under `__schema` or `__type` (`MAX_INTROSPECTION_DEPTH`).
    pub max_introspection_depth: usize,
    /// Most fields once fragments are expanded, all operations together (`MAX_QUERY_FIELDS`).
    pub max_fields: usize,
    /// Most root fields in one operation, fragments expanded (`MAX_ROOT_FIELDS`).
    pub max_root_fields: usize,
    /// Most aliased fields, fragments expanded (`MAX_QUERY_ALIASES`).
    pub max_aliases: usize,
    /// Largest subscription document plus variables, in bytes (`MAX_SUBSCRIPTION_BYTES`): a
    /// subscription keeps its parsed document for its whole life, at several times its size.
    pub max_subscription_bytes: usize,
}

impl Default for DocumentLimits {
    fn default() -> DocumentLimits {
        DocumentLimits {
            // Selections 12 deep plus nested filters (8 levels of `or`/`and`/`not`) and their
            // lists stay far below it; the parser's recursion at 64 levels is a few hundred KiB
            // of stack.
            max_nesting: 64,
            // Deep enough for task → nextOccurrence → tags → ... in real clients.
            max_depth: 12,
            // graphql-js 16's `getIntrospectionQuery()` nests `ofType` nine times below
            // `__schema { types { fields { type ...` (14 levels); 20 leaves room for tools
            // that ask for a little more.
            max_introspection_depth: 20,
            // The full introspection query expands to ~300 fields; a rich page of tasks ~100.
            max_fields: 2_000,
            // A client batches a handful of root fields; thousands of aliased mutations or
            // previews in one request are abuse, and each root field costs a transaction or
            // a rule expansion.
            max_root_fields: 20,
            // Aliases are how one field is asked for many times; real documents use a few.
            max_aliases: 50,
            // A subscription with a rich filter is a few hundred bytes; 16 KiB leaves room
            // for long tag lists while bounding what a user's 100 subscriptions can hold.
            max_subscription_bytes: 16 * 1024,
        }
    }
}

/// Which limit a document broke, with what it measured; becomes a `BAD_USER_INPUT` error whose
/// `extensions.limit` names the flag.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error(
        "the query nests brackets {found} levels deep; at most {max} are allowed \
         (MAX_QUERY_NESTING)"
    )]
    Nesting { found: usize, max: usize },
    #[error(
        "the variables nest {found} levels deep; at most {max} are allowed (MAX_QUERY_NESTING)"
    )]
    VariableNesting { found: usize, max: usize },
    #[error("the query is nested {found} fields deep; at most {max} are allowed (MAX_QUERY_DEPTH)")]
    Depth { found: usize, max: usize },
    #[error(
        "the introspection query is nested {found} fields deep; at most {max} are allowed \
         (MAX_INTROSPECTION_DEPTH)"
    )]
    IntrospectionDepth { found: usize, max: usize },
    #[error(
        "the query selects {found} fields once fragments are expanded; at most {max} are \
         allowed (MAX_QUERY_FIELDS)"
    )]
    Fields { found: u64, max: usize },
    #[error(
        "the operation has {found} root fields; at most {max} are allowed (MAX_ROOT_FIELDS); \
         send several requests instead"
    )]
    RootFields { found: u64, max: usize },
    #[error("the query has {found} aliased fields; at most {max} are allowed (MAX_QUERY_ALIASES)")]
    Aliases { found: u64, max: usize },
    #[error(
        "the subscription's document and variables are {found} bytes; at most {max} are \
         allowed (MAX_SUBSCRIPTION_BYTES)"
    )]
    SubscriptionSize { found: usize, max: usize },
    #[error("fragment `{0}` spreads itself (directly or through other fragments)")]
    FragmentCycle(String),
}

impl LimitExceeded {
    /// The flag that sets the limit (`extensions.limit`), if it is one.
    pub fn flag(&self) -> Option<&'static str> {
        match self {
            LimitExceeded::Nesting { .. } | LimitExceeded::VariableNesting { .. } => {
                Some("MAX_QUERY_NESTING")
            }
            LimitExceeded::Depth { .. } => Some("MAX_QUERY_DEPTH"),
            LimitExceeded::IntrospectionDepth { .. } => Some("MAX_INTROSPECTION_DEPTH"),
            LimitExceeded::Fields { .. } => Some("MAX_QUERY_FIELDS"),
            LimitExceeded::RootFields { .. } => Some("MAX_ROOT_FIELDS"),
            LimitExceeded::Aliases { .. } => Some("MAX_QUERY_ALIASES"),
            LimitExceeded::SubscriptionSize { .. } => Some("MAX_SUBSCRIPTION_BYTES"),
            LimitExceeded::FragmentCycle(_) => None,
        }
    }

    fn into_server_error(self) -> ServerError {
        let flag = self.flag();
        async_graphql::Error::new(self.to_string())
            .extend_with(|_, e| {
                e.set("code", "BAD_USER_INPUT");
                if let Some(flag) = flag {
                    e.set("limit", flag);
                }
            })
            .into_server_error(async_graphql::Pos::default())
    }
}

impl DocumentLimits {
    /// The deepest bracket nesting of `query`, refused past `max_nesting` as soon as it is
    /// reached (the scan stops there).
    pub fn check_text(&self, query: &str) -> Result<(), LimitExceeded> {
        let found = bracket_nesting(query, self.max_nesting + 1);
        if found > self.max_nesting {
            return Err(LimitExceeded::Nesting {
                found,
                max: self.max_nesting,
            });
        }
        Ok(())
    }

    /// The deepest nesting of list and object values in `variables`.
    pub fn check_variables(&self, variables: &Variables) -> Result<(), LimitExceeded> {
        // Iterative, so that measuring cannot itself overflow the stack.
        let mut stack: Vec<(&Value, usize)> = variables.values().map(|v| (v, 1)).collect();
        let mut deepest = 0;
        while let Some((value, depth)) = stack.pop() {
            deepest = deepest.max(depth);
            if depth > self.max_nesting {
                return Err(LimitExceeded::VariableNesting {
                    found: depth,
                    max: self.max_nesting,
                });
            }
            match value {
                Value::List(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
                Value::Object(map) => stack.extend(map.values().map(|v| (v, depth + 1))),
                _ => {}
            }
        }
        Ok(())
    }

    /// Measures the parsed document with fragments expanded (each fragment measured once).
    pub fn check_document(&self, doc: &ExecutableDocument) -> Result<(), LimitExceeded> {
        let mut measure = Measure {
            fragments: &doc.fragments,
            memo: HashMap::new(),
        };
        let mut fields = 0u64;
        let mut aliases = 0u64;
        for (_, operation) in doc.operations.iter() {
            let cost = measure.selection_set(&operation.node.selection_set.node)?;
            fields = fields.saturating_add(cost.fields);
            aliases = aliases.saturating_add(cost.aliases);
            if fields > self.max_fields as u64 {
                return Err(LimitExceeded::Fields {
                    found: fields,
                    max: self.max_fields,
                });
            }
            if cost.root_fields > self.max_root_fields as u64 {
                return Err(LimitExceeded::RootFields {
                    found: cost.root_fields,
                    max: self.max_root_fields,
                });
            }
            if cost.depth > self.max_depth {
                return Err(LimitExceeded::Depth {
                    found: cost.depth,
                    max: self.max_depth,
                });
            }
            if cost.introspection_depth > self.max_introspection_depth {
                return Err(LimitExceeded::IntrospectionDepth {
                    found: cost.introspection_depth,
                    max: self.max_introspection_depth,
                });
            }
        }
        // Unused fragments are validated too: measure every definition (memoised, so the used
        // ones cost nothing more).
        for name in doc.fragments.keys() {
            measure.fragment(name)?;
        }
        if fields > self.max_fields as u64 {
            return Err(LimitExceeded::Fields {
                found: fields,
                max: self.max_fields,
            });
        }
        if aliases > self.max_aliases as u64 {
            return Err(LimitExceeded::Aliases {
                found: aliases,
                max: self.max_aliases,
            });
        }
        Ok(())
    }
}

impl DocumentLimits {
    /// Refuses a subscription request of more than `max_subscription_bytes` (`size`: the query
    /// text plus the variables as JSON).
    pub fn check_subscription_size(&self, size: usize) -> Result<(), LimitExceeded> {
        if size > self.max_subscription_bytes {
            return Err(LimitExceeded::SubscriptionSize {
                found: size,
                max: self.max_subscription_bytes,
            });
        }
        Ok(())
    }
}

/// Whether `doc` holds a subscription operation.
pub fn subscribes(doc: &ExecutableDocument) -> bool {
    doc.operations
        .iter()
        .any(|(_, op)| op.node.ty == OperationType::Subscription)
}

/// What a selection set costs with its fragments expanded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cost {
    /// Fields at every level.
    fields: u64,
    /// Fields at the top level of this selection set.
    root_fields: u64,
    /// Aliased fields at every level.
    aliases: u64,
    /// Deepest chain of fields, introspection subtrees excluded.
    depth: usize,
    /// Deepest chain of fields under `__schema` / `__type`, counting that field.
    introspection_depth: usize,
}

impl Cost {
    /// Both selections are part of one set: sums add, depths take the deeper.
    fn merge(self, other: Cost) -> Cost {
        Cost {
            fields: self.fields.saturating_add(other.fields),
            root_fields: self.root_fields.saturating_add(other.root_fields),
            aliases: self.aliases.saturating_add(other.aliases),
            depth: self.depth.max(other.depth),
            introspection_depth: self.introspection_depth.max(other.introspection_depth),
        }
    }
}

enum Memo {
    InProgress,
    Done(Cost),
}

struct Measure<'a> {
    fragments: &'a HashMap<Name, async_graphql::Positioned<FragmentDefinition>>,
    memo: HashMap<&'a str, Memo>,
}

impl<'a> Measure<'a> {
    fn fragment(&mut self, name: &'a str) -> Result<Cost, LimitExceeded> {
        match self.memo.get(name) {
            Some(Memo::Done(cost)) => return Ok(*cost),
            Some(Memo::InProgress) => return Err(LimitExceeded::FragmentCycle(name.to_owned())),
            None => {}
        }
        // An unknown fragment costs nothing here; validation reports it.
        let Some(fragment) = self.fragments.get(name) else {
            return Ok(Cost::default());
        };
        self.memo.insert(name, Memo::InProgress);
        let cost = self.selection_set(&fragment.node.selection_set.node)?;
        self.memo.insert(name, Memo::Done(cost));
        Ok(cost)
    }

    /// Recursion here follows the document's nesting, which [`DocumentLimits::check_text`]
    /// has bounded, and each fragment is entered once.
    fn selection_set(&mut self, set: &'a SelectionSet) -> Result<Cost, LimitExceeded> {
        let mut total = Cost::default();
        for selection in &set.items {
            let cost = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let inner = self.selection_set(&field.selection_set.node)?;
                    let introspection = matches!(field.name.node.as_str(), "__schema" | "__type");
                    Cost {
                        fields: inner.fields.saturating_add(1),
                        root_fields: 1,
                        aliases: inner.aliases + u64::from(field.alias.is_some()),
                        depth: if introspection { 0 } else { inner.depth + 1 },
                        introspection_depth: if introspection {
                            inner.depth.max(inner.introspection_depth) + 1
                        } else {
                            inner.introspection_depth
                        },
                    }
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str())?
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node)?
                }
            };
            total = total.merge(cost);
        }
        Ok(total)
    }
}

/// The deepest nesting of `{`, `[` and `(` in a GraphQL document, outside strings, block
/// strings and comments; stops counting once `stop_at` is reached.
fn bracket_nesting(text: &str, stop_at: usize) -> usize {
    let bytes = text.as_bytes();
    let (mut i, mut depth, mut deepest) = (0, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped triple quote inside a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest >= stop_at {
                    return deepest;
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// Most documents [`ParsedDocuments`] keeps.
pub const PARSED_DOCUMENTS: usize = 128;
/// Longest document text (bytes) [`ParsedDocuments`] keeps: the documents clients send over and
/// over are far shorter, and the bound keeps the cache at a few MiB whatever is sent.
pub const PARSED_DOCUMENT_MAX_BYTES: usize = 4 * 1024;

/// Documents that were parsed and passed [`DocumentLimits::check_document`], by their text.
/// Clients send a fixed set of documents with changing variables, so most requests skip
/// parsing and the document checks (the variables are checked on every request). At most
/// [`PARSED_DOCUMENTS`] documents of at most [`PARSED_DOCUMENT_MAX_BYTES`] each, least recently
/// used dropped first; a refused document is never kept.
#[derive(Debug)]
pub struct ParsedDocuments(std::sync::Mutex<lru::LruCache<String, Arc<ExecutableDocument>>>);

impl Default for ParsedDocuments {
    fn default() -> ParsedDocuments {
        let capacity =
            std::num::NonZeroUsize::new(PARSED_DOCUMENTS).unwrap_or(std::num::NonZeroUsize::MIN);
        ParsedDocuments(std::sync::Mutex::new(lru::LruCache::new(capacity)))
    }
}

impl ParsedDocuments {
    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, Arc<ExecutableDocument>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        self.lock().get(query).cloned()
    }

    fn keep(&self, query: &str, doc: Arc<ExecutableDocument>) {
        if query.len() <= PARSED_DOCUMENT_MAX_BYTES {
            self.lock().put(query.to_owned(), doc);
        }
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The parsed document of the request, as the engine executes it, for the extensions after
/// [`DocumentGuard`] (in the request's data): shared, so they need not copy it.
#[derive(Clone, Debug)]
pub struct ParsedDocument(pub Arc<ExecutableDocument>);

/// The engine extension that applies [`DocumentLimits`] to every request, HTTP and WebSocket
/// alike, before anything else sees the document, and keeps the documents that pass
/// ([`ParsedDocuments`]).
pub struct DocumentGuard {
    limits: Arc<DocumentLimits>,
    parsed: Arc<ParsedDocuments>,
}

impl DocumentGuard {
    /// A guard applying `limits`, keeping accepted documents in `parsed`.
    pub fn new(limits: DocumentLimits, parsed: Arc<ParsedDocuments>) -> DocumentGuard {
        DocumentGuard {
            limits: Arc::new(limits),
            parsed,
        }
    }
}

impl ExtensionFactory for DocumentGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentGuardExtension {
            limits: Arc::clone(&self.limits),
            parsed: Arc::clone(&self.parsed),
        })
    }
}

struct DocumentGuardExtension {
    limits: Arc<DocumentLimits>,
    parsed: Arc<ParsedDocuments>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentGuardExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let limits = &self.limits;
        limits
            .check_text(&request.query)
            .and_then(|()| limits.check_variables(&request.variables))
            .map_err(LimitExceeded::into_server_error)?;
        let doc = match self.parsed.get(&request.query) {
            Some(doc) => {
                request.set_parsed_query(ExecutableDocument::clone(&doc));
                doc
            }
            None => {
                let parsed = request.parsed_query()?;
                limits
                    .check_document(parsed)
                    .map_err(LimitExceeded::into_server_error)?;
                let doc = Arc::new(parsed.clone());
                self.parsed.keep(&request.query, Arc::clone(&doc));
                doc
            }
        };
        // Measured only for subscriptions: serialising the variables is work a query or a
        // mutation does not need.
        if subscribes(&doc) {
            let size = request.query.len()
                + serde_json::to_string(&request.variables).map_or(0, |v| v.len());
            limits
                .check_subscription_size(size)
                .map_err(LimitExceeded::into_server_error)?;
        }
        request.data.insert(ParsedDocument(doc));
        next.run(ctx, request).await
    }
}

#[cfg(test)]
mod tests;
