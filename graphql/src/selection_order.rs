//! Responses in selection order, as the GraphQL spec requires ("the response map's keys are
//! ordered as the fields were selected"), on every transport.
//!
//! async-graphql 7.2 resolves an object's fields concurrently and collects them in the order
//! they *finish* (a `FuturesUnordered`), so `{ a: me { id } b: me { id } }` can come back as
//! `b, a`. (Its 8.0 line collects in order again; until the gateway moves to it, this
//! extension puts every object of the response back in the order of CollectFields: the
//! selection sets walked in document order, fragments and inline fragments in place, each
//! response key where it first appears.) It reorders keys only; it never adds, drops or
//! changes a value.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextSubscribe,
};
use async_graphql::futures_util::stream::BoxStream;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{Name, Request, Response, ServerResult, Value, Variables};
use futures_util::StreamExt;

/// The engine extension.
pub struct SelectionOrder;

impl ExtensionFactory for SelectionOrder {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SelectionOrderExtension::default())
    }
}

/// The parsed document and the operation name, shared with the subscription stream (which is
/// set up before the document is parsed).
type Shared = Arc<Mutex<(Option<Arc<ExecutableDocument>>, Option<String>)>>;

#[derive(Default)]
struct SelectionOrderExtension {
    shared: Shared,
}

fn read(shared: &Shared) -> (Option<Arc<ExecutableDocument>>, Option<String>) {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

#[async_graphql::async_trait::async_trait]
impl Extension for SelectionOrderExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1 = request.operation_name.clone();
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        // The guard's copy when it ran (always, in the gateway's schema): the same document.
        let shared_doc = match ctx.data_opt::<crate::document_limits::ParsedDocument>() {
            Some(parsed) => Arc::clone(&parsed.0),
            None => Arc::new(doc.clone()),
        };
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0 = Some(shared_doc);
        Ok(doc)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        if let (Some(doc), _) = read(&self.shared) {
            reorder_response(&doc, operation_name, &mut response);
        }
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let shared = Arc::clone(&self.shared);
        next.run(ctx, stream)
            .map(move |mut response| {
                if let (Some(doc), name) = read(&shared) {
                    reorder_response(&doc, name.as_deref(), &mut response);
                }
                response
            })
            .boxed()
    }
}

/// Puts `response.data` in the selection order of the operation `name` selects.
pub fn reorder_response(doc: &ExecutableDocument, name: Option<&str>, response: &mut Response) {
    let operation = match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    if let Some(operation) = operation {
        reorder(
            doc,
            &[&operation.node.selection_set.node],
            &mut response.data,
        );
    }
}

/// Response keys in selection order, each with the merged selection sets below it.
type Order<'d> = Vec<(Name, Vec<&'d SelectionSet>)>;

/// Reorders `value` (an object, or lists of objects) by the merged `sets`. The order is
/// collected once for all the items of a list (every item answers the same selection).
fn reorder(doc: &ExecutableDocument, sets: &[&SelectionSet], value: &mut Value) {
    if !matches!(value, Value::List(_) | Value::Object(_)) {
        return;
    }
    let mut order: Order<'_> = Vec::new();
    for set in sets {
        collect(doc, set, &mut order, 0);
    }
    apply(doc, &order, value);
}

/// Puts every object in `value` in `order`, then its children in theirs. An object whose keys
/// already follow `order` (the usual case) is left as it is; only its children are visited.
fn apply(doc: &ExecutableDocument, order: &Order<'_>, value: &mut Value) {
    match value {
        Value::List(items) => {
            for item in items {
                apply(doc, order, item);
            }
        }
        Value::Object(map) => {
            let mut expected = order.iter();
            let in_order = map
                .keys()
                .all(|key| expected.by_ref().any(|(k, _)| k == key));
            if in_order {
                for (key, subsets) in order {
                    if !subsets.is_empty()
                        && let Some(child) = map.get_mut(key)
                    {
                        reorder(doc, subsets, child);
                    }
                }
                return;
            }
            let mut old = std::mem::take(map);
            for (key, subsets) in order {
                if let Some(mut child) = old.shift_remove(key) {
                    if !subsets.is_empty() {
                        reorder(doc, subsets, &mut child);
                    }
                    map.insert(key.clone(), child);
                }
            }
            // Anything not selected (never expected) keeps its place at the end.
            map.extend(old);
        }
        _ => {}
    }
}

/// Fragments nest at most this deep here; the document guard has refused cycles and bounded
/// the nesting before execution, so this only stops a pathological walk.
const MAX_FRAGMENT_DEPTH: usize = 64;

/// CollectFields: response keys in first-appearance order, each with the selection sets of
/// every field that answers to it.
fn collect<'d>(
    doc: &'d ExecutableDocument,
    set: &'d SelectionSet,
    order: &mut Order<'d>,
    depth: usize,
) {
    if depth > MAX_FRAGMENT_DEPTH {
        return;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.clone();
                let sub = &field.node.selection_set.node;
                match order.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, subsets)) => {
                        if !sub.items.is_empty() {
                            subsets.push(sub);
                        }
                    }
                    None => order.push((
                        key,
                        if sub.items.is_empty() {
                            Vec::new()
                        } else {
                            vec![sub]
                        },
                    )),
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    collect(doc, &fragment.node.selection_set.node, order, depth + 1);
                }
            }
            Selection::InlineFragment(inline) => {
                collect(doc, &inline.node.selection_set.node, order, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn shuffled(json: serde_json::Value) -> Response {
        Response::new(Value::from_json(json).expect("valid JSON"))
    }

    /// The keys of the object at `path` (object keys, or list indexes as numbers), in order.
    /// (Read from the engine's value: `serde_json::Value` would sort them.)
    fn keys<'v>(value: &'v Value, path: &[&str]) -> Vec<&'v str> {
        let mut value = value;
        for step in path {
            value = match value {
                Value::Object(map) => &map[*step],
                Value::List(items) => &items[step.parse::<usize>().expect("an index")],
                other => panic!("no {step} in {other}"),
            };
        }
        match value {
            Value::Object(map) => map.keys().map(|k| k.as_str()).collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn objects_nested_objects_and_lists_follow_the_selection() {
        let doc = parse_query(
            "{ d: me { id timezone } b: tasks { totalCount nodes { title id } } a: me { id } }",
        )
        .unwrap();
        let mut response = shuffled(serde_json::json!({
            "a": { "id": "x" },
            "b": { "nodes": [{ "id": 1, "title": "t" }, { "id": 2, "title": "u" }], "totalCount": 2 },
            "d": { "timezone": "UTC", "id": "x" },
        }));
        reorder_response(&doc, None, &mut response);
        let data = &response.data;
        assert_eq!(keys(data, &[]), ["d", "b", "a"]);
        assert_eq!(keys(data, &["d"]), ["id", "timezone"]);
        assert_eq!(keys(data, &["b"]), ["totalCount", "nodes"]);
        assert_eq!(keys(data, &["b", "nodes", "1"]), ["title", "id"]);
    }

    #[test]
    fn objects_already_in_order_are_kept_and_their_children_still_reordered() {
        // serde_json sorts keys, so `a`, `b` arrive in selection order and the nodes do not.
        let doc = parse_query("{ a: me { id } b: tasks { nodes { title id } } }").unwrap();
        let mut response = shuffled(serde_json::json!({
            "a": { "id": "x" },
            "b": { "nodes": [{ "id": 1, "title": "t" }, { "id": 2 }, { "title": "v" }] },
        }));
        reorder_response(&doc, None, &mut response);
        let data = &response.data;
        assert_eq!(keys(data, &[]), ["a", "b"]);
        assert_eq!(keys(data, &["b", "nodes", "0"]), ["title", "id"]);
        assert_eq!(keys(data, &["b", "nodes", "1"]), ["id"]);
        assert_eq!(keys(data, &["b", "nodes", "2"]), ["title"]);
    }

    #[test]
    fn fragments_and_repeated_keys_are_placed_where_they_first_appear() {
        let doc = parse_query(
            "query Q { z ...F me { id } ... on Query { y } }
             fragment F on Query { me { timezone } x }",
        )
        .unwrap();
        let mut response = shuffled(serde_json::json!({
            "y": 1, "x": 2, "me": { "timezone": "UTC", "id": "i" }, "z": 3
        }));
        reorder_response(&doc, Some("Q"), &mut response);
        assert_eq!(keys(&response.data, &[]), ["z", "me", "x", "y"]);
        assert_eq!(keys(&response.data, &["me"]), ["timezone", "id"]);
    }
}
